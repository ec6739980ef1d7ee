// Real peft and transformers on the committed fixtures in tests/fixtures/peft_tiny/ (made by
// tools/gen_peft_fixtures.py with peft 0.21 / transformers 5.24 on tests/fixtures/tiny_gpt2):
//   peft_made/        an adapter peft made and saved (regex target_modules and alpha_pattern keys, dense
//                     random B on c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj): our load gives peft's logits
//   lowrank_written/  what lora::save_peft writes for a q,v,o,mlp adapter (this test rewrites it when
//                     LOWRANK_WRITE_FIXTURES=1, else checks it is still what save_peft writes); peft's logits
//   peft_resaved/     lowrank_written loaded in peft and saved again by save_pretrained (our metadata
//                     gone): it reads back as the same per-slice adapter with the same logits
//   merged/           lora::export_merged_hf of lowrank_written: transformers' logits on it
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string kBase = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2";
const std::string kDir = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/peft_tiny";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return nlohmann::json::parse(in);
}

const nlohmann::json& reference() {
  static const nlohmann::json r = read_json(kDir + "/reference.json");
  return r;
}

std::unique_ptr<nn::GPT> base() {
  Rng rng(0);
  return nn::load_model(kBase, rng);
}

std::vector<float> logits(nn::GPT& m) {
  std::vector<int32_t> ids;
  for (const auto& row : reference().at("input_ids"))
    for (const auto& v : row) ids.push_back(v.get<int32_t>());
  const int64_t B = static_cast<int64_t>(reference().at("input_ids").size());
  autograd::NoGradGuard ng;
  return m.forward(ids, B, static_cast<int64_t>(ids.size()) / B, {}).to_vector();
}

double max_err(const std::vector<float>& ours, const char* key) {
  const nlohmann::json& want = reference().at(key);
  REQUIRE(ours.size() == want.size());
  double m = 0.0;
  for (size_t i = 0; i < ours.size(); ++i) m = std::max(m, std::fabs(ours[i] - want[i].get<double>()));
  return m;
}

// The adapter lowrank_written/ holds: q, v, o and mlp at r 2, alpha 8 on the tiny base, B drawn.
std::unique_ptr<nn::GPT> lowrank_adapter(lora::LoRAConfig& cfg) {
  auto m = base();
  cfg.targets = {"q", "v", "o", "mlp"};
  cfg.r = 2;
  cfg.alpha = 8.f;
  cfg.dropout = 0.f;
  Rng rng(11);
  lora::apply_lora(*m, cfg, rng);
  Rng noise(12);
  for (nn::NamedTensor& p : m->named_parameters())
    if (p.tensor.requires_grad()) p.tensor.add_(Tensor::randn(p.tensor.shape(), noise, 0.2f));
  return m;
}

}  // namespace

TEST_CASE("peft fixtures: lowrank_written is what save_peft writes, and peft gives our logits on it") {
  lora::LoRAConfig cfg;
  auto m = lowrank_adapter(cfg);
  const char* write = std::getenv("LOWRANK_WRITE_FIXTURES");
  if (write && std::string(write) == "1") {
    lora::save_peft(kDir + "/lowrank_written", *m, cfg, "tests/fixtures/tiny_gpt2");
    lora::export_merged_hf(kDir + "/merged", *m);
    MESSAGE("wrote " << kDir << "/lowrank_written and merged/; now run tools/gen_peft_fixtures.py");
  }
  TempDir t("peft_fix");
  lora::save_peft(t.file("a"), *m, cfg, "tests/fixtures/tiny_gpt2");
  CHECK(read_bytes(t.file("a") + "/adapter_model.safetensors") ==
        read_bytes(kDir + "/lowrank_written/adapter_model.safetensors"));
  CHECK(read_json(t.file("a") + "/adapter_config.json") == read_json(kDir + "/lowrank_written/adapter_config.json"));
  CHECK(max_err(logits(*m), "lowrank_written_peft_logits") < 1e-5);
}

TEST_CASE("peft fixtures: an adapter peft made (regex keys, dense c_attn B) gives peft's logits here") {
  const nlohmann::json cfg = read_json(kDir + "/peft_made/adapter_config.json");
  REQUIRE(cfg.at("target_modules").is_string());  // a regular expression, as peft takes it
  REQUIRE(!cfg.at("alpha_pattern").empty());
  auto m = base();
  const double before = max_err(logits(*m), "peft_made_logits");
  lora::load_peft(kDir + "/peft_made", *m);
  CHECK(before > 1e-2);  // the adapter matters
  CHECK(max_err(logits(*m), "peft_made_logits") < 1e-5);
  const lora::LoRAConfig c = lora::lora_config_of(*m);
  CHECK(c.targets == std::vector<std::string>{"c_attn", "o", "mlp"});
}

TEST_CASE("peft fixtures: lowrank -> peft save_pretrained -> lowrank restores the per-slice adapter") {
  const SafetensorsFile f = load_safetensors(kDir + "/peft_resaved/adapter_model.safetensors");
  REQUIRE(f.metadata.count("lowrank.lora.config") == 0);  // peft wrote it: our metadata is gone
  lora::LoRAConfig cfg;
  auto want = lowrank_adapter(cfg);
  auto m = base();
  lora::load_peft(kDir + "/peft_resaved", *m);
  const lora::LoRAConfig got = lora::lora_config_of(*m);
  CHECK(got.targets == lora::lora_config_of(*want).targets);
  CHECK(got.r == 2);
  CHECK(got.alpha == 8.f);
  CHECK(logits(*m) == logits(*want));
  CHECK(max_err(logits(*m), "lowrank_written_peft_logits") < 1e-5);
}

TEST_CASE("peft fixtures: transformers loads export_merged_hf's directory with our logits") {
  lora::LoRAConfig cfg;
  auto m = lowrank_adapter(cfg);
  TempDir t("peft_merged");
  lora::export_merged_hf(t.file("m"), *m);
  // The same names, shapes and metadata as the committed export; values equal up to the rounding of
  // W0 + scale·B·A, whose GEMM rounds differently with OpenBLAS's AVX2 and AVX-512 kernels (bytes are
  // equal only on the kind of CPU that wrote the fixture).
  const SafetensorsFile ours = load_safetensors(t.file("m") + "/model.safetensors");
  const SafetensorsFile want = load_safetensors(kDir + "/merged/model.safetensors");
  CHECK(ours.metadata == want.metadata);
  REQUIRE(ours.tensors.size() == want.tensors.size());
  for (const auto& kv : want.tensors) {  // no structured binding: clang 14 cannot capture one in INFO
    const std::string& name = kv.first;
    const Tensor& w = kv.second;
    INFO(name);
    REQUIRE(ours.tensors.count(name));
    const Tensor& o = ours.tensors.at(name);
    REQUIRE(o.shape() == w.shape());
    const std::vector<float> a = o.to_vector(), b = w.to_vector();
    float worst = 0.f;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    CHECK(worst <= 1e-6f);
  }
  CHECK(max_err(logits(*m), "merged_transformers_logits") < 1e-5);
}
