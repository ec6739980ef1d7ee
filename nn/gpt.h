#pragma once
// GPT-2 (Radford et al., 2019): pre-LN decoder blocks, learned positions, LM head tied to wte.
// Parameter names follow Hugging Face's GPT2Model: wte, wpe, h.{i}.ln_1, h.{i}.attn.c_attn,
// h.{i}.attn.c_proj, h.{i}.ln_2, h.{i}.mlp.c_fc, h.{i}.mlp.c_proj, ln_f.
// With config.causal = false the same stack is a bidirectional encoder (see nn/classifier.h).
#include <memory>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"

namespace lowrank::nn {

class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(const GPTConfig& cfg, const Init& init, int64_t layer);
  // (B,T,C) -> (B,T,C). Keys/values: [cached or prefix_k/v] + this call's; with ctx.cache the
  // new keys/values are appended to the cache.
  Tensor forward(const Tensor& x, const Context& ctx);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  std::unique_ptr<Linear> c_attn;  // C -> 3C: q | k | v, fused as in GPT-2
  std::unique_ptr<Linear> c_proj;  // C -> C
  Tensor prefix_k, prefix_v;       // (Lp, C) learned keys/values (prefix-layer tuning), or undefined
  int64_t NH;
  bool causal;
  int64_t layer;  // index into the KV cache
};

class MLP : public Module {
 public:
  MLP(const GPTConfig& cfg, const Init& init);
  Tensor forward(const Tensor& x, const Context& ctx);  // c_proj(gelu(c_fc(x)))
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  std::unique_ptr<Linear> c_fc;    // C -> 4C
  std::unique_ptr<Linear> c_proj;  // 4C -> C
};

class Block : public Module {
 public:
  Block(const GPTConfig& cfg, const Init& init, int64_t layer);
  // x + drop(A(attn(ln_1(x)))), then + drop(M(mlp(ln_2(x)))); A, M are the adapters when set
  Tensor forward(const Tensor& x, const Context& ctx);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  LayerNorm ln_1;
  CausalSelfAttention attn;
  LayerNorm ln_2;
  MLP mlp;
  std::unique_ptr<Layer> adapter_attn;  // on the attention output (Houlsby), or null
  std::unique_ptr<Layer> adapter_mlp;   // on the MLP output (Houlsby, Lin), or null
  float dropout;
};

class GPT : public Module {
 public:
  GPT(const GPTConfig& cfg, Rng& rng, Device device = Device::CPU);
  // ids (B*T, row-major (B,T)) -> final hidden states after ln_f, (B,T,C). With ctx.cache the
  // ids continue the cached sequence (positions start at cache->positions).
  Tensor hidden(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx);
  // ids -> logits (B,T,V) through the tied head: h · wteᵀ
  Tensor forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx);
  // The tied head only at `rows` of x (B,T,C) read as (B·T, C): logits (N, V) for the N rows. A masked
  // loss (E2E's completion-only loss) needs logits only where the mask is, so the (B·T)·C·V head GEMM,
  // the largest in a small GPT, shrinks to N·C·V; gradients flow back through a row gather.
  Tensor head_at(const Tensor& x, const std::vector<int32_t>& rows);
  // cross_entropy(head_at(x, rows), targets, opt) with the head fused into the loss
  // (autograd::linear_cross_entropy on wte.weight): the (N, V) logits and their gradient are never held
  // whole, only 64 MiB of them at a time. Same loss and gradients within float rounding. With an
  // unmerged low-rank delta on wte the head is wte.project's, unfused.
  Tensor head_loss(const Tensor& x, const std::vector<int32_t>& rows, const std::vector<int32_t>& targets,
                   const autograd::CrossEntropyOptions& opt);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  GPTConfig config;
  Embedding wte;  // (V, C) token embedding, also the output head
  Embedding wpe;  // (n_positions, C)
  std::vector<std::unique_ptr<Block>> h;
  LayerNorm ln_f;
  Tensor prefix_embed;  // (Lp, C) learned input vectors prepended to every sequence, or undefined
};

}  // namespace lowrank::nn
