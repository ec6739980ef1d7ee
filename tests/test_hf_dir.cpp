// Hugging Face GPT-2 directories as bases and as exports (nn/hf_gpt2.h): config.json read
// and checked field by field against the tensors, the fixture's logits through nn::load_model(dir),
// save_hf_dir's layout read back exactly, and finetune_e2e --init DIR / --save-adapter DIR /
// --export-merged DIR / --adapter DIR end to end on a GPT-2-BPE-sized random model.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "cli_util.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "tensor/safetensors.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string kFixture = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return nlohmann::json::parse(in);
}

std::vector<float> fixture_logits(nn::GPT& model) {
  const nlohmann::json ref = read_json(kFixture + "/reference.json");
  std::vector<int32_t> ids;
  for (const auto& row : ref.at("input_ids"))
    for (const auto& v : row) ids.push_back(v.get<int32_t>());
  const int64_t B = static_cast<int64_t>(ref.at("input_ids").size());
  autograd::NoGradGuard ng;
  return model.forward(ids, B, static_cast<int64_t>(ids.size()) / B, {}).to_vector();
}

double max_err_vs_reference(const std::vector<float>& ours) {
  const nlohmann::json expect = read_json(kFixture + "/reference.json").at("logits");
  REQUIRE(ours.size() == expect.size());
  double m = 0.0;
  for (size_t i = 0; i < ours.size(); ++i) m = std::max(m, std::fabs(ours[i] - expect[i].get<double>()));
  return m;
}

// A copy of the fixture directory with config.json edited by `edit`.
std::string edited_copy(const TempDir& t, const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const std::string dir = t.file(name);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kFixture + "/model.safetensors", dir + "/model.safetensors");
  nlohmann::json j = read_json(kFixture + "/config.json");
  edit(j);
  write_bytes(dir + "/config.json", j.dump(2));
  return dir;
}

std::string load_error(const std::string& dir) {
  return error_of([&] {
    Rng rng(0);
    nn::load_model(dir, rng);
  });
}

}  // namespace

TEST_CASE("hf dir: nn::load_model(dir) takes its shapes from config.json and gives transformers' logits") {
  Rng rng(0);
  auto model = nn::load_model(kFixture, rng);
  CHECK(model->config.n_head == 4);  // from config.json: the caller no longer guesses it
  CHECK(model->config.n_layer == 2);
  CHECK(model->config.vocab_size == 101);
  CHECK(model->config.n_positions == 32);
  CHECK(max_err_vs_reference(fixture_logits(*model)) < 1e-4);
}

