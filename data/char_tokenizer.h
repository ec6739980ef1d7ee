#pragma once
// A character-level tokenizer (as in Karpathy's char-rnn / nanoGPT shakespeare_char): the vocabulary
// is the sorted set of distinct Unicode code points of a training text, id = rank in that set.
// Text must be valid UTF-8; for ASCII text the units are simply bytes.
//
//   CharTokenizer tok = CharTokenizer::from_text(corpus);
//   tok.save("out/vocab.json");  ...  CharTokenizer again = CharTokenizer::load("out/vocab.json");
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace lowrank::data {

class CharTokenizer : public Tokenizer {
 public:
  // Vocabulary = sorted distinct code points of `text`; throws lowrank::Error on invalid UTF-8.
  static CharTokenizer from_text(const std::string& text);
  // From code points in id order (must be distinct valid scalar values, at least one).
  explicit CharTokenizer(std::vector<char32_t> chars);

  // Throws lowrank::Error on invalid UTF-8 or on a character missing from the vocabulary.
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(chars_.size()); }
  // A char-level model has no end-of-text token (document boundaries are plain characters).
  int32_t eos_id() const override { return -1; }
  std::string name() const override { return "char"; }

  const std::vector<char32_t>& chars() const { return chars_; }

  // JSON: {"type": "char", "unit": "codepoint", "chars": ["\n", " ", "!", ...]} (strings in id order).
  void save(const std::string& path) const;
  static CharTokenizer load(const std::string& path);

 private:
  std::vector<char32_t> chars_;
  std::unordered_map<char32_t, int32_t> ids_;
};

}  // namespace lowrank::data
