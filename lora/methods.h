#pragma once
// One entry point for the example binaries: LoRA or one of the paper's baselines (Hu et al., 2021,
// Section 5.1; see lora/baselines.h for what each trains), chosen by name.
#include <cstdint>
#include <string>
#include <vector>

#include "lora/lora.h"

namespace lowrank::lora {

struct MethodConfig {
  std::string method = "lora";  // one of method_names()
  LoRAConfig lora;              // method "lora"
  int64_t adapter_dim = 8;      // bottleneck d of adapter-h / adapter-l
  int64_t prefix_len = 8;       // Lp of prefix-embed / prefix-layer
};

// Shorthands for tables and tests: LoRA with rank r on `targets` (the rest of LoRAConfig at its
// defaults), and a baseline by name whose adapter bottleneck d and prefix length Lp are both `size`.
MethodConfig lora_method(int64_t r, std::vector<std::string> targets);
MethodConfig baseline_method(const std::string& name, int64_t size = 8);

// "lora", "ft", "ft-top2", "bitfit", "adapter-h", "adapter-l", "prefix-embed", "prefix-layer"
std::vector<std::string> method_names();

// Freezes the model, adds/unfreezes the method's parameters, returns the trainable count.
// Throws with the list of valid names on an unknown method.
int64_t apply_method(nn::GPT& model, const MethodConfig& m, Rng& rng);

// The same count from the shapes alone (tables for GPT-3-sized configs without allocating);
// the tests hold it equal to apply_method's on real models.
int64_t trainable_count(const nn::GPTConfig& cfg, const MethodConfig& m);

}  // namespace lowrank::lora
