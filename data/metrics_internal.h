#pragma once
// Helpers shared by the metrics files (data/metrics_*.cpp); not part of the public API.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/metrics.h"
#include "tensor/error.h"

namespace lowrank::data::metrics_detail {

using Tokens = std::vector<std::string>;
using NgramCounts = std::unordered_map<std::string, int>;

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Splits on ASCII whitespace (Python's str.split() for ASCII text).
inline Tokens split_ws(const std::string& s) {
  Tokens out;
  size_t i = 0, n = s.size();
  while (i < n) {
    while (i < n && is_space(s[i])) ++i;
    size_t j = i;
    while (j < n && !is_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Lowercases ASCII, Latin-1 and Latin Extended-A letters of a UTF-8 string (other bytes are kept);
// this covers everything in the E2E data (e.g. "Café").
inline std::string lowercase(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      continue;
    }
    if ((c == 0xC3 || c == 0xC4 || c == 0xC5) && i + 1 < s.size()) {
      uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) cp += 0x20;                     // À..Þ
      else if (cp == 0x178) cp = 0xFF;                                             // Ÿ
      else if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177)) cp |= 1u;  // Ā.., Ŋ..
      else if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) && (cp & 1u)) ++cp;
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
      ++i;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

// UTF-8 <-> code points (invalid bytes are decoded leniently; the metrics never produce them).
inline std::u32string utf8_to_u32(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    for (int k = 1; k <= extra && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3Fu);
    out += cp;
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

inline std::string u32_to_utf8(const std::u32string& w) {
  std::string out;
  for (char32_t c : w) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// Counts of the n-grams of one order (tokens joined by a space; tokens never contain one).
inline NgramCounts ngram_counts(const Tokens& t, int n) {
  NgramCounts counts;
  for (size_t i = 0; i + static_cast<size_t>(n) <= t.size(); ++i) {
    std::string key = t[i];
    for (int k = 1; k < n; ++k) key.append(1, ' ').append(t[i + static_cast<size_t>(k)]);
    ++counts[key];
  }
  return counts;
}

// The number of n-grams of order n in a sentence of len tokens (0 when it is shorter than n).
inline int64_t ngram_total(size_t len, int n) {
  return len >= static_cast<size_t>(n) ? static_cast<int64_t>(len) - n + 1 : 0;
}

// A corpus after coco_tokenize (what pycocoevalcap's scorers receive).
struct TokenizedCorpus {
  std::vector<Tokens> hyps;
  std::vector<std::vector<Tokens>> refs;
};
TokenizedCorpus coco_corpus(const Corpus& hyps, const References& refs);
double rouge_l_tokenized(const TokenizedCorpus& c, std::vector<double>* segments);
double cider_tokenized(const TokenizedCorpus& c, std::vector<double>* segments);
double meteor_tokenized(const TokenizedCorpus& c);

inline void check_corpus(const Corpus& hyps, const References& refs, const char* what) {
  LR_CHECK(hyps.size() == refs.size(), what, ": ", hyps.size(), " hypotheses but ", refs.size(),
           " reference lists");
  for (size_t i = 0; i < refs.size(); ++i) LR_CHECK(!refs[i].empty(), what, ": segment ", i, " has no reference");
}

}  // namespace lowrank::data::metrics_detail
