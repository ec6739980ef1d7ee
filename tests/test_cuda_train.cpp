// Whole models on the GPU against the same models on the CPU (a full GPT + LoRA training step, CPU vs
// GPU): the same seed builds identical weights on both devices (drawn on the host, then
// copied); one training step must give the same loss, the same gradient for every trainable tensor
// and the same parameters after AdamW; decoding must pick the same tokens. Skips without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <map>

#include "cuda_test_util.h"
#include "lora/methods.h"
#include "nn/classifier.h"
#include "nn/generate.h"
#include "nn/gpt.h"
#include "optim/adamw.h"

using namespace lowrank;
using namespace lowrank::cudatest;

namespace {

// With dropout, so that the Philox masks of both devices are compared too.
nn::GPTConfig parity_config() {
  nn::GPTConfig c = lowrank::testing::tiny_config(61, 16, 32, 4, 2);
  c.name = "cuda-parity";
  c.dropout = 0.1f;
  return c;
}

// A method applied to a fresh model on `dev`; LoRA's B starts at 0 (then dA would be 0 too), so every
// lora_B is overwritten with the same host-drawn values on both devices to make all gradients non-trivial.
std::unique_ptr<nn::GPT> make_model(const std::string& method, Device dev) {
  Rng rng(7);
  auto model = std::make_unique<nn::GPT>(parity_config(), rng, dev);
  lora::MethodConfig mc;
  mc.method = method;
  mc.lora.r = 4;
  mc.lora.targets = {"q", "v", "o", "wte"};
  lora::apply_method(*model, mc, rng);
  Rng fill(11);
  for (nn::NamedTensor& p : model->named_parameters())
    if (p.name.find("lora_B") != std::string::npos) p.tensor.copy_(Tensor::randn(p.tensor.shape(), fill, 0.1f));
  return model;
}

struct Batch {
  std::vector<int32_t> ids, targets;
  autograd::CrossEntropyOptions ce;
  int64_t B = 3, T = 12;
};

Batch make_batch(int64_t V) {
  Batch b;
  Rng rng(5);
  for (int64_t i = 0; i < b.B * b.T; ++i) {
    b.ids.push_back(static_cast<int32_t>(rng.randint(V)));
    b.targets.push_back(i % 7 == 3 ? -100 : static_cast<int32_t>(rng.randint(V)));  // some ignored
    b.ce.mask.push_back(i % b.T < 4 ? 0.f : 1.f);  // completion-only loss, as in E2E fine-tuning
  }
  b.ce.label_smoothing = 0.1f;
  return b;
}

// forward -> masked loss -> zero_grad -> backward -> step; returns the loss. Dropout masks are
// Philox(key, index) with the key drawn from the same Rng on both devices, so they are the same.
float train_step(nn::GPT& model, optim::AdamW& opt, const Batch& b) {
  Rng drop(3);
  Tensor loss = autograd::cross_entropy(model.forward(b.ids, b.B, b.T, nn::Context{true, &drop}), b.targets, b.ce);
  opt.zero_grad();
  autograd::backward(loss);
  optim::clip_grad_norm(model.named_parameters(), 0.5f);
  opt.step(1e-2f);
  return loss.item();
}

// A parameter's values for the after-step comparison. The key third of c_attn.bias has a gradient of
// exactly 0 in exact arithmetic (each query's softmax is invariant to q·b_k, the same for every key),
// so it only sees rounding noise (~1e-12 here), which Adam scales to updates of lr·|g|/(|g| + eps)
// that differ between devices by more than any tolerance on the weights: those entries are left out.
std::vector<float> compared_values(const std::string& name, const Tensor& t) {
  std::vector<float> v = t.to_vector();
  const std::string key_bias = "attn.c_attn.bias";
  if (name.size() >= key_bias.size() && name.compare(name.size() - key_bias.size(), key_bias.size(), key_bias) == 0) {
    const size_t C = v.size() / 3;
    std::fill(v.begin() + C, v.begin() + 2 * C, 0.f);
  }
  return v;
}

std::map<std::string, Tensor> by_name(nn::GPT& model) {
  std::map<std::string, Tensor> out;
  for (const nn::NamedTensor& p : model.named_parameters()) out[p.name] = p.tensor;
  return out;
}

}  // namespace

