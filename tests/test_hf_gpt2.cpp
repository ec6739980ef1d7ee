// Our GPT against Hugging Face's GPT2LMHeadModel on the committed tiny fixture
// (tests/fixtures/tiny_gpt2, made by tools/gen_tiny_gpt2.py): load_hf_gpt2, logits, the
// next-token loss and gradients, and the loader's errors for broken files.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/checkpoint.h"
#include "nn/gpt.h"
#include "nn/hf_gpt2.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

const std::string kFixture = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2/";
const std::string kWeights = kFixture + "model.safetensors";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return nlohmann::json::parse(in);
}

const nlohmann::json& reference() {
  static const nlohmann::json ref = read_json(kFixture + "reference.json");
  return ref;
}

// Our config from the fixture's Hugging Face config.json.
nn::GPTConfig fixture_config() {
  nlohmann::json hf = read_json(kFixture + "config.json");
  nn::GPTConfig c;
  c.name = "tiny-hf";
  c.vocab_size = hf.at("vocab_size").get<int64_t>();
  c.n_positions = hf.at("n_positions").get<int64_t>();
  c.n_embd = hf.at("n_embd").get<int64_t>();
  c.n_layer = hf.at("n_layer").get<int64_t>();
  c.n_head = hf.at("n_head").get<int64_t>();
  c.n_inner = hf.at("n_inner").is_null() ? 0 : hf.at("n_inner").get<int64_t>();
  c.layer_norm_eps = hf.at("layer_norm_epsilon").get<float>();
  c.dropout = 0.f;
  REQUIRE(hf.at("activation_function") == "gelu_new");
  REQUIRE(hf.at("tie_word_embeddings") == true);
  REQUIRE(c.vocab_size == 101);
  REQUIRE(c.n_embd == 32);
  return c;
}

std::unique_ptr<nn::GPT> load_fixture_model() {
  Rng rng(123);  // the random init is overwritten by the loader
  auto model = std::make_unique<nn::GPT>(fixture_config(), rng);
  nn::load_hf_gpt2(kWeights, *model);
  return model;
}

std::vector<int32_t> reference_ids(int64_t& B, int64_t& T) {
  const nlohmann::json& rows = reference().at("input_ids");
  B = static_cast<int64_t>(rows.size());
  T = static_cast<int64_t>(rows.at(0).size());
  std::vector<int32_t> ids;
  for (const auto& row : rows)
    for (const auto& v : row) ids.push_back(v.get<int32_t>());
  return ids;
}

// Next-token targets: position t predicts ids[t+1]; the last position of each row is ignored.
std::vector<int32_t> next_token_targets(const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  autograd::CrossEntropyOptions defaults;
  std::vector<int32_t> targets(ids.size(), defaults.ignore_index);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) targets[b * T + t] = ids[b * T + t + 1];
  return targets;
}

Tensor param_named(nn::GPT& model, const std::string& name) {
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.name == name) return p.tensor;
  FAIL("no parameter " << name);
  return {};
}

}  // namespace

TEST_CASE("hf gpt2: the fixture's logits are reproduced within 1e-4") {
  auto model = load_fixture_model();
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids = reference_ids(B, T);
  const nlohmann::json& ref = reference();
  REQUIRE(ref.at("logits_shape") == nlohmann::json::array({B, T, 101}));

  autograd::NoGradGuard no_grad;
  Tensor logits = model->forward(ids, B, T, {});
  REQUIRE(logits.shape() == Shape({B, T, 101}));
  std::vector<float> ours = logits.to_vector();
  const nlohmann::json& expect = ref.at("logits");
  REQUIRE(ours.size() == expect.size());

  double max_err = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double err = std::fabs(static_cast<double>(ours[i]) - expect[i].get<double>());
    if (err > max_err) max_err = err, worst = i;
  }
  INFO("max |logit - HF| = " << max_err << " at flat index " << worst);  // 2.6e-7 when written
  CHECK(max_err < 1e-4);
}

TEST_CASE("hf gpt2: the next-token cross-entropy equals HF's loss within 1e-4") {
  auto model = load_fixture_model();
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids = reference_ids(B, T);
  autograd::NoGradGuard no_grad;
  Tensor loss = autograd::cross_entropy(model->forward(ids, B, T, {}), next_token_targets(ids, B, T));
  const double expect = reference().at("loss").get<double>();
  INFO("loss " << loss.item() << " vs HF " << expect);
  CHECK(std::fabs(loss.item() - expect) < 1e-4);
}

