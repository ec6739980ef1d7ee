// apply_lora / merge / unmerge over a GPT, and reading the applied config back from the modules.
#include <algorithm>
#include <cmath>
#include <set>

#include "lora/internal.h"
#include "tensor/error.h"

namespace lowrank::lora {

namespace detail {

std::vector<LinearSlot> linear_slots(nn::GPT& model) {
  std::vector<LinearSlot> out;
  for (size_t i = 0; i < model.h.size(); ++i) {
    nn::Block& b = *model.h[i];
    const std::string p = "h." + std::to_string(i) + ".";
    out.push_back({p + "attn.c_attn.", &b.attn.c_attn});
    out.push_back({p + "attn.c_proj.", &b.attn.c_proj});
    out.push_back({p + "mlp.c_fc.", &b.mlp.c_fc});
    out.push_back({p + "mlp.c_proj.", &b.mlp.c_proj});
  }
  return out;
}

bool is_lora(const nn::Linear* m) { return as_lora(m) != nullptr; }

bool has_lora(nn::GPT& model) {
  if (embedding_lora(model)) return true;
  for (const LinearSlot& s : linear_slots(model))
    if (is_lora(s.module->get())) return true;
  return false;
}

// lora_A, lora_B, and the variants' lora_A0, lora_B0 (pissa / olora) and lora_magnitude (DoRA)
bool is_lora_name(const std::string& name) {
  return name.find("lora_A") != std::string::npos || name.find("lora_B") != std::string::npos ||
         name.find("lora_magnitude") != std::string::npos;
}

int slice_index(const std::string& s) { return s == "q" ? 0 : s == "k" ? 1 : s == "v" ? 2 : -1; }

}  // namespace detail

namespace {

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<int64_t> selected_layers(const LoRAConfig& cfg, int64_t n_layer) {
  std::vector<int64_t> out = cfg.layers;
  if (out.empty())
    for (int64_t i = 0; i < n_layer; ++i) out.push_back(i);
  for (int64_t l : out)
    LR_CHECK(l < n_layer, "apply_lora: layer ", l, " out of range for a model with ", n_layer, " layers");
  std::sort(out.begin(), out.end());
  return out;
}

// Bias modes as in loralib's mark_only_lora_as_trainable (and peft): "all" trains every bias of the
// model, "lora_only" the biases of the adapted modules. The paper trains none (Section 4.2).
void apply_bias_mode(nn::GPT& model, const std::string& bias) {
  if (bias == "all") {
    for (nn::NamedTensor& p : model.named_parameters())
      if (ends_with(p.name, "bias")) p.tensor.requires_grad_(true);
  } else if (bias == "lora_only") {
    for (const detail::LinearSlot& s : detail::linear_slots(model))
      if (detail::is_lora(s.module->get()) && (*s.module)->bias.defined()) (*s.module)->bias.requires_grad_(true);
  }
}

// A rank-r update of an (out, in) matrix has rank at most min(in, out): a larger r (a typo, or a file's
// header) is refused before A and B are allocated. c_attn counts per q/k/v slice: (C, C).
void check_rank(nn::GPT& model, const LoRAConfig& cfg, const std::vector<int64_t>& layers, bool qkv) {
  for (int64_t l : layers) {
    nn::Block& b = *model.h[static_cast<size_t>(l)];
    std::vector<std::pair<const char*, const nn::Linear*>> mods;
    if (qkv) mods.emplace_back("attn.c_attn (per q/k/v slice)", b.attn.c_attn.get());
    if (has(cfg.targets, "o")) mods.emplace_back("attn.c_proj", b.attn.c_proj.get());
    if (has(cfg.targets, "mlp")) {
      mods.emplace_back("mlp.c_fc", b.mlp.c_fc.get());
      mods.emplace_back("mlp.c_proj", b.mlp.c_proj.get());
    }
    for (const auto& [name, m] : mods) {
      const int64_t out = m == b.attn.c_attn.get() ? m->in_features() : m->out_features();
      const int64_t cap = std::min(m->in_features(), out);
      LR_CHECK(cfg.r <= cap, "apply_lora: r=", cfg.r, " exceeds ", cap, ", the rank of h.", l, ".", name, " (",
               m->in_features(), " -> ", out, ")");
    }
  }
}

}  // namespace

int64_t apply_lora(nn::GPT& model, const LoRAConfig& cfg, Rng& rng) {
  cfg.validate();
  for (const detail::LinearSlot& s : detail::linear_slots(model))
    LR_CHECK(!detail::is_lora(s.module->get()), "apply_lora: ", s.prefix,
             " already has LoRA (apply_lora works once, on a plain model)");
  LR_CHECK(!model.wte.delta, "apply_lora: wte already has a delta (apply_lora works once, on a plain model)");
  const std::vector<int64_t> layers = selected_layers(cfg, model.config.n_layer);
  const bool shared = has(cfg.targets, "c_attn");
  std::vector<std::string> qkv;
  for (const char* s : {"q", "k", "v"})
    if (shared || has(cfg.targets, s)) qkv.push_back(s);
  check_rank(model, cfg, layers, !qkv.empty());
  model.set_requires_grad(false);  // everything frozen; only A, B (and the bias mode's biases) train
  auto wrap = [&](std::unique_ptr<nn::Linear>& m) {
    auto lora = std::make_unique<LoRALinear>(*m, cfg.r, cfg.alpha, cfg.dropout, cfg.init_std, rng, variant_of(cfg));
    m = std::move(lora);
  };
  for (int64_t l : layers) {
    nn::Block& b = *model.h[static_cast<size_t>(l)];
    if (!qkv.empty()) {
      auto fused = std::make_unique<LoRAFusedQKV>(*b.attn.c_attn, qkv, cfg.r, cfg.alpha, cfg.dropout, cfg.init_std, rng,
                                                  shared, variant_of(cfg));
      b.attn.c_attn = std::move(fused);
    }
    if (has(cfg.targets, "o")) wrap(b.attn.c_proj);
    if (has(cfg.targets, "mlp")) {
      wrap(b.mlp.c_fc);
      wrap(b.mlp.c_proj);
    }
  }
  // after the blocks, so the blocks' A draw the same numbers with or without "wte"
  if (has(cfg.targets, "wte"))
    model.wte.delta = std::make_unique<LoRAEmbedding>(model.wte, cfg.r, cfg.alpha, cfg.init_std, rng, cfg.use_rslora);
  apply_bias_mode(model, cfg.bias);
  return model.num_trainable_parameters();
}

void merge(nn::GPT& model) {
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    if (LoRAModule* m = as_lora(s.module->get())) m->merge();
  }
  if (LoRAModule* e = embedding_lora(model)) e->merge();
}

