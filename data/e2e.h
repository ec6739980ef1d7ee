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
E2EEncoded encode_e2e(const Tokenizer& tok, const std::string& mr, const std::string& ref,
                      int32_t eos_id = kE2EEos);
// The prompt for generation: bpe(mr) + [eos_id], the same context the model was trained on.
std::vector<int32_t> e2e_prompt(const Tokenizer& tok, const std::string& mr, int32_t eos_id = kE2EEos);

// A (B,T) batch, right padded. Row r holds s = context + completion: inputs = s[0 .. n-2],
// targets = s[1 .. n-1] (inputs shifted by one), mask = 1 exactly where the target is a completion
// token or the final EOS. Padding: input and target eos_id, mask 0.
struct E2EBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // (B,T) row-major
  std::vector<float> mask;               // (B,T)
  int64_t tokens = 0;                    // Σ mask: the tokens the loss averages over
};

class E2EDataset {
 public:
  // Tokenizes every example once. Sequences longer than max_len + 1 tokens (max_len inputs) are
  // cut on the right, as loralib's padding_tokens(direct=1) does: the MR is kept whole and the end
  // of the reference (and its EOS) is lost. Throws if a context alone leaves no completion token.
  E2EDataset(const std::vector<E2EExample>& examples, const Tokenizer& tok, int64_t max_len,
             int32_t eos_id = kE2EEos);

  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  int64_t max_len() const { return max_len_; }
  int64_t num_truncated() const { return truncated_; }  // examples cut to max_len
  const E2EEncoded& example(int64_t i) const { return data_.at(static_cast<size_t>(i)); }

  // The rows of one epoch: a Fisher-Yates permutation drawn from rng (a seed fixes it), cut into
  // batches of B; drop_last drops a final short batch (loralib's training loader drops it).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const;
  // The examples at indices, padded to the longest of them (at most max_len).
  E2EBatch batch(const std::vector<int64_t>& indices) const;
  // Evaluation: examples [i*B, min((i+1)*B, size)) in file order; the last batch may be short.
  int64_t num_eval_batches(int64_t B) const;  // throws when B < 1
  E2EBatch eval_batch(int64_t i, int64_t B) const;

 private:
  std::vector<E2EEncoded> data_;
  int64_t max_len_;
  int64_t truncated_ = 0;
  int32_t eos_id_;
};

}  // namespace lowrank::data
