// The bf16 precision policy over a whole training run: a tiny GPT's LoRA fine-tuning (50 AdamW steps,
// every frozen GEMM in bf16: W0 of every layer forward and backward, the tied head; and attention's tile
// products) follows the fp32 run's loss curve. Where this CPU has no bf16 GEMM both runs are fp32 and must agree exactly.
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "lora/lora.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

constexpr int32_t kVocab = 48;

// A walk through a permutation of the vocabulary drawn from `perm_seed`, with 1 in 8 steps random: a
// bigram a model learns in a few dozen steps. `data` draws the walk itself.
std::vector<int32_t> walk(int64_t n, uint64_t perm_seed, Rng& data) {
  Rng rng(perm_seed);
  std::vector<int32_t> perm(kVocab), out;
  std::iota(perm.begin(), perm.end(), 0);
  for (int32_t i = kVocab - 1; i > 0; --i) std::swap(perm[i], perm[rng.randint(i + 1)]);
  int32_t tok = static_cast<int32_t>(data.randint(kVocab));
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(tok);
    tok = data.randint(8) == 0 ? static_cast<int32_t>(data.randint(kVocab)) : perm[tok];
  }
  return out;
}

// `steps` AdamW steps of every trainable tensor of model on walks of perm_seed (B 4, T 16); the losses.
std::vector<float> train(nn::GPT& model, uint64_t perm_seed, int steps, float lr) {
  optim::AdamWConfig oc;
  oc.lr = lr;
  optim::AdamW opt(model.named_parameters(), oc);
  const int64_t B = 4, T = 16;
  std::vector<float> losses;
  Rng data(7);
  for (int step = 0; step < steps; ++step) {
    std::vector<int32_t> ids, targets;
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t> toks = walk(T + 1, perm_seed, data);
      ids.insert(ids.end(), toks.begin(), toks.end() - 1);
      targets.insert(targets.end(), toks.begin() + 1, toks.end());
    }
    opt.zero_grad();
    Tensor loss = autograd::cross_entropy(model.forward(ids, B, T, {}), targets);
    losses.push_back(loss.item());
    autograd::backward(loss);
    opt.step();
  }
  return losses;
}

nn::GPTConfig config() { return tiny_config(kVocab, 16, 32, 4, 2); }  // width 32: every frozen GEMM above 16

// The base: a GPT pretrained in fp32 on one permutation's walks, its weights by name.
std::map<std::string, Tensor> pretrained_base() {
  Rng rng(1);
  nn::GPT model(config(), rng);
  train(model, 1, 100, 1e-2f);
  std::map<std::string, Tensor> state;
  for (const nn::NamedTensor& p : model.named_parameters()) state[p.name] = p.tensor.clone();
  return state;
}

// LoRA (r 8 on q, v, o and the MLP) fine-tunes the base to another permutation for 50 steps at
// precision p; the same init, batches and seed at either precision.
std::vector<float> lora_losses(tensor::Precision p, const std::map<std::string, Tensor>& base) {
  tensor::PrecisionGuard guard(p);
  Rng rng(2);
  nn::GPT model(config(), rng);
  for (nn::NamedTensor& t : model.named_parameters()) t.tensor.copy_(base.at(t.name));
  lora::LoRAConfig lc;
  lc.r = 8;
  lc.alpha = 16.f;
  lc.dropout = 0.f;
  lc.targets = {"q", "v", "o", "mlp"};
  lora::apply_lora(model, lc, rng);
  return train(model, 2, 50, 1e-2f);
}

}  // namespace

TEST_CASE("bf16: a tiny GPT's LoRA training follows the fp32 loss curve within 2% at every step") {
  const std::map<std::string, Tensor> base = pretrained_base();
  const std::vector<float> fp32 = lora_losses(tensor::Precision::fp32, base);
  const int64_t calls = tensor::bf16_gemm_calls();
  const std::vector<float> bf16 = lora_losses(tensor::Precision::bf16, base);
  const int64_t bf16_calls = tensor::bf16_gemm_calls() - calls;
  INFO("fp32 " << fp32.front() << " -> " << fp32.back() << ", bf16 " << bf16.front() << " -> " << bf16.back() << ", "
               << bf16_calls << " bf16 GEMMs (" << tensor::bf16_gemm_info() << ")");
  CHECK(fp32.back() < fp32.front() - 1.0f);  // the run learns: a curve worth following
  if (!tensor::bf16_gemm_available()) {
    MESSAGE("no bf16 GEMM here, both runs are fp32: " << tensor::bf16_gemm_info());
    CHECK(bf16 == fp32);
    return;
  }
  // Per step: the 8 linears of the 2 blocks (c_attn, c_proj, c_fc, mlp.c_proj) forward and dx, less
  // block 0's c_attn dx (its input, LayerNorm over the frozen embeddings, needs no gradient), and the
  // tied head's logits and dh: 8 + 7 + 2; and attention's tile products, one row tile per (b, h) pair at
  // T = 16, 4 · 4 pairs in each of the 2 blocks: S and P V forward, S, dV, dP, dQ and dK backward.
  CHECK(bf16_calls == 50 * (8 + 7 + 2 + 2 * 4 * 4 * (2 + 5)));
  float worst = 0.f;
  for (size_t i = 0; i < fp32.size(); ++i) {
    CAPTURE(i);
    worst = std::max(worst, std::fabs(bf16[i] - fp32[i]) / fp32[i]);
    CHECK(std::fabs(bf16[i] - fp32[i]) <= 0.02f * fp32[i]);
  }
  MESSAGE("largest relative loss difference bf16 vs fp32 over 50 steps: " << worst);
  CHECK(bf16 != fp32);
}
