#pragma once
// Text generation by ancestral sampling with temperature, top-k and top-p (nucleus, Holtzman et al.,
// 2020), in the order Hugging Face applies them: logits / temperature, keep the top k, then keep the
// smallest set of the most likely tokens whose probability reaches top_p.
//
// Two drivers over the same per-token rule (sample_id):
//  * sample: recomputes the whole window (at most n_positions tokens) for every new token, so it can
//    run past the model's context by sliding the window;
//  * sample_cached: one prefill, then one position per token through a KVCache (nn/module.h), and a
//    callback per token (streaming, stop strings). It stops where the model runs out of positions
//    (prompt + new tokens - 1 <= n_positions); up to there it draws the very same ids as sample with
//    the same Rng state (the logits agree to float rounding: the GEMMs' row counts differ).
#include <cstdint>
#include <functional>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::nn {

struct SampleOptions {
  int64_t max_new_tokens = 200;
  float temperature = 1.f;  // <= 0: greedy (argmax)
  int64_t top_k = 0;        // 0: the whole vocabulary
  int32_t stop_id = -1;     // stop after emitting this id (e.g. EOS); -1: never
  // New fields go last: callers brace-initialize the ones above in this order.
  float top_p = 1.f;                 // in (0, 1]; 1: the whole vocabulary
  int64_t no_repeat_ngram_size = 0;  // bans as nn::DecodeOptions' (over the generated ids only); 0: off
};

// Next-token logits (V) of the last position of ids (at most n_positions are used).
std::vector<float> next_logits(GPT& model, const std::vector<int32_t>& ids);
// The unnormalized sampling weights of logits under temperature (> 0), top-k and top-p: exp((l - max)
// / temperature) for the tokens kept, 0 for the others. Top-p keeps the smallest set of the most likely
// tokens (ties to the lower id) whose share of the top-k mass reaches top_p.
std::vector<double> sampling_weights(const std::vector<float>& logits, const SampleOptions& opt);
// Draws one id from logits with the options' temperature, top-k and top-p (one rng.uniform() per
// call; none for temperature <= 0, which takes the argmax, ties to the lower id).
int32_t sample_id(std::vector<float> logits, const SampleOptions& opt, Rng& rng);
// Extends prompt (non-empty) by up to max_new_tokens sampled ids; returns only the new ids.
std::vector<int32_t> sample(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng);

// Called with each new id as soon as it is drawn (stop_id included); returning false ends the
// generation after that id.
using TokenCallback = std::function<bool(int32_t)>;
// sample with a KVCache (see above); returns the new ids, stop_id included when drawn.
std::vector<int32_t> sample_cached(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng,
                                   const TokenCallback& on_token = {});

}  // namespace lowrank::nn
