#pragma once
// Model shapes. Named presets cover the paper's models (Table 2-5) and tiny ones for tests.
#include <cstdint>
#include <string>
#include <vector>

namespace lowrank::nn {

struct GPTConfig {
  std::string name = "custom";
  int64_t vocab_size = 50257;  // V
  int64_t n_positions = 1024;  // longest sequence (T max)
  int64_t n_embd = 768;        // C
  int64_t n_layer = 12;
  int64_t n_head = 12;  // NH
  int64_t n_inner = 0;  // MLP hidden width; 0 means 4·C
  float dropout = 0.f;  // residual, embedding and attention-output dropout
  float layer_norm_eps = 1e-5f;
  bool causal = true;     // false: bidirectional encoder (GLUE-style classification)
  int64_t n_classes = 0;  // encoder classification head size (0: none)

  int64_t mlp_width() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  void validate() const;  // throws lowrank::Error naming the bad field
};

// "tiny", "mini", "gpt2", "gpt2-medium", "gpt2-large", "gpt3-175b",
// "roberta-base", "roberta-large", "deberta-xxl". Throws with the list on an unknown name.
GPTConfig config_by_name(const std::string& name);
std::vector<std::string> config_names();

}  // namespace lowrank::nn