void unmerge(nn::GPT& model) {
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    if (LoRAModule* m = as_lora(s.module->get())) m->unmerge();
  }
  if (LoRAModule* e = embedding_lora(model)) e->unmerge();
}

namespace {

// What one block carries: its targets (canonical order) and the shared hyperparameters.
struct BlockLoRA {
  std::vector<std::string> targets;
  int64_t r = 0;
  float scale = 0.f, dropout = 0.f;
  bool rslora = false;
  std::string init = "gaussian";
  bool dora = false;
  bool same(const BlockLoRA& o) const {
    return r == o.r && scale == o.scale && dropout == o.dropout && rslora == o.rslora && init == o.init &&
           dora == o.dora;
  }
};

void note(BlockLoRA& b, const std::string& where, const LoRAModule& m) {
  const int64_t r = m.rank();
  const float scale = m.lora_scale(), dropout = m.lora_dropout();
  const LoRAVariant v = m.lora_variant();
  BlockLoRA mine;
  mine.r = r, mine.scale = scale, mine.dropout = dropout, mine.rslora = v.rslora, mine.init = v.init,
  mine.dora = v.dora;
  if (b.r == 0) {
    mine.targets = b.targets;
    b = mine;
    return;
  }
  LR_CHECK(b.same(mine), "lora_config_of: ", where, " has r=", r, " scale=", scale, " dropout=", dropout,
           " rslora=", v.rslora, " init=", v.init, " dora=", v.dora, ", other modules of its block r=", b.r,
           " scale=", b.scale, " dropout=", b.dropout, " rslora=", b.rslora, " init=", b.init, " dora=", b.dora,
           " (not one apply_lora config)");
}

BlockLoRA block_lora(nn::Block& blk, const std::string& p) {
  BlockLoRA b;
  if (auto* m = dynamic_cast<LoRAFusedQKV*>(blk.attn.c_attn.get())) {
    if (m->shared_A)
      b.targets.push_back("c_attn");
    else
      b.targets.insert(b.targets.end(), m->slices.begin(), m->slices.end());
    note(b, p + "attn.c_attn", *m);
  }
  if (const LoRAModule* m = as_lora(blk.attn.c_proj.get())) {
    b.targets.push_back("o");
    note(b, p + "attn.c_proj", *m);
  }
  const LoRAModule* fc = as_lora(blk.mlp.c_fc.get());
  const LoRAModule* proj = as_lora(blk.mlp.c_proj.get());
  LR_CHECK(!fc == !proj, "lora_config_of: ", p, "mlp has LoRA on only one of c_fc, c_proj (target 'mlp' adapts both)");
  if (fc) {
    b.targets.push_back("mlp");
    note(b, p + "mlp.c_fc", *fc);
    note(b, p + "mlp.c_proj", *proj);
  }
  return b;
}

// none / all / lora_only from which biases train; anything else is not an apply_lora state.
std::string bias_mode(nn::GPT& model) {
  std::set<std::string> lora_biases;
  for (const detail::LinearSlot& s : detail::linear_slots(model))
    if (detail::is_lora(s.module->get()) && (*s.module)->bias.defined()) lora_biases.insert(s.prefix + "bias");
  size_t all = 0, on = 0, lora_on = 0;
  for (nn::NamedTensor& p : model.named_parameters()) {
    if (!ends_with(p.name, "bias")) continue;
    ++all;
    if (p.tensor.requires_grad()) ++on, lora_on += lora_biases.count(p.name);
  }
  if (on == 0) return "none";
  if (on == all) return "all";
  LR_CHECK(on == lora_on && lora_on == lora_biases.size(), "lora_config_of: ", on, " of ", all,
           " biases train, which is none of the bias modes none | all | lora_only");
  return "lora_only";
}

}  // namespace