TEST_CASE("cuda: one GPT training step (FT, LoRA q/v/o/wte, BitFit, adapters) matches the CPU") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  for (const char* method : {"ft", "lora", "bitfit", "adapter-h"}) {
    CAPTURE(std::string(method));
    auto cpu = make_model(method, Device::CPU), gpu = make_model(method, Device::CUDA);
    optim::AdamW opt_cpu(cpu->named_parameters(), optim::AdamWConfig{}),
        opt_gpu(gpu->named_parameters(), optim::AdamWConfig{});
    const Batch b = make_batch(parity_config().vocab_size);
    Rng drop_c(3), drop_g(3);
    // Gradients first (before the step changes the weights). One device at a time: the tape is
    // shared and backward() clears all of it, so a second recorded forward would never run backward.
    Tensor lc = autograd::cross_entropy(cpu->forward(b.ids, b.B, b.T, nn::Context{true, &drop_c}), b.targets, b.ce);
    autograd::backward(lc);
    Tensor lg = autograd::cross_entropy(gpu->forward(b.ids, b.B, b.T, nn::Context{true, &drop_g}), b.targets, b.ce);
    REQUIRE(lg.device() == Device::CUDA);
    CHECK(lg.item() == doctest::Approx(lc.item()).epsilon(1e-5));
    autograd::backward(lg);
    auto pc = by_name(*cpu), pg = by_name(*gpu);
    int checked = 0;
    for (auto& [name, t] : pc) {
      if (!t.requires_grad()) continue;
      CAPTURE(name);
      REQUIRE(pg.at(name).grad().defined());
      expect_close(pg.at(name).grad().to_vector(), t.grad().to_vector(), 1e-3, 1e-5, name.c_str());
      ++checked;
    }
    CHECK(checked > 0);
    // Then full steps: clip + AdamW on both, the weights must agree after two of them. Absolute
    // tolerance 5e-5 = 5e-3 of an update (lr 1e-2): Adam's normalised update m/(√v + eps) turns the
    // rounding noise of a gradient entry that nearly cancels (|g| ~ 1e-7 of the largest, which
    // entries do depends on the dropout masks) into update differences of a few 1e-5, while a wrong
    // kernel moves a weight by a whole update (~1e-2).
    for (int s = 0; s < 2; ++s)
      CHECK(train_step(*gpu, opt_gpu, b) == doctest::Approx(train_step(*cpu, opt_cpu, b)).epsilon(1e-4));
    for (auto& [name, t] : pc)
      expect_close(compared_values(name, pg.at(name)), compared_values(name, t), 1e-4, 5e-5, name.c_str());
  }
}

TEST_CASE("cuda: greedy and beam decoding with the KV cache pick the CPU's tokens") {
  LR_SKIP_WITHOUT_GPU();
  auto cpu = make_model("lora", Device::CPU), gpu = make_model("lora", Device::CUDA);
  nn::DecodeOptions o;
  o.max_new_tokens = 8;
  o.eos_id = 0;
  const std::vector<int32_t> prompt{5, 9, 2, 33};
  CHECK(nn::greedy(*gpu, prompt, o) == nn::greedy(*cpu, prompt, o));
  o.beam_size = 3;
  o.no_repeat_ngram_size = 2;
  CHECK(nn::beam_search(*gpu, prompt, o) == nn::beam_search(*cpu, prompt, o));
}

TEST_CASE("cuda: the GLUE classifier (bidirectional, padded batch, mean pooling) matches the CPU") {
  LR_SKIP_WITHOUT_GPU();
  nn::GPTConfig c = parity_config();
  c.causal = false;
  c.n_classes = 3;
  c.dropout = 0.f;
  Rng r1(9), r2(9);
  nn::Classifier cpu(c, r1, Device::CPU, nn::Pooling::Mean), gpu(c, r2, Device::CUDA, nn::Pooling::Mean);
  const int64_t B = 2, T = 6;
  const std::vector<int32_t> ids{1, 2, 3, 4, 0, 0, 7, 8, 9, 10, 11, 12}, lengths{4, 6};
  // One device at a time: backward() clears the shared tape, the other device's nodes included.
  const std::vector<int32_t> labels{2, 0};
  Tensor yc = cpu.forward(ids, B, T, lengths, {});
  autograd::backward(autograd::cross_entropy(yc, labels));
  Tensor yg = gpu.forward(ids, B, T, lengths, {});
  expect_close(yg.to_vector(), yc.to_vector(), 1e-4, 1e-5, "logits");
  autograd::backward(autograd::cross_entropy(yg, labels));
  std::map<std::string, Tensor> gc;
  for (const nn::NamedTensor& p : cpu.named_parameters()) gc[p.name] = p.tensor;
  for (const nn::NamedTensor& p : gpu.named_parameters()) {
    CAPTURE(p.name);
    expect_close(p.tensor.grad().to_vector(), gc.at(p.name).grad().to_vector(), 1e-3, 1e-5, p.name.c_str());
  }
}

#endif
