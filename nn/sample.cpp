#include "nn/sample.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace lowrank::nn {

std::vector<float> next_logits(GPT& model, const std::vector<int32_t>& ids) {
  autograd::NoGradGuard no_grad;
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), model.config.n_positions);
  std::vector<int32_t> window(ids.end() - T, ids.end());
  Tensor h = model.hidden(window, 1, T, Context{});                    // (1,T,C)
  Tensor last = autograd::reshape(autograd::slice(h, 1, T - 1, 1), {1, model.config.n_embd});
  return model.wte.project(last).to_vector();  // only the last row's head (tied, + ΔE with LoRA on wte)
}

int32_t sample_id(std::vector<float> logits, const SampleOptions& opt, Rng& rng) {
  const int64_t V = static_cast<int64_t>(logits.size());
  if (opt.temperature <= 0.f) return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (opt.top_k > 0 && opt.top_k < V) {
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (opt.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[static_cast<size_t>(opt.top_k - 1)];
    for (float& l : logits)
      if (l < kth) l = -INFINITY;
  }
  const float mx = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  std::vector<double> p(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) total += p[v] = std::exp((logits[v] - mx) / opt.temperature);
  double u = rng.uniform() * total;
  for (int64_t v = 0; v < V; ++v)
    if ((u -= p[v]) <= 0.0) return static_cast<int32_t>(v);
  return static_cast<int32_t>(V - 1);
}

std::vector<int32_t> sample(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng) {
  LR_CHECK(!prompt.empty(), "sample: empty prompt");
  std::vector<int32_t> ids = prompt, out;
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    int32_t id = sample_id(next_logits(model, ids), opt, rng);
    ids.push_back(id);
    out.push_back(id);
    if (id == opt.stop_id) break;
  }
  return out;
}

}  // namespace lowrank::nn
