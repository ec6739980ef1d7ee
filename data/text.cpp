#include "data/text.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace lowrank::data {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LR_CHECK(in.good(), path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

LMDataset::LMDataset(std::vector<int32_t> tokens, float val_fraction) {
  LR_CHECK(val_fraction > 0.f && val_fraction < 1.f, "LMDataset: val_fraction ", val_fraction, " outside (0, 1)");
  // Round the fraction to 6 digits first: 0.1f is 0.10000000149 as a double, which would make
  // 100 tokens split 89/11 instead of nanoGPT's int(n * 0.9) = 90/10.
  const double vf = std::round(static_cast<double>(val_fraction) * 1e6) / 1e6;
  const size_t n_train = static_cast<size_t>(static_cast<double>(tokens.size()) * (1.0 - vf));
  train_.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n_train));
  val_.assign(tokens.begin() + static_cast<std::ptrdiff_t>(n_train), tokens.end());
}

namespace {
void fill_window(LMBatch& b, int64_t row, const std::vector<int32_t>& src, size_t off) {
  for (int64_t t = 0; t < b.T; ++t) {
    b.inputs[row * b.T + t] = src[off + t];
    b.targets[row * b.T + t] = src[off + t + 1];
  }
}
void check_sizes(const char* fn, int64_t B, int64_t T) {
  LR_CHECK(B > 0 && T > 0, "LMDataset::", fn, ": batch size B=", B, " and window T=", T, " must be positive");
}
LMBatch empty_batch(int64_t B, int64_t T) {
  LMBatch b;
  b.B = B;
  b.T = T;
  b.inputs.resize(static_cast<size_t>(B * T));
  b.targets.resize(static_cast<size_t>(B * T));
  return b;
}
}  // namespace

LMBatch LMDataset::train_batch(int64_t B, int64_t T, tensor::Rng& rng) const {
  check_sizes("train_batch", B, T);
  LR_CHECK(static_cast<int64_t>(train_.size()) >= T + 1, "LMDataset: ", train_.size(),
           " training tokens are too few for windows of T=", T);
  LMBatch b = empty_batch(B, T);
  const int64_t span = static_cast<int64_t>(train_.size()) - T - 1;
  for (int64_t r = 0; r < B; ++r) fill_window(b, r, train_, static_cast<size_t>(rng.randint(span + 1)));
  return b;
}

int64_t LMDataset::num_val_batches(int64_t B, int64_t T) const {
  check_sizes("num_val_batches", B, T);
  return (static_cast<int64_t>(val_.size()) - 1) / (B * T);
}

LMBatch LMDataset::val_batch(int64_t i, int64_t B, int64_t T) const {
  check_sizes("val_batch", B, T);
  LR_CHECK(i >= 0 && i < num_val_batches(B, T), "LMDataset: validation batch ", i, " of ", num_val_batches(B, T), " (",
           val_.size(), " val tokens, B=", B, " T=", T, ")");
  LMBatch b = empty_batch(B, T);
  for (int64_t r = 0; r < B; ++r) fill_window(b, r, val_, static_cast<size_t>((i * B + r) * T));
  return b;
}

double unigram_baseline(const LMDataset& ds, int32_t vocab_size) {
  // Add-one smoothing so tokens unseen in train have a finite cost.
  std::vector<double> count(static_cast<size_t>(vocab_size), 1.0);
  for (int32_t t : ds.train()) count[static_cast<size_t>(t)] += 1.0;
  double total = static_cast<double>(ds.train_tokens()) + vocab_size;
  LMBatch all = ds.val_batch(0, 1, static_cast<int64_t>(ds.val_tokens()) - 1);
  double nll = 0.0;
  for (int32_t t : all.targets) nll -= std::log(count[static_cast<size_t>(t)] / total);
  return nll / static_cast<double>(all.targets.size());
}

}  // namespace lowrank::data
