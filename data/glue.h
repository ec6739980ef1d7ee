#pragma once
// GLUE sentence(-pair) classification (Wang et al., 2019) for the paper's NLU experiments (Hu et al.,
// 2021, Section 5.2, Table 2): SST-2, MRPC and RTE, train and dev splits as GLUE distributes them
// (see data/assets/glue-*/README.md; CMake extracts them into LOWRANK_GLUE_DIR/<task>/).
//
//   task   columns read (by header name)            label
//   sst2   sentence, label                          0 negative / 1 positive
//   mrpc   #1 String, #2 String, Quality            0 / 1 paraphrase (files start with a UTF-8 BOM)
//   rte    sentence1, sentence2, label              entailment 0 / not_entailment 1 (HF GLUE's ids)
//
// Encoding for a causal GPT classifier (nn::Classifier, pooling "last" or "mean"):
//   single   bpe(a)
//   pair     bpe(a) + ["\n"] + bpe(b)       = bpe(a + "\n" + b): the pair as two lines of text
// No special token: our bases (train_gpt on raw text) never saw GPT-2's <|endoftext|>, so its
// embedding is untrained; a newline is a token every base has seen between lines. <|endoftext|>
// only pads (attention never sees padding and pooling never picks it).
// Over max_len, tokens are cut from the end of the longer sentence first (HF "longest_first"); the
// separator always stays.
//
//   auto bpe = Gpt2Bpe::from_dir(".../gpt2-bpe");
//   GlueDataset train(load_glue("sst2", dir + "/sst2/train.tsv"), bpe, 64);
//   for (auto& idx : train.epoch_batches(16, rng, true)) { GlueBatch b = train.batch(idx); ... }
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/random.h"

namespace lowrank::data {

struct GlueTask {
  std::string name;   // "sst2", "mrpc", "rte"
  bool pair = false;  // two sentences per example
  int64_t n_classes = 2;
  bool report_f1 = false;  // GLUE reports F1 (positive class) beside accuracy for MRPC
};
std::vector<std::string> glue_task_names();
const GlueTask& glue_task(const std::string& name);  // throws with the list on an unknown name

struct GlueExample {
  std::string a, b;   // b empty for single-sentence tasks; both without surrounding whitespace
  int32_t label = 0;  // in [0, n_classes)
};

// Reads a task's TSV (header + one example per line, tab-separated, no quoting). Throws lowrank::Error
// naming the file, and the 1-based line for a row: missing columns, wrong field count, bad or empty
// label, empty sentence.
std::vector<GlueExample> load_glue(const std::string& task, const std::string& path);

// n examples drawn without replacement by a seeded shuffle, kept in file order (all when n <= 0
// or n >= size): a fixed training subset for quick runs on few cores.
std::vector<GlueExample> glue_subset(const std::vector<GlueExample>& examples, int64_t n, uint64_t seed);

constexpr int32_t kGlueSep = 198;    // "\n" in GPT-2 BPE: between the sentences of a pair
constexpr int32_t kGluePad = 50256;  // <|endoftext|>: padding only
std::vector<int32_t> encode_glue(const Tokenizer& tok, const GlueExample& ex, int64_t max_len,
                                 bool* truncated = nullptr, int32_t sep_id = kGlueSep);

// A (B,T) batch, right padded with pad_id to the longest row; lengths[b] in [1, T] real tokens.
struct GlueBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids;      // (B,T) row-major
  std::vector<int32_t> lengths;  // (B)
  std::vector<int32_t> labels;   // (B)
  int64_t tokens = 0;            // Σ lengths
};

class GlueDataset {
 public:
  // Tokenizes every example once; max_len >= 1 (single) or 3 (pair) so each sentence keeps a token.
  GlueDataset(const std::vector<GlueExample>& examples, const Tokenizer& tok, int64_t max_len,
              int32_t sep_id = kGlueSep, int32_t pad_id = kGluePad);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  int64_t max_len() const { return max_len_; }
  int64_t num_truncated() const { return truncated_; }
  const std::vector<int32_t>& ids(int64_t i) const { return ids_.at(static_cast<size_t>(i)); }
  int32_t label(int64_t i) const { return labels_.at(static_cast<size_t>(i)); }

  // One epoch: a Fisher-Yates permutation drawn from rng, cut into batches of B (E2EDataset's scheme).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const;
  GlueBatch batch(const std::vector<int64_t>& indices) const;
  // Evaluation: examples [i*B, min((i+1)*B, size)) in file order.
  int64_t num_eval_batches(int64_t B) const;  // throws when B < 1
  GlueBatch eval_batch(int64_t i, int64_t B) const;

 private:
  std::vector<std::vector<int32_t>> ids_;
  std::vector<int32_t> labels_;
  int64_t max_len_;
  int64_t truncated_ = 0;
  int32_t pad_id_;
};

// Accuracy, and F1 of class `positive` = 2TP / (2TP + FP + FN) (0 when there is no positive at all),
// as GLUE scores MRPC. Throws when the vectors differ in length or are empty.
struct ClassificationScores {
  double accuracy = 0, f1 = 0;
  int64_t n = 0, tp = 0, fp = 0, fn = 0;
};
ClassificationScores classification_scores(const std::vector<int32_t>& predicted, const std::vector<int32_t>& gold,
                                           int32_t positive = 1);

}  // namespace lowrank::data
