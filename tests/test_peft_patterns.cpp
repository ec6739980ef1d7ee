// peft's adapter_config.json semantics (lora/peft_patterns.cpp): rank_pattern / alpha_pattern
// keys are regular expressions matched against the module's full name, first key in file order wins;
// lora_bias adapters are refused by name; a rank the patterns give must be the file's.
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using tensor::load_safetensors;
using tensor::SafetensorsFile;
using tensor::save_safetensors;

namespace {

std::unique_ptr<nn::GPT> make_gpt() {
  nn::GPTConfig c;
  c.name = "tiny";
  c.vocab_size = 23;
  c.n_positions = 8;
  c.n_embd = 8;
  c.n_head = 2;
  c.n_layer = 2;
  Rng rng(1);
  return std::make_unique<nn::GPT>(c, rng);
}

std::vector<float> logits(nn::GPT& m) {
  autograd::NoGradGuard ng;
  return m.forward({1, 5, 7, 2, 9, 3, 4, 11}, 1, 8, {}).to_vector();
}

// A q,v adapter (r 2, alpha 8: scale 4; peft: one c_attn LoRA of rank 4, lora_alpha 16) with B nonzero.
std::vector<float> write_adapter(const std::string& dir) {
  auto model = make_gpt();
  lora::LoRAConfig cfg;
  cfg.targets = {"q", "v"};
  cfg.r = 2;
  cfg.alpha = 8.f;
  Rng rng(5);
  lora::apply_lora(*model, cfg, rng);
  Rng noise(3);
  for (nn::NamedTensor& p : model->named_parameters())
    if (p.tensor.requires_grad()) p.tensor.add_(Tensor::randn(p.tensor.shape(), noise, 0.3f));
  lora::save_peft(dir, *model, cfg);
  return logits(*model);
}

// adapter_config.json rewritten as raw text (key order matters, so no JSON library round trip).
void set_config(const std::string& dir, const std::string& fields) {
  std::ifstream in(dir + "/adapter_config.json");
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(in);
  const nlohmann::ordered_json add = nlohmann::ordered_json::parse(fields);
  for (auto& kv : add.items()) j[kv.key()] = kv.value();
  write_bytes(dir + "/adapter_config.json", j.dump(2));
}

std::string load_error(const std::string& dir) {
  return error_of([&] { lora::load_peft(dir, *make_gpt()); });
}

}  // namespace

TEST_CASE("peft patterns: an alpha_pattern key is a regular expression over the module's full name") {
  TempDir t("peft_regex");
  const std::string dir = t.file("a");
  const std::vector<float> want = write_adapter(dir);
  // lora_alpha 8 would give scale 2; the key "attn\.c_attn" (peft: (.*\.)?(attn\.c_attn)$) gives 16 -> 4.
  // Matched only as a name or a suffix, the key would be ignored and the logits come out wrong.
  for (const char* key : {"attn\\\\.c_attn", "h\\\\.[0-9]\\\\.attn\\\\.c_attn", "c_attn", ".*c_at+n"}) {
    CAPTURE(key);
    set_config(dir, std::string(R"({"lora_alpha": 8, "alpha_pattern": {")") + key + R"(": 16}})");
    auto m = make_gpt();
    lora::load_peft(dir, *m);
    CHECK(logits(*m) == want);
  }
  // A key that matches no module leaves lora_alpha in charge.
  set_config(dir, R"({"lora_alpha": 16, "alpha_pattern": {"mlp\\.c_fc": 1}})");
  auto m = make_gpt();
  lora::load_peft(dir, *m);
  CHECK(logits(*m) == want);
}

TEST_CASE("peft patterns: the first matching key in file order wins, as in peft's get_pattern_key") {
  TempDir t("peft_order");
  const std::string dir = t.file("a");
  const std::vector<float> want = write_adapter(dir);
  // "h\.0\..*" sorts after "c_attn": a reader that sorts the keys would take 4 (scale 1) for h.0.
  set_config(dir, R"({"lora_alpha": 16, "alpha_pattern": {"h\\.0\\..*": 16, "c_attn": 4}})");
  CHECK(contains(load_error(dir), "has rank 2 and scale 1, others 2 and 4"));
  set_config(dir, R"({"lora_alpha": 4, "alpha_pattern": {"h\\.[01]\\..*": 16, "c_attn": 4}})");
  auto m = make_gpt();
  lora::load_peft(dir, *m);
  CHECK(logits(*m) == want);
}

TEST_CASE("peft patterns: bad keys, a rank the file does not hold and lora_bias are named") {
  TempDir t("peft_bad");
  const std::string dir = t.file("a");
  write_adapter(dir);
  set_config(dir, R"({"alpha_pattern": {"(c_attn": 16}})");
  CHECK(contains(load_error(dir), "field 'alpha_pattern' key '(c_attn' is not a regular expression"));
  set_config(dir, R"({"alpha_pattern": {}, "rank_pattern": {"attn\\.c_attn": 8}})");
  CHECK(contains(load_error(dir), "module transformer.h.0.attn.c_attn has rank 8 by its 'rank_pattern' entry"));
  set_config(dir, R"({"rank_pattern": {"attn\\.c_attn": 2.5}})");
  CHECK(contains(load_error(dir), "field 'rank_pattern' entry 'attn\\.c_attn' is 2.5, not an integer"));
  set_config(dir, R"({"rank_pattern": {}, "lora_bias": true})");
  CHECK(contains(load_error(dir), "lora_bias is true (a bias on every lora_B): not supported"));
  // The tensor alone (lora_bias lost from the config) is named as what it is, not as a stray model bias.
  set_config(dir, R"({"lora_bias": false})");
  SafetensorsFile f = load_safetensors(dir + "/adapter_model.safetensors");
  f.tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.bias"] = Tensor::zeros({24});
  save_safetensors(dir + "/adapter_model.safetensors", f.tensors, f.metadata);
  CHECK(contains(load_error(dir), "is a LoRA bias (peft's lora_bias): not supported"));
}

TEST_CASE("peft patterns: base_model_name_or_path names the base as given") {
  TempDir t("peft_base");
  auto model = make_gpt();
  lora::LoRAConfig cfg;
  Rng rng(5);
  lora::apply_lora(*model, cfg, rng);
  lora::save_peft(t.file("a"), *model, cfg, "openai-community/gpt2");
  std::ifstream in(t.file("a") + "/adapter_config.json");
  CHECK(nlohmann::json::parse(in).at("base_model_name_or_path") == "openai-community/gpt2");
  lora::save_peft(t.file("b"), *model, cfg);
  std::ifstream in2(t.file("b") + "/adapter_config.json");
  CHECK(nlohmann::json::parse(in2).at("base_model_name_or_path") == "tiny");
}
