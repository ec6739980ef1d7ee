// The LoRA variants against real peft 0.21 (tests/fixtures/peft_tiny/variants/, made by
// `tools/gen_peft_fixtures.py variants` on tests/fixtures/tiny_gpt2; its reference.json has peft's logits):
//   rslora/, dora/, pissa/   adapters peft made (pissa saved unconverted: A0, B0 recomputed from W0 here)
//   pissa_converted/         the same PiSSA adapter after peft's conversion to plain LoRA (rank 2r)
//   lowrank_written_<v>/     what lora::save_peft writes for variant v (this test rewrites them when
//                            LOWRANK_WRITE_FIXTURES=1); reference.json has peft's logits on each
// peft cannot make an OLoRA adapter on GPT-2's Conv1D (reference.json "skipped"), but lowrank_written_olora
// is plain LoRA against W0 (converted), which peft loads like any other.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "lora_test_util.h"
#include "nn/checkpoint.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string kBase = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2";
const std::string kDir = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/peft_tiny/variants";

const nlohmann::json& reference() {
  static const nlohmann::json r = [] {
    std::ifstream in(kDir + "/reference.json");
    REQUIRE_MESSAGE(in.good(), "cannot open " << kDir << "/reference.json");
    return nlohmann::json::parse(in);
  }();
  return r;
}

std::unique_ptr<nn::GPT> base() {
  Rng rng(0);
  return nn::load_model(kBase, rng);
}

std::vector<float> ref_logits(nn::GPT& m) {
  std::vector<int32_t> ids;
  for (const auto& row : reference().at("input_ids"))
    for (const auto& v : row) ids.push_back(v.get<int32_t>());
  const int64_t B = static_cast<int64_t>(reference().at("input_ids").size());
  autograd::NoGradGuard ng;
  return m.forward(ids, B, static_cast<int64_t>(ids.size()) / B, {}).to_vector();
}

double max_err(const std::vector<float>& ours, const std::string& key) {
  REQUIRE_MESSAGE(reference().contains(key), key << " missing: run tools/gen_peft_fixtures.py variants");
  const nlohmann::json& want = reference().at(key);
  REQUIRE(ours.size() == want.size());
  double m = 0.0;
  for (size_t i = 0; i < ours.size(); ++i) m = std::max(m, std::fabs(ours[i] - want[i].get<double>()));
  return m;
}

// lowrank_written_<v>: q, v, o and mlp at r 2, alpha 8 on the tiny base, every trainable tensor moved.
std::unique_ptr<nn::GPT> lowrank_variant(const std::string& v, lora::LoRAConfig& cfg) {
  auto m = base();
  cfg.targets = {"q", "v", "o", "mlp"};
  cfg.r = 2;
  cfg.alpha = 8.f;
  cfg.dropout = 0.f;
  cfg.use_rslora = v == "rslora";
  cfg.use_dora = v == "dora";
  cfg.init_lora_weights = v == "pissa" || v == "olora" ? v : "gaussian";
  Rng rng(11);
  lora::apply_lora(*m, cfg, rng);
  Rng noise(12);
  for (nn::NamedTensor& p : m->named_parameters())
    if (p.tensor.requires_grad()) p.tensor.add_(Tensor::randn(p.tensor.shape(), noise, 0.1f));
  return m;
}

}  // namespace

TEST_CASE("peft variants: adapters peft made (rslora, dora, unconverted and converted pissa) give peft's logits") {
  const double plain = max_err(ref_logits(*base()), "dora_peft_logits");
  CHECK(plain > 1e-2);  // the adapters matter
  for (const std::string v : {"rslora", "dora", "pissa", "pissa_converted"}) {
    CAPTURE(v);
    auto m = base();
    lora::load_peft(kDir + "/" + v, *m);
    const std::string key = v == "pissa_converted" ? "pissa_peft_logits" : v + "_peft_logits";
    CHECK(max_err(ref_logits(*m), key) < 1e-5);
    const lora::LoRAConfig c = lora::lora_config_of(*m);
    CHECK(c.use_dora == (v == "dora"));
    CHECK(c.use_rslora == (v == "rslora"));
    CHECK(c.init_lora_weights == (v == "pissa" ? "pissa" : "gaussian"));
    CHECK(c.r == (v == "pissa_converted" ? 4 : 2));  // peft's conversion doubles r
    if (v == "dora") {                               // our merge is peft's merge_and_unload
      lora::merge(*m);
      CHECK(max_err(ref_logits(*m), "dora_merged_logits") < 1e-5);
    }
  }
}

TEST_CASE("peft variants: peft gives our logits on what save_peft writes for each variant") {
  const char* write = std::getenv("LOWRANK_WRITE_FIXTURES");
  for (const std::string v : {"rslora", "dora", "pissa", "olora"}) {
    CAPTURE(v);
    lora::LoRAConfig cfg;
    auto m = lowrank_variant(v, cfg);
    const std::string dir = kDir + "/lowrank_written_" + v;
    if (write && std::string(write) == "1") {
      lora::save_peft(dir, *m, cfg, "tests/fixtures/tiny_gpt2");
      MESSAGE("wrote " << dir << "; now run tools/gen_peft_fixtures.py variants");
      continue;
    }
    const std::vector<float> ours = ref_logits(*m);
    auto back = base();
    lora::load_peft(dir, *back);  // pissa / olora come back as plain LoRA of rank 2r against W0
    CHECK(max_diff(ref_logits(*back), ours) < 1e-5);
    CHECK(max_err(ours, v + "_lowrank_written_peft_logits") < 1e-4);  // our SVD and peft's agree to ~1e-6
    CHECK(max_err(ref_logits(*back), v + "_lowrank_written_peft_logits") < 1e-5);
  }
}

TEST_CASE("peft variants: bad variant files are refused naming the file and field, the model untouched") {
  TempDir t("peft_variants_bad");
  const std::string dir = t.file("a");
  std::filesystem::copy(kDir + "/dora", dir);
  auto edit = [&](const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = nlohmann::json::parse(read_bytes(kDir + "/dora/adapter_config.json"));
    j[key] = v;
    write_bytes(dir + "/adapter_config.json", j.dump());
  };
  auto refused = [&](const std::string& part) {
    auto m = base();
    const std::vector<float> before = ref_logits(*m);
    const std::string e = error_of([&] { lora::load_peft(dir, *m); });
    CAPTURE(e);
    CHECK(contains(e, part));
    CHECK(ref_logits(*m) == before);  // a failed load leaves the model as it was
  };
  edit("use_dora", false);  // magnitudes in the file, use_dora off
  refused("has a lora_magnitude_vector but use_dora is false");
  edit("init_lora_weights", "olora");
  refused("init_lora_weights 'olora' without conversion");
  edit("init_lora_weights", "pissa_niter_4");
  refused("init_lora_weights 'pissa_niter_4' is not supported");
  edit("init_lora_weights", 3);
  refused("field 'init_lora_weights' is 3");
  std::filesystem::copy(kDir + "/rslora/adapter_model.safetensors", dir + "/adapter_model.safetensors",
                        std::filesystem::copy_options::overwrite_existing);
  edit("init_lora_weights", false);  // use_dora true, but the tensors carry no magnitudes
  refused("lacks its lora_magnitude_vector (use_dora is true)");
}
