#pragma once
// The E2E NLG Challenge data (Novikova et al., 2017) in loralib's text format, encoded for GPT-2
// fine-tuning exactly as microsoft/LoRA's examples/NLG pipeline does (see data/assets/e2e/README.md):
//
//   line        "name : The Vaults | Type : pub ...||The Vaults pub near Café Adriatic ... "
//   parsed      mr = "name : The Vaults | Type : pub ...", ref = "The Vaults pub near ... ."
//   encoded     context    = bpe(mr) + [50256]           (format_converting_e2e.py + gpt2_encode.py --add_bos:
//                                                          the separator is the end-of-text id)
//               completion = bpe(" " + ref) + [50256]    (gpt2_encode.py: ' ' + completion, --add_eos)
//   trained on  context + completion, loss only where the target is a completion token (EOS included),
//               as loralib's FT_Dataset mask.
//
// Lengths in GPT-2 BPE tokens (context incl. separator + completion incl. EOS), max / mean:
// train 115 / 53.3, valid 125 / 59.2, test 133 / 67.0 (one test example exceeds 128 inputs).
//
//   auto bpe = Gpt2Bpe::from_dir(".../gpt2-bpe");
//   E2EDataset train(load_e2e(dir + "/train.txt"), bpe, 512);
//   for (auto& idx : train.epoch_batches(8, rng, true)) { E2EBatch b = train.batch(idx); ... }
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sft.h"
#include "data/tokenizer.h"
#include "tensor/random.h"

namespace lowrank::data {

struct E2EExample {
  std::string mr;   // the meaning representation: "slot : value | slot : value ..."
  std::string ref;  // one human reference, tokenized text, no surrounding whitespace
};

// One example per line: MR "||" reference. Like loralib's line.strip().split('||'), whitespace
// (' ', '\t', '\r', '\n', '\f', '\v') is removed from both ends of the line, so the trailing space
// every reference has in the files is dropped; nothing is stripped around the "||".
// Throws lowrank::Error naming the file and the 1-based line for a line without exactly one "||",
// with an empty MR or an empty reference (blank lines included).
std::vector<E2EExample> load_e2e(const std::string& path);

// Evaluation groups all references of one MR (BLEU etc. are multi-reference); first-appearance order.
struct E2EGroup {
  std::string mr;
  std::vector<std::string> refs;
};
std::vector<E2EGroup> group_by_mr(const std::vector<E2EExample>& examples);
// Every stride-th group from the first, n of them (n <= 0: all there are). The test file is sorted by
// restaurant, so its first 40 MRs are one restaurant; a stride of 16 spreads 40 over all 630.
std::vector<E2EGroup> pick_test_mrs(const std::vector<E2EGroup>& groups, int64_t n, int64_t stride);

// One example as token ids: context ends with the separator (EOS), completion ends with EOS.
struct E2EEncoded {
  std::vector<int32_t> context, completion;
};
constexpr int32_t kE2EEos = 50256;  // GPT-2's <|endoftext|>: loralib's bos (separator) and eos
E2EEncoded encode_e2e(const Tokenizer& tok, const std::string& mr, const std::string& ref, int32_t eos_id = kE2EEos);
// The prompt for generation: bpe(mr) + [eos_id], the same context the model was trained on.
std::vector<int32_t> e2e_prompt(const Tokenizer& tok, const std::string& mr, int32_t eos_id = kE2EEos);

// The examples as fine-tuning data (data/sft.h): the MR with EOS as the separator (untrained), then
// " " + ref (trained, closed by EOS). encode_e2e's tokens exactly, through the one fine-tuning path.
std::vector<SftExample> e2e_sft_examples(const std::vector<E2EExample>& examples);
// The same as JSON Lines records, {"prompt": MR + "<|endoftext|>", "completion": " " + ref}: what
// `finetune --data` reads (the GPT-2 BPE encodes "<|endoftext|>" to the EOS id).
nlohmann::json e2e_jsonl_record(const E2EExample& example);

// A (B,T) batch, right padded: inputs, targets shifted by one, mask = 1 exactly where the target is a
// completion token or the final EOS. Padding: input and target eos_id, mask 0.
using E2EBatch = SftBatch;

// E2E's train/valid/test split encoded for fine-tuning. Sequences longer than max_len + 1 tokens
// (max_len inputs) are cut on the right, as loralib's padding_tokens(direct=1) does: the MR is kept
// whole and the end of the reference (and its EOS) is lost. Throws if a context alone leaves no
// completion token.
class E2EDataset : public SftDataset {
 public:
  E2EDataset(const std::vector<E2EExample>& examples, const Tokenizer& tok, int64_t max_len, int32_t eos_id = kE2EEos)
      : SftDataset(e2e_sft_examples(examples), tok, max_len, eos_id) {}
};

}  // namespace lowrank::data
