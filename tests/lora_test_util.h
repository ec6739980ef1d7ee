#pragma once
// The tiny LoRA GPTs of test_lora.cpp and test_lora_embedding.cpp: a model, a config, its logits on a
// fixed batch, their largest difference, and an adapter made nonzero as after training.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora.h"
#include "test_util.h"

namespace lowrank::testing {

inline std::unique_ptr<nn::GPT> make_gpt(uint64_t seed) {
  Rng rng(seed);
  return std::make_unique<nn::GPT>(tiny_config(), rng);
}

// LoRA on `targets` at rank r, dropout 0.1.
inline lora::LoRAConfig make_cfg(std::vector<std::string> targets, int64_t r = 2, float alpha = 8.f) {
  lora::LoRAConfig c;
  c.targets = std::move(targets);
  c.r = r;
  c.alpha = alpha;
  c.dropout = 0.1f;
  return c;
}

inline const std::vector<int32_t> kLoraIds = {1, 5, 7, 2, 9, 3, 4, 11, 0, 22, 6, 8, 13, 21, 17, 2};

// The model's logits on kLoraIds as (B, T) = (2, 8), without recording a tape.
inline std::vector<float> logits(nn::GPT& m) {
  autograd::NoGradGuard ng;
  return m.forward(kLoraIds, 2, 8, {}).to_vector();
}

inline float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0.f;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// B (and the trained biases) nonzero, as after training, so the LoRA path matters.
inline void perturb_adapter(nn::GPT& m, uint64_t seed) {
  Rng rng(seed);
  for (nn::NamedTensor& p : m.named_parameters())
    if (p.tensor.requires_grad()) p.tensor.add_(Tensor::randn(p.tensor.shape(), rng, 0.3f));
}

}  // namespace lowrank::testing
