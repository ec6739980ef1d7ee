// Ten AdamW steps of lowrank against PyTorch and peft on the tiny GPT-2 fixture, llm.c's test_gpt2
// in spirit: the committed tests/fixtures/train_tiny (made by tools/gen_train_reference.py with
// torch + transformers + peft) holds every step's loss and the trained values of three runs, and
// each case here runs the same steps (same batches, mean next-token cross-entropy, clipping at 1.0,
// AdamW with decay on matrices only, dropout 0) and compares them:
//   ft           full fine-tuning, every parameter;
//   lora_qv      LoRA r=4 on the q and v slices of c_attn (loralib's layout), A and B non-zero;
//   peft_c_attn  peft's LoRA on the whole c_attn, loaded from the adapter peft saved before training
//                and compared with the one it saved after.
// Other tests prove each op's gradient; this one proves the whole training step (model, loss,
// backward, clipping, optimizer, LoRA's parametrisation) equals the reference implementation's.
// Measured: every loss within 4.8e-7 of PyTorch's (one float32 ulp at 4.6), A and B within 1.4e-6.
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace lowrank;

namespace {

const std::string kDir = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/train_tiny/";
const std::string kBase = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2";

const nlohmann::json& reference() {
  static const nlohmann::json ref = [] {
    std::ifstream in(kDir + "reference.json");
    REQUIRE_MESSAGE(in.good(), "cannot open " << kDir << "reference.json (tools/gen_train_reference.py)");
    return nlohmann::json::parse(in);
  }();
  return ref;
}

std::unique_ptr<nn::GPT> load_base() {
  Rng rng(7);  // the init is overwritten by the fixture's weights
  std::unique_ptr<nn::GPT> m = nn::load_model(kBase, rng);
  REQUIRE(m->config.dropout == 0.f);
  return m;
}

// The mean next-token cross-entropy of batch k: position t predicts ids[t+1], the last is ignored.
Tensor batch_loss(nn::GPT& model, int k) {
  const nlohmann::json& rows = reference().at("batches").at(k);
  const int64_t B = static_cast<int64_t>(rows.size()), T = static_cast<int64_t>(rows.at(0).size());
  std::vector<int32_t> ids, targets;
  for (const auto& row : rows)
    for (size_t t = 0; t < row.size(); ++t) {
      ids.push_back(row.at(t).get<int32_t>());
      targets.push_back(t + 1 < row.size() ? row.at(t + 1).get<int32_t>()
                                           : autograd::CrossEntropyOptions().ignore_index);
    }
  return autograd::cross_entropy(model.forward(ids, B, T, {}), targets);
}

// The fixture's ten steps on model's trainable tensors at lr; returns the losses and the final loss.
std::vector<double> train(nn::GPT& model, float lr) {
  const nlohmann::json& s = reference().at("settings");
  optim::AdamWConfig oc;
  oc.beta1 = s.at("beta1").get<float>();
  oc.beta2 = s.at("beta2").get<float>();
  oc.eps = s.at("eps").get<float>();
  oc.weight_decay = s.at("weight_decay").get<float>();
  optim::AdamW opt(model.named_parameters(), oc);
  std::vector<double> losses;
  for (int k = 0; k < s.at("steps").get<int>(); ++k) {
    Tensor loss = batch_loss(model, k);
    losses.push_back(loss.item());
    opt.zero_grad();
    autograd::backward(loss);
    optim::clip_grad_norm(model.named_parameters(), s.at("clip").get<float>());
    opt.step(lr);
  }
  autograd::NoGradGuard ng;
  losses.push_back(batch_loss(model, 0).item());
  return losses;
}

// Every loss of ours against the reference run's (the last one: batch 0 after training).
void check_losses(const std::vector<double>& ours, const nlohmann::json& run, double tol) {
  std::vector<double> ref = run.at("losses").get<std::vector<double>>();
  ref.push_back(run.at("final_loss").get<double>());
  REQUIRE(ours.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO("step " << i << ": ours " << ours[i] << ", reference " << ref[i]);
    CHECK(std::abs(ours[i] - ref[i]) <= tol * (1.0 + std::abs(ref[i])));
  }
  CHECK(ref.back() < ref.front() - 0.01);  // the reference run learned: a flat run would prove little
}

// A handle on the model's parameter (named_parameters() is a fresh vector: never return into it).
Tensor param(nn::GPT& model, const std::string& name) {
  for (const nn::NamedTensor& p : model.named_parameters())
    if (p.name == name) return p.tensor;
  FAIL("no parameter " << name);
  throw Error("unreachable");
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("train reference: ten AdamW steps of full fine-tuning give PyTorch's losses") {
  std::unique_ptr<nn::GPT> model = load_base();
  const nlohmann::json& ref = reference();
  check_losses(train(*model, ref.at("settings").at("ft_lr").get<float>()), ref.at("ft"), 5e-6);
}

TEST_CASE("train reference: LoRA on the q and v slices (loralib's layout) gives PyTorch's losses, A and B") {
  const nlohmann::json& ref = reference();
  const nlohmann::json& run = ref.at("lora_qv");
  std::unique_ptr<nn::GPT> model = load_base();
  lora::LoRAConfig cfg;
  cfg.r = ref.at("settings").at("r").get<int64_t>();
  cfg.alpha = ref.at("settings").at("alpha").get<float>();
  cfg.dropout = 0.f;
  cfg.targets = {"q", "v"};
  Rng rng(3);
  lora::apply_lora(*model, cfg, rng);
  for (const auto& item : run.at("init").items()) {  // the reference's non-zero A and B
    Tensor p = param(*model, item.key());
    p.copy_(Tensor::from(item.value().get<std::vector<float>>(), p.shape()));
  }
  check_losses(train(*model, ref.at("settings").at("lora_lr").get<float>()), run, 5e-6);
  for (const auto& item : run.at("final").items()) {  // no structured binding: clang 14 cannot capture one in INFO
    const std::string name = item.key();
    INFO(name);
    CHECK(max_abs_diff(param(*model, name).to_vector(), item.value().get<std::vector<float>>()) < 1e-5f);
  }
}

TEST_CASE("train reference: peft's LoRA on the whole c_attn, trained here from its saved init, ends at its final") {
  const nlohmann::json& ref = reference();
  std::unique_ptr<nn::GPT> model = load_base();
  lora::load_peft(kDir + "peft_init", *model);
  check_losses(train(*model, ref.at("settings").at("lora_lr").get<float>()), ref.at("peft_c_attn"), 5e-6);
  std::unique_ptr<nn::GPT> final_model = load_base();
  lora::load_peft(kDir + "peft_final", *final_model);
  std::map<std::string, std::vector<float>> theirs;
  for (nn::NamedTensor& p : final_model->named_parameters())
    if (p.tensor.requires_grad()) theirs[p.name] = p.tensor.to_vector();
  REQUIRE(!theirs.empty());
  for (nn::NamedTensor& p : model->named_parameters()) {
    if (!p.tensor.requires_grad()) continue;
    INFO(p.name);
    REQUIRE(theirs.count(p.name));
    CHECK(max_abs_diff(p.tensor.to_vector(), theirs.at(p.name)) < 1e-5f);
  }
}
