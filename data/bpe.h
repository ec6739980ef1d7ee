#pragma once
// GPT-2's byte-level BPE tokenizer (Radford et al., 2019), exact to OpenAI's encoder.py and HF's
// GPT2Tokenizer (checked against tests/fixtures/bpe_golden.json, made by tools/gen_tokenizer_fixtures.py).
//
//   auto tok = lowrank::data::Gpt2Bpe::from_dir("data/assets/gpt2-bpe");
//   std::vector<int32_t> ids = tok.encode("Hello world");   // {15496, 995}
//
// Pipeline: split out "<|endoftext|>" (→ id 50256, as HF does for its special token), pre-tokenise
// the rest with GPT-2's regex (data/bpe_pretokenize.h), map each piece's bytes to the byte-level
// alphabet and apply the merges in rank order. decode() concatenates the bytes of the ids, so
// decode(encode(s)) == s for every byte string s.
//
// Thread safety: encode() and decode() may be called concurrently; the per-piece cache that
// encode() fills is guarded by a mutex.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace lowrank::data {

// GPT-2's bytes_to_unicode() (encoder.py): byte b -> a printable code point standing for it. The
// printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order (' ' -> 'Ġ').
std::array<char32_t, 256> gpt2_byte_to_unicode();

class Gpt2Bpe : public Tokenizer {
 public:
  // Loads the vocabulary (encoder.json) and merge list (vocab.bpe); throws lowrank::Error naming
  // the file when one is missing or malformed.
  Gpt2Bpe(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
  // dir/encoder.json + dir/vocab.bpe, e.g. "<source>/data/assets/gpt2-bpe".
  static Gpt2Bpe from_dir(const std::string& dir);

  Gpt2Bpe(Gpt2Bpe&&) noexcept;
  Gpt2Bpe& operator=(Gpt2Bpe&&) noexcept;
  ~Gpt2Bpe() override;

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_bytes_.size()); }
  int32_t eos_id() const override { return eos_id_; }
  std::string name() const override { return "gpt2-bpe"; }

  static constexpr const char* kEndOfText = "<|endoftext|>";

  // The raw bytes that one id stands for.
  const std::string& token_bytes(int32_t id) const;
  // The BPE of one pre-tokenised piece (no cache, no special tokens); exposed for tests.
  std::vector<int32_t> bpe_piece(std::string_view piece) const;

 private:
  struct Merge {
    int32_t rank;    // line number in vocab.bpe, 0 = merged first
    int32_t merged;  // id of the concatenated token
  };
  struct Cache;

  void load_encoder(const std::string& path, std::unordered_map<std::string, int32_t>& token_ids);
  void load_merges(const std::string& path, const std::unordered_map<std::string, int32_t>& token_ids);
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  std::vector<std::string> id_to_bytes_;
  std::array<int32_t, 256> byte_to_id_{};
  std::unordered_map<uint64_t, Merge> merges_;  // key: (left id << 32) | right id
  int32_t eos_id_ = -1;
  std::unique_ptr<Cache> cache_;
};

}  // namespace lowrank::data
