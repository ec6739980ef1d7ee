#include "nn/gpt.h"

#include <cmath>
#include <numeric>

#include "tensor/error.h"

namespace lowrank::nn {

using namespace lowrank::autograd;

namespace {
// GPT-2 scales the init of the projections that write into the residual stream by
// 1/sqrt(2·n_layer) (Radford et al., 2019, Section 2.3), so the stream's variance stays bounded.
float residual_std(const GPTConfig& cfg) { return 0.02f / std::sqrt(2.f * static_cast<float>(cfg.n_layer)); }

}  // namespace

CausalSelfAttention::CausalSelfAttention(const GPTConfig& cfg, const Init& init, int64_t layer_)
    : c_attn(std::make_unique<Linear>(cfg.n_embd, 3 * cfg.n_embd, true, init)),
      c_proj(std::make_unique<Linear>(cfg.n_embd, cfg.n_embd, true, init, residual_std(cfg))),
      NH(cfg.n_head),
      causal(cfg.causal),
      layer(layer_) {}

namespace {
// (Lp, C) -> (B, Lp, C): the same learned rows for every sequence (gradients sum over B).
Tensor expand_rows(const Tensor& p, int64_t B) { return add(Tensor::zeros({B, p.size(0), p.size(1)}, p.device()), p); }

// Keys or values seen by this call: earlier ones (cache, else the learned prefix) then the new ones.
Tensor with_past(const Tensor& now, const Tensor& prefix, std::vector<Tensor>* cache, int64_t layer) {
  Tensor past;
  if (cache && static_cast<int64_t>(cache->size()) > layer) past = (*cache)[static_cast<size_t>(layer)];
  if (!past.defined() && prefix.defined()) past = expand_rows(prefix, now.size(0));
  Tensor all = past.defined() ? concat({past, now}, 1) : now;
  if (cache) {
    if (static_cast<int64_t>(cache->size()) <= layer) cache->resize(static_cast<size_t>(layer + 1));
    (*cache)[static_cast<size_t>(layer)] = all.contiguous();
  }
  return all;
}
}  // namespace

Tensor CausalSelfAttention::forward(const Tensor& x, const Context& ctx) {
  const int64_t C = x.size(-1);
  Tensor qkv = c_attn->forward(x, ctx);  // (B,T,3C)
  // q, k, v are strided slices of qkv: attention reads them in place when nothing is prepended.
  Tensor q = slice(qkv, -1, 0, C);
  Tensor k = with_past(slice(qkv, -1, C, C), prefix_k, ctx.cache ? &ctx.cache->k : nullptr, layer);
  Tensor v = with_past(slice(qkv, -1, 2 * C, C), prefix_v, ctx.cache ? &ctx.cache->v : nullptr, layer);
  LR_CHECK(!ctx.key_lengths || k.size(1) == x.size(1),
           "attention: padded batches (key_lengths) cannot be combined "
           "with a KV cache or prefix keys");
  Tensor y = attention(q, k, v, NH, causal, ctx.key_lengths ? *ctx.key_lengths : std::vector<int32_t>{});
  return c_proj->forward(y, ctx);
}

void CausalSelfAttention::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  c_attn->collect(prefix + "c_attn.", out);
  c_proj->collect(prefix + "c_proj.", out);
  if (prefix_k.defined()) out.push_back({prefix + "prefix_k", prefix_k});
  if (prefix_v.defined()) out.push_back({prefix + "prefix_v", prefix_v});
}

MLP::MLP(const GPTConfig& cfg, const Init& init)
    : c_fc(std::make_unique<Linear>(cfg.n_embd, cfg.mlp_width(), true, init)),
      c_proj(std::make_unique<Linear>(cfg.mlp_width(), cfg.n_embd, true, init, residual_std(cfg))) {}

Tensor MLP::forward(const Tensor& x, const Context& ctx) { return c_proj->forward(gelu(c_fc->forward(x, ctx)), ctx); }

void MLP::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  c_fc->collect(prefix + "c_fc.", out);
  c_proj->collect(prefix + "c_proj.", out);
}

Block::Block(const GPTConfig& cfg, const Init& init, int64_t layer)
    : ln_1(cfg.n_embd, cfg.layer_norm_eps, init),
      attn(cfg, init, layer),
      ln_2(cfg.n_embd, cfg.layer_norm_eps, init),
      mlp(cfg, init),
      dropout(cfg.dropout) {}

Tensor Block::forward(const Tensor& x, const Context& ctx) {
  Tensor y = attn.forward(ln_1.forward(x), ctx);
  if (adapter_attn) y = adapter_attn->forward(y, ctx);
  Tensor a = add(x, dropout_if_training(y, dropout, ctx));
  Tensor z = mlp.forward(ln_2.forward(a), ctx);
  if (adapter_mlp) z = adapter_mlp->forward(z, ctx);
  return add(a, dropout_if_training(z, dropout, ctx));
}