LoRAConfig lora_config_of(nn::GPT& model) {
  LoRAConfig cfg;
  cfg.targets.clear();
  std::vector<int64_t> layers;
  BlockLoRA first;
  for (size_t i = 0; i < model.h.size(); ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    BlockLoRA b = block_lora(*model.h[i], p);
    if (b.targets.empty()) continue;
    if (layers.empty()) first = b;
    LR_CHECK(b.targets == first.targets && b.same(first), "lora_config_of: block ", p, " differs from block h.",
             layers.front(), " (not one apply_lora config)");
    layers.push_back(static_cast<int64_t>(i));
  }
  const LoRAModule* wte = embedding_lora(model);
  LR_CHECK(!layers.empty() || wte, "lora_config_of: the model has no LoRA modules (call apply_lora first)");
  if (wte && layers.empty())
    first.r = wte->rank(), first.scale = wte->lora_scale(), first.dropout = 0.f, first.rslora = wte->lora_rslora();
  LR_CHECK(!wte || (wte->rank() == first.r && wte->lora_scale() == first.scale && wte->lora_rslora() == first.rslora),
           "lora_config_of: wte has r=", wte ? wte->rank() : 0, " scale=", wte ? wte->lora_scale() : 0.f,
           ", the blocks r=", first.r, " scale=", first.scale, " (not one apply_lora config)");
  cfg.targets = first.targets;
  if (wte) cfg.targets.push_back("wte");
  cfg.r = first.r;
  cfg.use_rslora = first.rslora;
  cfg.init_lora_weights = first.init;
  cfg.use_dora = first.dora;
  const float r = static_cast<float>(first.r);
  cfg.alpha = first.scale * (first.rslora ? std::sqrt(r) : r);
  cfg.dropout = first.dropout;
  if (!layers.empty() && static_cast<int64_t>(layers.size()) != model.config.n_layer) cfg.layers = layers;
  cfg.bias = bias_mode(model);
  cfg.init_std = 0.f;
  return cfg;
}

std::map<std::string, float> loraplus_lr_scale(nn::GPT& model, float ratio) {
  LR_CHECK(std::isfinite(ratio) && ratio >= 0.f, "loraplus_lr_ratio must be >= 0, got ", ratio);
  std::map<std::string, float> out;
  if (ratio == 0.f || ratio == 1.f) return out;
  // "h.0.attn.c_attn.lora_B.q", "h.0.mlp.c_fc.lora_B", "wte.lora_B": every B factor, whichever module
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad() && p.name.find("lora_B") != std::string::npos) out[p.name] = ratio;
  LR_CHECK(!out.empty(), "loraplus_lr_ratio ", ratio, ": the model has no trainable lora_B (LoRA+ needs LoRA)");
  return out;
}

}  // namespace lowrank::lora
