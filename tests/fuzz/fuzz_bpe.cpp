// Fuzzes GPT-2's byte-level BPE (data/bpe.h) twice per input:
//  * the real GPT-2 files (data/assets/gpt2-bpe, loaded once) encode the whole input as text;
//  * the input as files, split at fuzz::kSplit: encoder.json, then vocab.bpe (merges), then a text;
//    when they load, that tokenizer encodes a few fixed strings and the text.
//
// The tokenizer promises: a vocabulary that is not a JSON object of unique integer ids in [0, n),
// lacks a single-byte token or <|endoftext|>, or has a character outside the byte alphabet, and a
// merge line that is not 'left right' of known tokens, are each a lowrank::Error naming the file;
// encode takes any bytes (invalid UTF-8 included) and decode(encode(s)) == s, with every id in
// [0, vocab_size). The harness checks the round trip and the ids for both tokenizers.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/bpe.h"
#include "fuzz_util.h"

using namespace lowrank;

namespace {

void check_round_trip(const data::Gpt2Bpe& tok, const std::string& text, const char* which) {
  const std::vector<int32_t> ids = tok.encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) fuzz::finding(std::string(which) + ": encode gave id " + std::to_string(id));
  if (tok.decode(ids) != text) fuzz::finding(std::string(which) + ": decode(encode(s)) != s");
}

const data::Gpt2Bpe& gpt2() {
  static const data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = fuzz::as_view(data, size);
  check_round_trip(gpt2(), std::string(in), "GPT-2 BPE");

  const auto [vocab, rest] = fuzz::split(in);
  const auto [merges, text] = fuzz::split(rest);
  const std::string vocab_path = fuzz::write_file("encoder.json", vocab);
  const std::string merges_path = fuzz::write_file("vocab.bpe", merges);
  std::unique_ptr<data::Gpt2Bpe> tok;
  if (!fuzz::loads([&] { tok = std::make_unique<data::Gpt2Bpe>(vocab_path, merges_path); })) return 0;
  for (const char* s : {"", "Hello world", " the  <|endoftext|>x\n\n", "caf\xc3\xa9 \xff\xfe 123's"})
    check_round_trip(*tok, s, "fuzzed BPE");
  check_round_trip(*tok, std::string(text), "fuzzed BPE");
  return 0;
}
