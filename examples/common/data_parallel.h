#pragma once
// What a trainer does differently under `mpirun -np N` (docs/data_parallel.md): the pieces shared by
// train_loop.h (finetune, finetune_e2e), train_gpt and finetune_glue. In a group of one every function
// here returns at once, leaving a run exactly as it is without MPI.
//
// The rule that makes N ranks equal one process: a batch's loss is a mean over its (masked) tokens, so
// rank r scales its loss by (its tokens / the global batch's tokens) and the gradients are summed, not
// averaged: then sum_r (W_r / W) * loss_r is the one-process loss of the whole batch, and 2 ranks x b
// examples train as 1 rank x 2b up to float32 rounding (tests/test_data_parallel.cpp).
#include <cxxopts.hpp>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "optim/adamw.h"
#include "optim/dist.h"
#include "tensor/random.h"

namespace lowrank::examples {

// Every rank must have been started with the same options: rank 0's are compared with each rank's by
// a hash, and a mismatch names the first option that differs (CollectiveError: every rank exits 1).
inline void check_same_options(const std::string& program, const cxxopts::ParseResult& a) {
  if (optim::dist::size() == 1) return;
  std::map<std::string, std::string> fields = {{"program", program}};
  for (const cxxopts::KeyValue& kv : a.arguments()) {
    std::string& v = fields["--" + kv.key()];
    v += (v.empty() ? "" : ",") + kv.value();
  }
  optim::dist::check_same("options", fields);
}

// The global batch stays the batch the options name; each rank takes B / N of its examples.
inline void check_batch_split(int64_t batch_size, const char* option = "--batch-size") {
  const int n = optim::dist::size();
  LR_CHECK(batch_size % n == 0, option, " ", batch_size, " does not split over the ", n, " ranks of mpirun -np ", n,
           ": each rank takes an equal contiguous slice of every batch");
}

// Rank r's contiguous slice of a global batch's example indices.
inline std::vector<int64_t> rank_slice(const std::vector<int64_t>& indices) {
  const int64_t n = optim::dist::size(), r = optim::dist::rank(), per = static_cast<int64_t>(indices.size()) / n;
  return {indices.begin() + r * per, indices.begin() + (r + 1) * per};
}

// The seed of rank r's dropout masks at a step, for ranks other than 0 (rank 0 keeps the one-process
// stream, which a checkpoint stores): a function of (seed, rank, step), so a resumed run draws the
// same masks on every rank without storing each rank's stream, and a run is reproducible for a
// given rank count (masks differ between rank counts, as the examples each rank sees do).
inline uint64_t rank_dropout_seed(uint64_t seed, int rank, int64_t step) {
  return seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(rank) << 48) ^ static_cast<uint64_t>(step);
}

// Rank 0's values of every parameter (frozen ones too) and of the optimizer's moments into every rank:
// after init or resume all ranks start from the same bits.
inline void broadcast_state(std::vector<nn::NamedTensor> params, optim::AdamW* opt) {
  if (optim::dist::size() == 1) return;
  std::vector<Tensor> ts;
  for (nn::NamedTensor& p : params) ts.push_back(p.tensor);
  if (opt)
    for (auto& [name, t] : opt->state_dict()) ts.push_back(t);
  optim::dist::broadcast(ts, 0);
}

// Sums the trainable parameters' gradients over the ranks. A tensor that got no gradient on some rank
// (no token of its slice reached it) gets zeros there first, so every rank sends the same buffers.
inline void sum_gradients(const std::vector<nn::NamedTensor>& params) {
  if (optim::dist::size() == 1) return;
  std::vector<nn::NamedTensor> trainable;
  for (const nn::NamedTensor& p : params)
    if (p.tensor.requires_grad()) trainable.push_back(p);
  std::vector<double> has(trainable.size());
  for (size_t i = 0; i < trainable.size(); ++i) has[i] = trainable[i].tensor.grad().defined() ? 1.0 : 0.0;
  optim::dist::allreduce_sum(has);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < trainable.size(); ++i)
    if (has[i] > 0) grads.push_back(trainable[i].tensor.grad_or_zeros());
  optim::dist::allreduce_sum(grads);
}

}  // namespace lowrank::examples
