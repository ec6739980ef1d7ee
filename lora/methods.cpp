#include "lora/methods.h"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "lora/baselines.h"
#include "tensor/error.h"

namespace lowrank::lora {

namespace {

// Parameter counts of GPT-2's pieces (nn/gpt.h), C = n_embd, W = MLP width.
int64_t block_params(const nn::GPTConfig& c) {
  const int64_t C = c.n_embd, W = c.mlp_width();
  return 4 * C * C + 2 * C * W + 9 * C + W;  // ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj
}
int64_t block_biases(const nn::GPTConfig& c) {
  return 7 * c.n_embd + c.mlp_width();  // ln_1 C, c_attn 3C, c_proj C, ln_2 C, c_fc W, mlp.c_proj C
}
int64_t model_params(const nn::GPTConfig& c) {
  return (c.vocab_size + c.n_positions) * c.n_embd + c.n_layer * block_params(c) + 2 * c.n_embd;
}
int64_t adapter_params(const nn::GPTConfig& c, int64_t d) { return 2 * c.n_embd * d + d + c.n_embd; }

bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v)
    if (x == s) return true;
  return false;
}

// LoRA (Section 4.2): r·(in + out) per adapted matrix, plus the biases the bias mode unfreezes.
int64_t lora_count(const nn::GPTConfig& c, const LoRAConfig& l) {
  l.validate();
  const int64_t C = c.n_embd, W = c.mlp_width(), r = l.r;
  int64_t per_layer = 0, biases = 0;
  const bool shared = has(l.targets, "c_attn");  // one A (r, C) for q, k and v, B (3C, r)
  for (const char* s : {"q", "k", "v"})
    if (has(l.targets, s) || shared) per_layer += r * (shared ? C : 2 * C);
  if (shared) per_layer += r * C;
  if (has(l.targets, "o")) per_layer += r * 2 * C;
  if (has(l.targets, "mlp")) per_layer += 2 * r * (C + W);
  if (shared || has(l.targets, "q") || has(l.targets, "k") || has(l.targets, "v")) biases += 3 * C;  // fused c_attn
  if (has(l.targets, "o")) biases += C;
  if (has(l.targets, "mlp")) biases += W + C;
  const int64_t layers =
      l.layers.empty() ? c.n_layer : static_cast<int64_t>(std::set<int64_t>(l.layers.begin(), l.layers.end()).size());
  int64_t n = layers * per_layer;
  if (l.bias == "all") n += c.n_layer * block_biases(c) + C;  // every bias, ln_f's included
  if (l.bias == "lora_only") n += layers * biases;
  return n;
}

struct Method {
  const char* name;
  std::function<int64_t(nn::GPT&, const MethodConfig&, Rng&)> apply;
  std::function<int64_t(const nn::GPTConfig&, const MethodConfig&)> count;
};

const std::vector<Method>& methods() {
  using G = nn::GPT;
  using Cfg = nn::GPTConfig;
  using M = MethodConfig;
  static const std::vector<Method> all = {
      {"lora", [](G& g, const M& m, Rng& r) { return apply_lora(g, m.lora, r); },
       [](const Cfg& c, const M& m) { return lora_count(c, m.lora); }},
      {"ft", [](G& g, const M&, Rng&) { return apply_ft(g); }, [](const Cfg& c, const M&) { return model_params(c); }},
      {"ft-top2", [](G& g, const M&, Rng&) { return apply_ft_top2(g); },
       [](const Cfg& c, const M&) { return std::min<int64_t>(2, c.n_layer) * block_params(c); }},
      {"bitfit", [](G& g, const M&, Rng&) { return apply_bitfit(g); },
       [](const Cfg& c, const M&) { return c.n_layer * block_biases(c) + c.n_embd; }},
      {"adapter-h", [](G& g, const M& m, Rng& r) { return apply_adapter_h(g, m.adapter_dim, r); },
       [](const Cfg& c, const M& m) { return c.n_layer * 2 * adapter_params(c, m.adapter_dim); }},
      {"adapter-l", [](G& g, const M& m, Rng& r) { return apply_adapter_l(g, m.adapter_dim, r); },
       [](const Cfg& c, const M& m) { return c.n_layer * (adapter_params(c, m.adapter_dim) + 2 * c.n_embd); }},
      {"prefix-embed", [](G& g, const M& m, Rng& r) { return apply_prefix_embed(g, m.prefix_len, r); },
       [](const Cfg& c, const M& m) { return m.prefix_len * c.n_embd; }},
      {"prefix-layer", [](G& g, const M& m, Rng& r) { return apply_prefix_layer(g, m.prefix_len, r); },
       [](const Cfg& c, const M& m) { return 2 * c.n_layer * m.prefix_len * c.n_embd; }},
  };
  return all;
}

const Method& find(const MethodConfig& m) {
  for (const Method& x : methods())
    if (m.method == x.name) {
      LR_CHECK(m.adapter_dim > 0, "method ", m.method, ": adapter_dim must be positive, got ", m.adapter_dim);
      LR_CHECK(m.prefix_len > 0, "method ", m.method, ": prefix_len must be positive, got ", m.prefix_len);
      return x;
    }
  std::string valid;
  for (const std::string& n : method_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error(cat("unknown method '", m.method, "' (valid: ", valid, ")"));
}

}  // namespace

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const Method& x : methods()) names.push_back(x.name);
  return names;
}

int64_t apply_method(nn::GPT& model, const MethodConfig& m, Rng& rng) { return find(m).apply(model, m, rng); }

int64_t trainable_count(const nn::GPTConfig& cfg, const MethodConfig& m) {
  cfg.validate();
  return find(m).count(cfg, m);
}

MethodConfig lora_method(int64_t r, std::vector<std::string> targets) {
  MethodConfig m;
  m.lora.r = r;
  m.lora.targets = std::move(targets);
  return m;
}

MethodConfig baseline_method(const std::string& name, int64_t size) {
  MethodConfig m;
  m.method = name;
  m.adapter_dim = m.prefix_len = size;
  return m;
}

}  // namespace lowrank::lora
