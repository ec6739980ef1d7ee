#pragma once
// Module: a named tree of parameters, named exactly like Hugging Face GPT-2
// ("h.0.attn.c_attn.weight", ...), so checkpoints and adapters can be exchanged by name.
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tensor/tensor.h"

namespace lowrank::nn {

using tensor::Device;

struct NamedTensor {
  std::string name;
  Tensor tensor;  // a handle: shares data and autograd state with the module's member
};

// How parameters are created: on which device, from which RNG. Device::Meta builds shapes only.
struct Init {
  Rng& rng;
  Device device = Device::CPU;
  Tensor normal(const Shape& s, float std) const;  // N(0, std²), or a meta tensor
  Tensor constant(const Shape& s, float v) const;
};

// Keys and values of the positions already processed, one (B, Tpast, C) pair per layer, for
// incremental decoding: each forward appends its new positions (see nn/gpt.cpp).
struct KVCache {
  std::vector<Tensor> k, v;  // per layer; undefined until the first forward
  int64_t positions = 0;     // real tokens processed so far (the next token's position id)
  // Beam search: row b of the new cache is row rows[b] of the old one (rows may repeat).
  void reorder(const std::vector<int32_t>& rows);
  void clear();
};

// Per-forward settings: training turns dropout on; rng draws the dropout masks; key_lengths (B),
// when set, marks right padding that attention must ignore (encoders over padded batches);
// cache, when set, makes the forward incremental (decoding); row_adapters (B), when set, gives each
// batch row its adapter of a lora::AdapterSet (a slot, or -1 for the base; lora/adapter_set.h).
struct Context {
  bool training = false;
  Rng* rng = nullptr;
  const std::vector<int32_t>* key_lengths = nullptr;
  KVCache* cache = nullptr;
  const std::vector<int32_t>* row_adapters = nullptr;
};

class Module {
 public:
  virtual ~Module() = default;
  // Appends every parameter as (prefix + local name, tensor), in a fixed order.
  virtual void collect(const std::string& prefix, std::vector<NamedTensor>& out) = 0;

  std::vector<NamedTensor> named_parameters();
  int64_t num_parameters();            // all parameters
  int64_t num_trainable_parameters();  // those with requires_grad
  void set_requires_grad(bool on);     // on every parameter
  void zero_grad();
};

// Inverted dropout with probability p when ctx.training (drawing from ctx.rng), else x itself.
Tensor dropout_if_training(const Tensor& x, float p, const Context& ctx);

// A module over activations (B, T, C) -> (B, T, C'): the interface of adapters plugged into a Block.
class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x, const Context& ctx) = 0;
};

}  // namespace lowrank::nn
