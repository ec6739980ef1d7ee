#pragma once
// Text generation by ancestral sampling with temperature and top-k.
#include <cstdint>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::nn {

struct SampleOptions {
  int64_t max_new_tokens = 200;
  float temperature = 1.f;  // <= 0: greedy (argmax)
  int64_t top_k = 0;        // 0: the whole vocabulary
  int32_t stop_id = -1;     // stop after emitting this id (e.g. EOS); -1: never
};

// Next-token logits (V) of the last position of ids (at most n_positions are used).
std::vector<float> next_logits(GPT& model, const std::vector<int32_t>& ids);
// Draws one id from logits with the options' temperature and top-k.
int32_t sample_id(std::vector<float> logits, const SampleOptions& opt, Rng& rng);
// Extends prompt (non-empty) by up to max_new_tokens sampled ids; returns only the new ids.
std::vector<int32_t> sample(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng);

}  // namespace lowrank::nn
