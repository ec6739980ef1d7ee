#pragma once
// The leaf layers: Linear, LayerNorm, Embedding.
#include <cstdint>
#include <vector>

#include "nn/module.h"

namespace lowrank::nn {

// y = x Wᵀ + b with W (out, in): PyTorch nn.Linear layout. (HF GPT-2's Conv1D stores Wᵀ,
// (in, out); the checkpoint loader transposes.) forward is virtual so LoRA can wrap it.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, const Init& init, float std = 0.02f);
  virtual ~Linear() = default;
  virtual Tensor forward(const Tensor& x, const Context& ctx);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
};

class LayerNorm : public Module {
 public:
  LayerNorm(int64_t C, float eps, const Init& init);
  Tensor forward(const Tensor& x) const { return autograd::layernorm(x, weight, bias, eps); }
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  Tensor weight, bias;  // (C)
  float eps;
};

class Embedding : public Module {
 public:
  Embedding(int64_t V, int64_t C, const Init& init, float std = 0.02f);
  // ids with shape ids_shape -> ids_shape + (C)
  Tensor forward(const std::vector<int32_t>& ids, const Shape& ids_shape) const {
    return autograd::embedding(weight, ids, ids_shape);
  }
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  Tensor weight;  // (V, C)
};

}  // namespace lowrank::nn