TEST_CASE("hf dir: a config.json field that disagrees with the weights or that this GPT cannot honour is named") {
  TempDir t("hf_bad");
  using J = nlohmann::json;
  const struct {
    const char* name;
    std::function<void(J&)> edit;
    const char* expect;
  } cases[] = {
      {"embd", [](J& j) { j["n_embd"] = 64; }, "field 'n_embd' is 64 but tensor 'wte.weight' has shape (101, 32)"},
      {"layers", [](J& j) { j["n_layer"] = 3; }, "field 'n_layer' is 3 but the weights have 2 blocks"},
      {"heads", [](J& j) { j["n_head"] = 5; }, "field 'n_head' is 5, which does not divide n_embd 32"},
      {"vocab", [](J& j) { j["vocab_size"] = 100; }, "field 'vocab_size' is 100"},
      {"pos", [](J& j) { j["n_positions"] = 64; }, "field 'n_positions' is 64"},
      {"inner", [](J& j) { j["n_inner"] = 100; }, "field 'n_inner' is 100"},
      {"act", [](J& j) { j["activation_function"] = "gelu"; }, "field 'activation_function' is 'gelu'"},
      {"scale", [](J& j) { j["scale_attn_weights"] = false; }, "field 'scale_attn_weights' is false"},
      {"layer_idx", [](J& j) { j["scale_attn_by_inverse_layer_idx"] = true; },
       "field 'scale_attn_by_inverse_layer_idx'"},
      {"cross", [](J& j) { j["add_cross_attention"] = true; }, "field 'add_cross_attention' is true"},
      {"untied", [](J& j) { j["tie_word_embeddings"] = false; }, "field 'tie_word_embeddings' is false"},
      {"type", [](J& j) { j["model_type"] = "llama"; }, "field 'model_type' is \"llama\""},
      {"missing", [](J& j) { j.erase("n_head"); }, "field 'n_head' is missing"},
      {"string", [](J& j) { j["n_layer"] = "2"; }, "field 'n_layer' is \"2\", not a non-negative integer"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const std::string err = load_error(edited_copy(t, c.name, c.edit));
    CAPTURE(err);
    CHECK(contains(err, "config.json: " + std::string(c.expect)));
  }
  CHECK(contains(load_error(t.file("nowhere")), "nowhere"));
  std::filesystem::create_directories(t.file("noconfig"));
  std::filesystem::copy_file(kFixture + "/model.safetensors", t.file("noconfig") + "/model.safetensors");
  CHECK(contains(load_error(t.file("noconfig")), "config.json: cannot open"));
}

TEST_CASE("hf dir: save_hf_dir writes GPT2LMHeadModel's layout, read back exactly, bf16 too") {
  TempDir t("hf_save");
  Rng rng(0);
  auto model = nn::load_model(kFixture, rng);
  nn::save_hf_dir(t.file("out"), *model);
  const SafetensorsFile f = load_safetensors(t.file("out") + "/model.safetensors");
  const SafetensorsFile orig = load_safetensors(kFixture + "/model.safetensors");
  for (const auto& kv : orig.tensors) {  // every tensor transformers wrote, same name, shape and values
    if (kv.first == "lm_head.weight") continue;
    CAPTURE(kv.first);
    REQUIRE(f.tensors.count(kv.first));
    CHECK(f.tensors.at(kv.first).shape() == kv.second.shape());
    CHECK(f.tensors.at(kv.first).to_vector() == kv.second.to_vector());
  }
  const nlohmann::json j = read_json(t.file("out") + "/config.json");
  const nlohmann::json hf = read_json(kFixture + "/config.json");
  for (const char* k : {"model_type", "n_embd", "n_head", "n_layer", "n_positions", "n_inner", "vocab_size",
                        "activation_function", "tie_word_embeddings"})
    CHECK_MESSAGE(j.at(k) == hf.at(k), k);
  auto back = nn::load_model(t.file("out"), rng);
  CHECK(fixture_logits(*back) == fixture_logits(*model));

  // A bf16 model.safetensors (torch_dtype bfloat16) loads, rounded.
  std::filesystem::create_directories(t.file("bf16"));
  std::filesystem::copy_file(kFixture + "/config.json", t.file("bf16") + "/config.json");
  save_safetensors(t.file("bf16") + "/model.safetensors", orig.tensors, {{"format", "pt"}}, "BF16");
  auto half = nn::load_model(t.file("bf16"), rng);
  CHECK(max_err_vs_reference(fixture_logits(*half)) < 0.5);
  CHECK(max_err_vs_reference(fixture_logits(*half)) > 1e-6);

  // An untied lm_head is refused: this GPT's head is wte.
  std::map<std::string, Tensor> untied = orig.tensors;
  untied["lm_head.weight"] = orig.tensors.at("transformer.wte.weight").clone();
  untied["lm_head.weight"].data()[7] += 1.f;
  save_safetensors(t.file("bf16") + "/model.safetensors", untied, {{"format", "pt"}});
  CHECK(contains(load_error(t.file("bf16")), "'lm_head.weight' differs from the token embedding"));
}

TEST_CASE("hf dir: finetune_e2e --init HF_DIR --save-adapter PEFT_DIR --export-merged DIR, then --adapter PEFT_DIR") {
  TempDir t("hf_cli");
  nn::GPTConfig c;  // GPT-2 BPE's vocabulary, everything else tiny
  c.vocab_size = 50257;
  c.n_positions = 128;
  c.n_embd = 16;
  c.n_layer = 1;
  c.n_head = 2;
  Rng rng(3);
  nn::GPT base(c, rng);
  const std::string hf = t.file("hf-base"), peft = t.file("peft"), merged = t.file("merged");
  nn::save_hf_dir(hf, base);
  const std::string common = " --steps 0 --epochs 0 --test-mrs 2 --beam 2 --max-new-tokens 12 --threads 1 --show 0";
  Run r = run_example("finetune_e2e",
                      "--init " + hf +
                          " --steps 3 --batch-size 2 --lr 1e-2 --warmup 0 --test-mrs 2 --beam 2 "
                          "--max-new-tokens 12 --threads 1 --show 0 --outputs " +
                          t.file("o1.txt") + " --save-adapter " + peft + " --export-merged " + merged,
                      t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json cfg = read_json(peft + "/adapter_config.json");
  CHECK(cfg.at("base_model_name_or_path") == hf);  // the base as given, so peft finds its config
  CHECK(cfg.at("target_modules") == nlohmann::json::array({"c_attn"}));

  // The merged export equals base + adapter; the adapter is not zero after 3 steps.
  Rng r0(0);
  auto with_adapter = nn::load_model(hf, r0);
  auto plain = nn::load_model(hf, r0);
  lora::load_peft(peft, *with_adapter);
  auto merged_model = nn::load_model(merged, r0);
  const std::vector<int32_t> ids = {464, 11401, 318, 257, 3332, 6128, 13, 50256};
  autograd::NoGradGuard ng;
  const std::vector<float> a = with_adapter->forward(ids, 1, 8, {}).to_vector();
  const std::vector<float> m = merged_model->forward(ids, 1, 8, {}).to_vector();
  const std::vector<float> p = plain->forward(ids, 1, 8, {}).to_vector();
  float d_merge = 0.f, d_base = 0.f;
  for (size_t i = 0; i < a.size(); ++i)
    d_merge = std::max(d_merge, std::fabs(a[i] - m[i])), d_base = std::max(d_base, std::fabs(a[i] - p[i]));
  CHECK(d_merge < 1e-5f);
  CHECK(d_base > 1e-4f);

  // Decoding from the saved adapter reproduces the trained run's outputs.
  r = run_example("finetune_e2e", "--init " + hf + " --adapter " + peft + common + " --outputs " + t.file("o2.txt"), t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(read_bytes(t.file("o2.txt")) == read_bytes(t.file("o1.txt")));
  CHECK(!read_bytes(t.file("o1.txt")).empty());

  check_refused("finetune_e2e", "--init " + hf + " --adapter " + peft + " --method ft",
                "--adapter needs --method lora");
  check_refused("finetune_e2e", "--init " + hf + " --adapter " + peft + " --rank 8",
                "--rank cannot be combined with --adapter");
  check_refused("finetune_e2e", "--init " + hf + " --save-adapter " + t.file("o1.txt"), "is a file, expected a folder");
  check_refused("finetune_e2e", "--init " + hf + " --export-merged /nonexistent/m",
                "folder '/nonexistent' does not exist");
}
