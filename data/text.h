#pragma once
// Language-model data: text files -> one token stream -> train/val split -> (B,T) batches.
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/random.h"

namespace lowrank::data {

// The whole file as bytes; throws naming the path when it cannot be read.
std::string read_file(const std::string& path);

struct LMBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs;   // (B,T) row-major
  std::vector<int32_t> targets;  // (B,T): inputs shifted left by one
};

class LMDataset {
 public:
  // The first (1 - val_fraction) of the tokens train, the rest validate (nanoGPT's split).
  LMDataset(std::vector<int32_t> tokens, float val_fraction);

  // B windows of T+1 tokens at offsets drawn from rng (so a seed fixes the batch sequence).
  LMBatch train_batch(int64_t B, int64_t T, tensor::Rng& rng) const;
  // The i-th of the fixed, non-overlapping validation batches (same every call).
  LMBatch val_batch(int64_t i, int64_t B, int64_t T) const;
  int64_t num_val_batches(int64_t B, int64_t T) const;

  size_t train_tokens() const { return train_.size(); }
  size_t val_tokens() const { return val_.size(); }
  const std::vector<int32_t>& train() const { return train_; }

 private:
  std::vector<int32_t> train_, val_;
};

// Cross-entropy in nats of predicting the train split's unigram distribution on the val split:
// the loss of a model that ignores context, the baseline a trained LM must beat.
double unigram_baseline(const LMDataset& ds, int32_t vocab_size);

}  // namespace lowrank::data