void Block::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  ln_1.collect(prefix + "ln_1.", out);
  attn.collect(prefix + "attn.", out);
  ln_2.collect(prefix + "ln_2.", out);
  mlp.collect(prefix + "mlp.", out);
  if (adapter_attn) adapter_attn->collect(prefix + "adapter_attn.", out);
  if (adapter_mlp) adapter_mlp->collect(prefix + "adapter_mlp.", out);
}

namespace {
Init make_init(const GPTConfig& cfg, Rng& rng, Device device) {
  cfg.validate();
  return Init{rng, device};
}
}  // namespace

GPT::GPT(const GPTConfig& cfg, Rng& rng, Device device)
    : config(cfg),
      wte(cfg.vocab_size, cfg.n_embd, make_init(cfg, rng, device)),
      wpe(cfg.n_positions, cfg.n_embd, Init{rng, device}, 0.01f),
      ln_f(cfg.n_embd, cfg.layer_norm_eps, Init{rng, device}) {
  Init init{rng, device};
  for (int64_t i = 0; i < cfg.n_layer; ++i) h.push_back(std::make_unique<Block>(cfg, init, i));
}

Tensor GPT::hidden(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx) {
  LR_CHECK(B * T == static_cast<int64_t>(ids.size()), "GPT: ", ids.size(), " ids for B=", B, " T=", T);
  const int64_t start = ctx.cache ? ctx.cache->positions : 0;
  LR_CHECK(start + T <= config.n_positions, "GPT: sequence length ", start + T, " exceeds n_positions ",
           config.n_positions);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  std::iota(pos.begin(), pos.end(), static_cast<int32_t>(start));
  Tensor x = add(wte.forward(ids, {B, T}), wpe.forward(pos, {T}));  // (B,T,C) + (T,C)
  // Prefix-embedding tuning: learned vectors (no position embedding) before the first real token;
  // with a cache they are processed once, on the first call, and live on as cached keys/values.
  const bool prefix = prefix_embed.defined() && start == 0;
  LR_CHECK(!prefix || !ctx.key_lengths, "GPT: prefix embeddings cannot be combined with padded batches");
  if (prefix) x = concat({expand_rows(prefix_embed, B), x}, 1);
  x = dropout_if_training(x, config.dropout, ctx);
  for (auto& block : h) x = block->forward(x, ctx);
  if (prefix) x = slice(x, 1, prefix_embed.size(0), T);
  if (ctx.cache) ctx.cache->positions += T;
  return ln_f.forward(x);
}

Tensor GPT::forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx) {
  return wte.project(hidden(ids, B, T, ctx));  // (B,T,C)·(V,C)ᵀ -> (B,T,V)
}

Tensor GPT::head_at(const Tensor& x, const std::vector<int32_t>& rows) {
  const int64_t C = config.n_embd;
  LR_CHECK(x.ndim() >= 2 && x.size(x.ndim() - 1) == C, "GPT::head_at: hidden states ", x.shape(),
           " do not end in C=", C);
  Tensor flat = reshape(x, {x.numel() / C, C});                                // (B·T, C)
  Tensor picked = embedding(flat, rows, {static_cast<int64_t>(rows.size())});  // (N, C), ids checked
  return wte.project(picked);                                                  // (N,C)·(V,C)ᵀ -> (N,V)
}

Tensor GPT::head_loss(const Tensor& x, const std::vector<int32_t>& rows, const std::vector<int32_t>& targets,
                      const CrossEntropyOptions& opt) {
  const int64_t C = config.n_embd;
  LR_CHECK(x.ndim() >= 2 && x.size(x.ndim() - 1) == C, "GPT::head_loss: hidden states ", x.shape(),
           " do not end in C=", C);
  Tensor flat = reshape(x, {x.numel() / C, C});                                // (B·T, C)
  Tensor picked = embedding(flat, rows, {static_cast<int64_t>(rows.size())});  // (N, C), ids checked
  if (wte.delta && !wte.delta->merged())  // the head is weight + ΔE: not one (V, C) matrix, so unfused
    return cross_entropy(wte.project(picked), targets, opt);
  return linear_cross_entropy(picked, wte.weight, targets, opt);  // (N,C), (V,C) -> ()
}

void GPT::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  wte.collect(prefix + "wte.", out);
  wpe.collect(prefix + "wpe.", out);
  for (size_t i = 0; i < h.size(); ++i) h[i]->collect(prefix + "h." + std::to_string(i) + ".", out);
  ln_f.collect(prefix + "ln_f.", out);
  if (prefix_embed.defined()) out.push_back({prefix + "prefix_embed", prefix_embed});
}

}  // namespace lowrank::nn