TEST_CASE("hf gpt2: gradients of the loss match HF's (Conv1D (in, out) indices transposed)") {
  auto model = load_fixture_model();
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids = reference_ids(B, T);
  model->zero_grad();
  Tensor loss = autograd::cross_entropy(model->forward(ids, B, T, {}), next_token_targets(ids, B, T));
  autograd::backward(loss);

  // Which elements each reference entry holds, as (row, col) in the HF layout.
  struct Entry {
    std::string hf_name;
    bool conv1d;    // HF stores (in, out); ours is (out, in)
    int64_t row;    // HF row for 2-D tensors (-1 for 1-D: all values)
    int64_t ncols;  // how many leading columns of that row
  };
  const std::vector<Entry> entries = {
      {"transformer.h.0.attn.c_attn.weight", true, 0, 10},
      {"transformer.h.0.attn.c_attn.bias", false, -1, 96},
      {"transformer.h.1.mlp.c_proj.weight", true, 3, 32},
      {"transformer.h.0.ln_1.weight", false, -1, 32},
      {"transformer.ln_f.bias", false, -1, 32},
      {"transformer.wte.weight", false, 5, 32},
      {"transformer.wpe.weight", false, 6, 32},
  };
  std::map<std::string, nlohmann::json> ref_grads;
  for (const auto& g : reference().at("grads")) ref_grads[g.at("name").get<std::string>()] = g.at("values");
  REQUIRE(ref_grads.size() == entries.size());

  for (const Entry& e : entries) {
    CAPTURE(e.hf_name);
    REQUIRE(ref_grads.count(e.hf_name) == 1);
    const nlohmann::json& values = ref_grads[e.hf_name];
    REQUIRE(static_cast<int64_t>(values.size()) == e.ncols);
    Tensor g = param_named(*model, e.hf_name.substr(std::string("transformer.").size())).grad();
    REQUIRE(g.defined());
    double max_err = 0.0;
    for (int64_t j = 0; j < e.ncols; ++j) {
      float ours = 0.f;
      if (e.row < 0)
        ours = g.at({j});
      else if (e.conv1d)
        ours = g.at({j, e.row});  // HF (in=row, out=j) is our (out=j, in=row)
      else
        ours = g.at({e.row, j});
      const double ref = values[static_cast<size_t>(j)].get<double>();
      const double err = std::fabs(ours - ref);
      max_err = std::max(max_err, err);
      INFO("element " << j << ": ours " << ours << ", HF " << ref);
      CHECK(err <= 1e-4 + 1e-3 * std::fabs(ref));
    }
    CHECK(max_err < 1e-4);  // at most 4.3e-8 when written
  }
}

TEST_CASE("hf gpt2: loader errors name the file and the tensor") {
  const SafetensorsFile good = load_safetensors(kWeights);
  TempDir tmp("errors");
  Rng rng(1);
  nn::GPT model(fixture_config(), rng);

  SUBCASE("a missing tensor") {
    std::map<std::string, Tensor> t = good.tensors;
    t.erase("transformer.h.1.ln_2.bias");
    const std::string path = tmp.file("missing.safetensors");
    save_safetensors(path, t);
    std::string err = error_of([&] { nn::load_hf_gpt2(path, model); });
    CHECK(contains(err, path));
    CHECK(contains(err, "h.1.ln_2.bias"));
    CHECK(contains(err, "missing"));
  }
  SUBCASE("an extra tensor under the transformer prefix") {
    std::map<std::string, Tensor> t = good.tensors;
    t["transformer.h.0.attn.q_norm.weight"] = Tensor::zeros({32});
    const std::string path = tmp.file("extra.safetensors");
    save_safetensors(path, t);
    std::string err = error_of([&] { nn::load_hf_gpt2(path, model); });
    CHECK(contains(err, path));
    CHECK(contains(err, "h.0.attn.q_norm.weight"));
  }
  SUBCASE("an extra tensor outside the transformer prefix") {
    std::map<std::string, Tensor> t = good.tensors;
    t["score.weight"] = Tensor::zeros({2, 32});
    const std::string path = tmp.file("extra_outside.safetensors");
    save_safetensors(path, t);
    std::string err = error_of([&] { nn::load_hf_gpt2(path, model); });
    CHECK(contains(err, path));
    CHECK(contains(err, "score.weight"));
  }
  SUBCASE("a 1-D tensor of the wrong shape") {
    std::map<std::string, Tensor> t = good.tensors;
    t["transformer.ln_f.weight"] = Tensor::zeros({31});
    const std::string path = tmp.file("shape1d.safetensors");
    save_safetensors(path, t);
    std::string err = error_of([&] { nn::load_hf_gpt2(path, model); });
    CHECK(contains(err, path));
    CHECK(contains(err, "ln_f.weight"));
    CHECK(contains(err, "(31,)"));
    CHECK(contains(err, "(32,)"));
  }
  SUBCASE("a Conv1D weight of the wrong shape") {
    std::map<std::string, Tensor> t = good.tensors;
    t["transformer.h.0.mlp.c_fc.weight"] = Tensor::zeros({32, 100});  // HF (in, out); out should be 128
    const std::string path = tmp.file("shape2d.safetensors");
    save_safetensors(path, t);
    std::string err = error_of([&] { nn::load_hf_gpt2(path, model); });
    CHECK(contains(err, path));
    CHECK(contains(err, "h.0.mlp.c_fc.weight"));
    CHECK(contains(err, "100"));
  }
}

TEST_CASE("hf gpt2: a file saved with our names (no 'transformer.' prefix) loads the same weights") {
  const SafetensorsFile good = load_safetensors(kWeights);
  std::map<std::string, Tensor> unprefixed;
  for (const auto& kv : good.tensors) unprefixed[kv.first.substr(std::string("transformer.").size())] = kv.second;
  TempDir tmp("noprefix");
  const std::string path = tmp.file("gpt2model.safetensors");
  save_safetensors(path, unprefixed);

  auto a = load_fixture_model();
  Rng rng(9);
  nn::GPT b(fixture_config(), rng);
  nn::load_hf_gpt2(path, b);
  auto pa = a->named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].name);
    CHECK(pa[i].tensor.to_vector() == pb[i].tensor.to_vector());
  }
}
