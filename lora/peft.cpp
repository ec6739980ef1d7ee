// Hugging Face peft's LoRA layout for GPT-2, to exchange adapters with PyTorch users:
//   dir/adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "target_modules", ...}
//   dir/adapter_model.safetensors    base_model.model.transformer.h.{i}.<module>.lora_A.weight (R, in)
//                                    base_model.model.transformer.h.{i}.<module>.lora_B.weight (out, R)
// peft computes ΔW = (lora_alpha / R) · B A per module (lora_alpha / sqrt(R) with use_rslora).
//
// peft puts one LoRA on the whole fused c_attn, lowrank one per slice. Our slices S (e.g. q, v),
// each of rank r, are written exactly as one c_attn LoRA of rank R = r·|S|:
//   A = [A_q; A_v] (R, C);  B (3C, R) block-structured: B_q in the q rows / columns [0, r), B_v in
//   the v rows / columns [r, 2r), zeros elsewhere;  lora_alpha = scale · R, so alpha/R = our scale
//   (with rsLoRA, use_rslora true and lora_alpha = scale · √R).
// With other targets of rank r, "r" is theirs and rank_pattern / alpha_pattern give c_attn's R.
// Reading back, a c_attn LoRA of rank R in general is exactly three slices q, k, v sharing A with
// B_s = B's rows of slice s (target "c_attn", LoRAFusedQKV::shared_A). The per-slice layout is
// restored instead when the file carries our config ("lowrank.lora.config" metadata) and B has
// the block structure. The variants' layout (DoRA's magnitudes, pissa / olora converted to plain LoRA) is
// described in peft_variants.cpp.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "lora/internal.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/safetensors.h"

namespace lowrank::lora {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using detail::kind_of;
using detail::kPeftPrefix;
using detail::PeftModule;

PeftModule to_peft(const nn::Linear& m) {
  const LoRAModule* l = as_lora(&m);
  LR_CHECK(l != nullptr, "save_peft: a module without LoRA");
  auto [A, B] = l->to_peft();
  return {A, B};
}

json peft_config(const std::string& base, const LoRAConfig& cfg, const std::map<std::string, int64_t>& rank_of) {
  const float scale = lora_scale_of(cfg.r, cfg.alpha, cfg.use_rslora);
  // the lora_alpha that gives a module of rank R our scale: peft divides it by R, or by √R with use_rslora
  const auto alpha_for = [&](int64_t R) {
    const float f = static_cast<float>(R);
    return detail::clean(scale * (cfg.use_rslora ? std::sqrt(f) : f));
  };
  const bool qkv = rank_of.count("attn.c_attn"), o = rank_of.count("attn.c_proj"), mlp = rank_of.count("mlp.c_fc");
  std::vector<std::string> targets;  // peft matches a module whose name ends with ".<target>"
  if (qkv) targets.push_back("c_attn");
  if (o) targets.push_back(mlp ? "c_proj" : "attn.c_proj");
  if (mlp) targets.push_back("c_fc");
  if (mlp && !o) targets.push_back("mlp.c_proj");
  // the rank of the modules other than c_attn (2r for pissa / olora, written converted), else c_attn's
  const int64_t r = (qkv && !o && !mlp) ? rank_of.at("attn.c_attn") : rank_of.at(o ? "attn.c_proj" : "mlp.c_fc");
  json rank_pattern = json::object(), alpha_pattern = json::object();
  if (qkv && rank_of.at("attn.c_attn") != r) {
    const int64_t R = rank_of.at("attn.c_attn");
    rank_pattern["c_attn"] = R;
    alpha_pattern["c_attn"] = alpha_for(R);
  }
  std::vector<int64_t> layers = cfg.layers;
  std::sort(layers.begin(), layers.end());
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base},
          {"r", r},
          {"lora_alpha", alpha_for(r)},
          {"lora_dropout", detail::clean(cfg.dropout)},
          {"bias", cfg.bias},
          {"fan_in_fan_out", true},  // GPT-2's Conv1D stores W as (in, out); A, B keep (R, in), (out, R)
          {"target_modules", targets},
          {"rank_pattern", rank_pattern},
          {"alpha_pattern", alpha_pattern},
          {"layers_to_transform", layers.empty() ? json(nullptr) : json(layers)},
          {"layers_pattern", layers.empty() ? json(nullptr) : json("h")},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"modules_to_save", nullptr},
          {"use_rslora", cfg.use_rslora},
          {"use_dora", cfg.use_dora},
          {"revision", nullptr}};
}

}  // namespace

void save_peft(const std::string& dir, nn::GPT& model, const LoRAConfig& cfg, const std::string& base) {
  detail::check_matches(cfg, model, "save_peft " + dir);
  // peft can adapt wte (lora_embedding_A/B), but GPT-2's lm_head stays tied to the base table and does
  // not see ΔE until merged: the exported adapter would compute a different model than ours.
  LR_CHECK(embedding_lora(model) == nullptr, "save_peft ", dir, ": target wte (LoRA on the tied token embedding) ",
           "has no faithful peft layout (peft's tied lm_head ignores ΔE); use save_adapter or export_merged_hf");
  std::map<std::string, Tensor> tensors;
  std::map<std::string, int64_t> rank_of;
  std::set<std::string> wrapped;  // our bias name of every LoRA-wrapped module
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    if (!detail::is_lora(s.module->get())) continue;
    PeftModule pm = to_peft(**s.module);
    tensors[kPeftPrefix + s.prefix + "lora_A.weight"] = pm.A;
    tensors[kPeftPrefix + s.prefix + "lora_B.weight"] = pm.B;
    rank_of[kind_of(s.prefix)] = pm.A.size(0);
    if (cfg.use_dora) tensors[kPeftPrefix + s.prefix + "lora_magnitude_vector"] = detail::peft_magnitude(**s.module);
    wrapped.insert(s.prefix + "bias");
  }
  // Trained biases; peft (>= 0.7) names a wrapped module's own bias "<module>.base_layer.bias".
  for (const auto& kv : detail::adapter_tensors(model)) {
    if (detail::is_lora_name(kv.first)) continue;
    const std::string name =
        wrapped.count(kv.first) ? kv.first.substr(0, kv.first.size() - 4) + "base_layer.bias" : kv.first;
    tensors[kPeftPrefix + name] = kv.second;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  LR_CHECK(!ec, "save_peft: cannot create directory ", dir, ": ", ec.message());
  save_safetensors(dir + "/adapter_model.safetensors", tensors,
                   {{"format", "pt"}, {"lowrank.lora.config", detail::config_to_json(cfg).dump()}});
  write_file_atomic(dir + "/adapter_config.json",
                    peft_config(base.empty() ? model.config.name : base, cfg, rank_of).dump(2) + "\n");
}

}  // namespace lowrank::lora
