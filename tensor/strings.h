#pragma once
// Small string helpers shared by every layer (tensor/ up to examples/), so each exists once.
#include <string>
#include <string_view>

namespace lowrank {

// True when s ends with suffix ("h.0.attn.bias" ends with "bias").
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python's str.strip() for ASCII whitespace (the data files are UTF-8, but these are all single bytes).
inline std::string strip(std::string_view s) {
  constexpr std::string_view ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

}  // namespace lowrank
