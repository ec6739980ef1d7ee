#pragma once
// Helpers shared by lora.cpp (modules, apply_lora), adapter_io.cpp (lowrank adapter files) and
// peft.cpp (Hugging Face peft layout). Not part of the public API.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "tensor/strings.h"

namespace lowrank::lora::detail {

// One replaceable Linear of a block: its parameter-name prefix ("h.3.attn.c_attn.") and its slot.
struct LinearSlot {
  std::string prefix;
  std::unique_ptr<nn::Linear>* module;
};
// Every block's c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, in parameter order.
std::vector<LinearSlot> linear_slots(nn::GPT& model);
bool is_lora(const nn::Linear* m);  // a LoRALinear or LoRAFusedQKV
bool has_lora(nn::GPT& model);
bool is_lora_name(const std::string& name);  // "...lora_A...", "...lora_B..."
int slice_index(const std::string& s);       // q 0, k 1, v 2

// The tensors an adapter carries: LoRA A/B and, when the model has LoRA, the biases that train.
std::map<std::string, Tensor> adapter_tensors(nn::GPT& model);

// A float as the shortest decimal that reads back as the same float (0.1f -> 0.1, not 0.10000000149).
double clean(float v);
nlohmann::json config_to_json(const LoRAConfig& c);
LoRAConfig config_from_json(const nlohmann::json& j, const std::string& path_for_errors);
std::string describe(const LoRAConfig& c);  // "r=4 alpha=32 dropout=0.1 targets=q,v layers=all bias=none"
// "" when a and b describe the same adapter on a model of n_layer blocks (order of targets and
// layers, empty = all layers, and init_std do not matter), else the first difference.
std::string config_diff(const LoRAConfig& a, const LoRAConfig& b, int64_t n_layer);
// Throws "<what>: cfg (...) does not match the model's LoRA modules (...)" unless they agree.
void check_matches(const LoRAConfig& cfg, nn::GPT& model, const std::string& what);

// ---- Hugging Face peft layout (peft.cpp, peft_load.cpp) ----
inline const std::string kPeftPrefix = "base_model.model.transformer.";
struct PeftModule {
  Tensor A, B;  // peft's lora_A.weight (R, in) and lora_B.weight (out, R), contiguous CPU
};
// The value of the first key of cfg[field] (rank_pattern, alpha_pattern) that matches the module's
// full name as peft matches it (peft_patterns.cpp), or null.
const nlohmann::ordered_json* pattern_value(const nlohmann::ordered_json& cfg, const char* field,
                                            const std::string& module, const std::string& path);
// The variants in peft's layout (peft_variants.cpp): DoRA's lora_magnitude_vector (out) of a module,
// on the host, and back; the init an adapter_config.json's init_lora_weights asks for (gaussian, pissa).
Tensor peft_magnitude(const nn::Linear& m);
void set_peft_magnitude(nn::Linear& m, const Tensor& mag, const std::string& where);
std::string peft_init(const nlohmann::ordered_json& v, const std::string& path);
// Whether a c_attn magnitude (3C) is ‖W0 row‖ on every slice outside `slices` (factor 1 there), so the
// per-slice layout holds it.
bool magnitude_fits_slices(const Tensor& mag, const nn::Linear& c_attn, const std::vector<std::string>& slices);
// The slices (q, k, v) of a c_attn LoRA whose B has lowrank's per-slice blocks of rank r, else {}.
std::vector<std::string> block_slices(const PeftModule& pm, int64_t r);
// "h.3.attn.c_attn." -> "attn.c_attn"
inline std::string kind_of(const std::string& prefix) {
  const size_t dot = prefix.find('.', 2);
  return prefix.substr(dot + 1, prefix.size() - dot - 2);
}

}  // namespace lowrank::lora::detail
