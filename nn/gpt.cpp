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

Tensor maybe_dropout(const Tensor& x, float p, const Context& ctx) {
  if (!ctx.training || p == 0.f) return x;
  LR_CHECK(ctx.rng, "dropout: training with dropout ", p, " needs Context.rng");
  return dropout(x, p, *ctx.rng, true);
}
}  // namespace

CausalSelfAttention::CausalSelfAttention(const GPTConfig& cfg, const Init& init)
    : c_attn(std::make_unique<Linear>(cfg.n_embd, 3 * cfg.n_embd, true, init)),
      c_proj(std::make_unique<Linear>(cfg.n_embd, cfg.n_embd, true, init, residual_std(cfg))),
      NH(cfg.n_head),
      causal(cfg.causal) {}

Tensor CausalSelfAttention::forward(const Tensor& x, const Context& ctx) {
  const int64_t C = x.size(-1);
  Tensor qkv = c_attn->forward(x, ctx);  // (B,T,3C)
  // q, k, v are strided slices of qkv: attention reads them in place.
  Tensor y = attention(slice(qkv, -1, 0, C), slice(qkv, -1, C, C), slice(qkv, -1, 2 * C, C), NH, causal,
                       ctx.key_lengths ? *ctx.key_lengths : std::vector<int32_t>{});
  return c_proj->forward(y, ctx);
}

void CausalSelfAttention::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  c_attn->collect(prefix + "c_attn.", out);
  c_proj->collect(prefix + "c_proj.", out);
}

MLP::MLP(const GPTConfig& cfg, const Init& init)
    : c_fc(std::make_unique<Linear>(cfg.n_embd, cfg.mlp_width(), true, init)),
      c_proj(std::make_unique<Linear>(cfg.mlp_width(), cfg.n_embd, true, init, residual_std(cfg))) {}

Tensor MLP::forward(const Tensor& x, const Context& ctx) {
  return c_proj->forward(gelu(c_fc->forward(x, ctx)), ctx);
}

void MLP::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  c_fc->collect(prefix + "c_fc.", out);
  c_proj->collect(prefix + "c_proj.", out);
}

Block::Block(const GPTConfig& cfg, const Init& init)
    : ln_1(cfg.n_embd, cfg.layer_norm_eps, init),
      attn(cfg, init),
      ln_2(cfg.n_embd, cfg.layer_norm_eps, init),
      mlp(cfg, init),
      dropout(cfg.dropout) {}

Tensor Block::forward(const Tensor& x, const Context& ctx) {
  Tensor a = add(x, maybe_dropout(attn.forward(ln_1.forward(x), ctx), dropout, ctx));
  return add(a, maybe_dropout(mlp.forward(ln_2.forward(a), ctx), dropout, ctx));
}

void Block::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  ln_1.collect(prefix + "ln_1.", out);
  attn.collect(prefix + "attn.", out);
  ln_2.collect(prefix + "ln_2.", out);
  mlp.collect(prefix + "mlp.", out);
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
  for (int64_t i = 0; i < cfg.n_layer; ++i) h.push_back(std::make_unique<Block>(cfg, init));
}

Tensor GPT::hidden(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx) {
  LR_CHECK(B * T == static_cast<int64_t>(ids.size()), "GPT: ", ids.size(), " ids for B=", B, " T=", T);
  LR_CHECK(T <= config.n_positions, "GPT: sequence length ", T, " exceeds n_positions ", config.n_positions);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  std::iota(pos.begin(), pos.end(), 0);
  Tensor x = add(wte.forward(ids, {B, T}), wpe.forward(pos, {T}));  // (B,T,C) + (T,C)
  x = maybe_dropout(x, config.dropout, ctx);
  for (auto& block : h) x = block->forward(x, ctx);
  return ln_f.forward(x);
}

Tensor GPT::forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const Context& ctx) {
  return matmul(hidden(ids, B, T, ctx), wte.weight, false, true);  // (B,T,C)·(V,C)ᵀ -> (B,T,V)
}

void GPT::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  wte.collect(prefix + "wte.", out);
  wpe.collect(prefix + "wpe.", out);
  for (size_t i = 0; i < h.size(); ++i) h[i]->collect(prefix + "h." + std::to_string(i) + ".", out);
  ln_f.collect(prefix + "ln_f.", out);
}

}  // namespace lowrank::nn
