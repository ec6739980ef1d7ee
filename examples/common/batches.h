#pragma once
// The training batches of a fine-tuning run, epoch after epoch: each epoch is a fresh seeded shuffle
// of the whole train split cut into batches of B (the last short batch dropped), walked in its drawn
// order. One `next()` per optimizer step, so that the example's loop reads
//   batch = batches.next() -> forward -> zero_grad -> backward -> clip -> step.
// Dataset: data::SftDataset (E2E included) or data::GlueDataset (epoch_batches + batch).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensor/error.h"
#include "tensor/random.h"

namespace lowrank::examples {

template <class Dataset>
class EpochBatches {
 public:
  // slice(indices): the examples of a global batch this process trains on (rank_slice under mpirun,
  // data_parallel.h); every rank draws the same order from the same seed.
  EpochBatches(const Dataset& ds, int64_t B, uint64_t seed,
               std::vector<int64_t> (*slice)(const std::vector<int64_t>&) = nullptr)
      : ds_(ds), B_(B), rng_(seed), slice_(slice) {}

  auto next() {
    refill();
    auto b = ds_.batch(slice_ ? slice_(epoch_.back()) : epoch_.back());
    epoch_.pop_back();
    return b;
  }

  // Draws the next batch's indices without building it: a resumed run replays the order this way.
  void skip() {
    refill();
    epoch_.pop_back();
  }

 private:
  void refill() {
    if (epoch_.empty()) {
      epoch_ = ds_.epoch_batches(B_, rng_, true);
      LR_CHECK(!epoch_.empty(), "train split has ", ds_.size(), " examples, fewer than one batch of ", B_);
      std::reverse(epoch_.begin(), epoch_.end());  // pop_back walks the epoch in its drawn order
    }
  }

  const Dataset& ds_;
  int64_t B_;
  tensor::Rng rng_;
  std::vector<std::vector<int64_t>> epoch_;
  std::vector<int64_t> (*slice_)(const std::vector<int64_t>&);
};

}  // namespace lowrank::examples
