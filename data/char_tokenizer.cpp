// Character-level tokenizer over Unicode code points, with a JSON vocabulary file.
#include "data/char_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/utf8.h"
#include "tensor/error.h"

namespace lowrank::data {
namespace {

// Decodes all of `text`, failing on the first invalid byte with its offset.
std::vector<char32_t> decode_all(const std::string& text, const char* who) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len;
    const char32_t cp = utf8::decode(text, i, len);
    LR_CHECK(cp != utf8::kInvalid, who, ": invalid UTF-8 at byte ", i);
    cps.push_back(cp);
    i += len;
  }
  return cps;
}

}  // namespace

CharTokenizer::CharTokenizer(std::vector<char32_t> chars) : chars_(std::move(chars)) {
  LR_CHECK(!chars_.empty(), "CharTokenizer: empty vocabulary");
  for (size_t i = 0; i < chars_.size(); ++i) {
    const char32_t c = chars_[i];
    LR_CHECK(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF), "CharTokenizer: U+", std::hex, static_cast<uint32_t>(c),
             " is not a Unicode scalar value");
    LR_CHECK(ids_.emplace(c, static_cast<int32_t>(i)).second, "CharTokenizer: character U+", std::hex,
             static_cast<uint32_t>(c), " appears twice in the vocabulary");
  }
}

CharTokenizer CharTokenizer::from_text(const std::string& text) {
  std::vector<char32_t> cps = decode_all(text, "CharTokenizer::from_text");
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  return CharTokenizer(std::move(cps));
}

std::vector<int32_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (char32_t cp : decode_all(text, "CharTokenizer::encode")) {
    auto it = ids_.find(cp);
    LR_CHECK(it != ids_.end(), "CharTokenizer::encode: character '", utf8::encode(cp), "' (U+", std::hex,
             static_cast<uint32_t>(cp), ") is not in the vocabulary");
    ids.push_back(it->second);
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    LR_CHECK(id >= 0 && id < vocab_size(), "CharTokenizer::decode: id ", id, " out of range [0, ", vocab_size(), ")");
    utf8::append(out, chars_[id]);
  }
  return out;
}

void CharTokenizer::save(const std::string& path) const {
  nlohmann::json chars = nlohmann::json::array();
  for (char32_t c : chars_) chars.push_back(utf8::encode(c));
  const nlohmann::json j = {{"type", "char"}, {"unit", "codepoint"}, {"chars", chars}};
  std::ofstream out(path, std::ios::binary);
  LR_CHECK(out, "CharTokenizer::save: cannot write '", path, "'");
  out << j.dump(1) << '\n';
  LR_CHECK(out.good(), "CharTokenizer::save: error writing '", path, "'");
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LR_CHECK(in, "CharTokenizer::load: cannot open '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("CharTokenizer::load: '", path, "' is not valid JSON: ", e.what()));
  }
  LR_CHECK(j.is_object() && j.value("type", "") == "char" && j.contains("chars") && j["chars"].is_array(),
           "CharTokenizer::load: '", path, "' is not a char vocabulary ({\"type\": \"char\", \"chars\": [...]})");
  std::vector<char32_t> chars;
  for (const auto& c : j["chars"]) {
    LR_CHECK(c.is_string(), "CharTokenizer::load: '", path, "': every entry of \"chars\" must be a string");
    const std::string s = c.get<std::string>();
    size_t len = 0;
    const char32_t cp = s.empty() ? utf8::kInvalid : utf8::decode(s, 0, len);
    LR_CHECK(cp != utf8::kInvalid && len == s.size(), "CharTokenizer::load: '", path, "': entry '", s,
             "' is not exactly one character");
    chars.push_back(cp);
  }
  try {
    return CharTokenizer(std::move(chars));
  } catch (const Error& e) {
    throw Error(cat("CharTokenizer::load: '", path, "': ", e.what()));
  }
}

}  // namespace lowrank::data
