#include "nn/config.h"

#include <cmath>

#include "tensor/error.h"

namespace lowrank::nn {

namespace {

GPTConfig make(const std::string& name, int64_t V, int64_t T, int64_t C, int64_t L, int64_t NH, bool causal = true) {
  GPTConfig c;
  c.name = name;
  c.vocab_size = V;
  c.n_positions = T;
  c.n_embd = C;
  c.n_layer = L;
  c.n_head = NH;
  c.causal = causal;
  return c;
}

std::vector<GPTConfig> presets() {
  return {
      make("tiny", 128, 32, 32, 2, 4),         // unit tests
      make("mini", 50257, 256, 192, 4, 4),     // trains on 2 CPU cores in minutes
      make("gpt2", 50257, 1024, 768, 12, 12),  // GPT-2 small, 124M
      make("gpt2-medium", 50257, 1024, 1024, 24, 16),
      make("gpt2-large", 50257, 1024, 1280, 36, 20),
      make("gpt3-175b", 50257, 2048, 12288, 96, 96),  // Brown et al. 2020, Table 2.1
      make("roberta-base", 50265, 514, 768, 12, 12, false),
      make("roberta-large", 50265, 514, 1024, 24, 16, false),
      make("deberta-xxl", 128100, 512, 1536, 48, 24, false),  // DeBERTa-V2-XXLarge
  };
}

}  // namespace

void GPTConfig::validate() const {
  LR_CHECK(vocab_size > 0 && n_positions > 0 && n_embd > 0 && n_layer > 0 && n_head > 0, "config ", name,
           ": sizes must be positive");
  // Upper bounds far above every preset (gpt3-175b: C 12288, 96 layers; deberta-xxl: V 128100), so that
  // sizes read from a file cannot ask for exabytes or overflow int64 in products of two of them.
  const struct {
    const char* field;
    int64_t value, max;
  } bounds[] = {{"vocab_size", vocab_size, 1 << 22}, {"n_positions", n_positions, 1 << 20},
                {"n_embd", n_embd, 1 << 16},         {"n_layer", n_layer, 1 << 10},
                {"n_inner", n_inner, 1 << 18},       {"n_classes", n_classes, 1 << 16}};
  for (const auto& b : bounds)
    LR_CHECK(b.value >= 0 && b.value <= b.max, "config ", name, ": ", b.field, " ", b.value, " outside [0, ", b.max,
             "]");
  LR_CHECK(std::isfinite(layer_norm_eps) && layer_norm_eps > 0.f, "config ", name, ": layer_norm_eps ", layer_norm_eps,
           " is not a positive number");
  LR_CHECK(n_embd % n_head == 0, "config ", name, ": n_embd ", n_embd, " is not divisible by n_head ", n_head);
  LR_CHECK(dropout >= 0.f && dropout < 1.f, "config ", name, ": dropout ", dropout, " outside [0, 1)");
}

GPTConfig config_by_name(const std::string& name) {
  for (const GPTConfig& c : presets())
    if (c.name == name) return c;
  std::string all;
  for (const std::string& n : config_names()) all += (all.empty() ? "" : ", ") + n;
  throw Error(cat("unknown model config '", name, "' (known: ", all, ")"));
}

std::vector<std::string> config_names() {
  std::vector<std::string> names;
  for (const GPTConfig& c : presets()) names.push_back(c.name);
  return names;
}

}  // namespace lowrank::nn
