#pragma once
// The leaf layers: Linear, LayerNorm, Embedding.
#include <cstdint>
#include <memory>
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

// A learned change ΔE of an Embedding's table applied without forming it: LoRA on the token embedding
// (lora::LoRAEmbedding). nn knows only this interface, as Block knows adapters only as Layers.
class EmbeddingDelta : public Module {
 public:
  virtual Tensor lookup(const std::vector<int32_t>& ids, const Shape& ids_shape) = 0;  // ΔE[ids]: ids_shape + (C)
  virtual Tensor head(const Tensor& h) = 0;                                            // h ΔEᵀ: (..., C) -> (..., V)
  virtual bool merged() const = 0;  // ΔE already folded into the table: lookup/head are not added
};

class Embedding : public Module {
 public:
  Embedding(int64_t V, int64_t C, const Init& init, float std = 0.02f);
  // ids with shape ids_shape -> ids_shape + (C): weight[ids] (+ ΔE[ids] with a delta)
  Tensor forward(const std::vector<int32_t>& ids, const Shape& ids_shape) const;
  // The tied output head: h (..., C) -> h (weight + ΔE)ᵀ (..., V)
  Tensor project(const Tensor& h) const;
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  Tensor weight;                          // (V, C)
  std::unique_ptr<EmbeddingDelta> delta;  // null for a plain embedding
};

}  // namespace lowrank::nn
