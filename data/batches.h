#pragma once
// Index batches over n examples (a shuffled epoch, or evaluation in order), shared by the E2E and
// GLUE datasets.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "tensor/error.h"
#include "tensor/random.h"

namespace lowrank::data {

// A Fisher-Yates shuffle of [0, n) cut into batches of B indices (the last one shorter unless
// drop_last); `what` names the dataset in the error.
inline std::vector<std::vector<int64_t>> shuffled_batches(int64_t n, int64_t B, tensor::Rng& rng, bool drop_last,
                                                          const char* what) {
  LR_CHECK(B >= 1, what, ": batch size ", B, " < 1");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.randint(i + 1)]);
  std::vector<std::vector<int64_t>> batches;
  for (int64_t s = 0; s < n; s += B) {
    const int64_t e = std::min(n, s + B);
    if (drop_last && e - s < B) break;
    batches.emplace_back(order.begin() + s, order.begin() + e);
  }
  return batches;
}

// How many batches of B cover n examples (the last one may be shorter); `what` names the caller.
inline int64_t num_batches(int64_t n, int64_t B, const char* what) {
  LR_CHECK(B >= 1, what, ": batch size B=", B, " must be positive");
  return (n + B - 1) / B;
}

// The indices of evaluation batch i over n examples in order: [i·B, min(n, (i+1)·B)); `what`
// names the dataset in the error.
inline std::vector<int64_t> eval_batch_indices(int64_t n, int64_t i, int64_t B, const char* what) {
  const int64_t batches = B >= 1 ? (n + B - 1) / B : 0;
  LR_CHECK(B >= 1 && i >= 0 && i < batches, what, ": evaluation batch ", i, " of ", batches, " (B=", B, ")");
  std::vector<int64_t> idx;
  for (int64_t k = i * B; k < std::min(n, (i + 1) * B); ++k) idx.push_back(k);
  return idx;
}

}  // namespace lowrank::data
