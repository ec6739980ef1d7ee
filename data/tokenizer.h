#pragma once
// The tokenizer interface shared by the GPT-2 BPE (data/bpe.h) and the char-level tokenizer
// (data/char_tokenizer.h): text is a byte string (UTF-8 expected), tokens are int32 ids.
#include <cstdint>
#include <string>
#include <vector>

namespace lowrank::data {

struct Tokenizer {
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Throws lowrank::Error on an id outside [0, vocab_size()).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  // The end-of-text id, or -1 when the tokenizer has none.
  virtual int32_t eos_id() const = 0;
  virtual std::string name() const = 0;
  virtual ~Tokenizer();
};

inline Tokenizer::~Tokenizer() = default;

}  // namespace lowrank::data
