// The bf16 precision policy on CUDA (autograd/weight_gemm.h, docs/precision.md): linear and matmul by a
// frozen weight on device tensors run cuda::gemm_bf16 (cuBLAS GemmEx, bf16 operands, fp32 sums) and hold
// the CPU's bf16 tolerance against the fp32 path; since both devices round the operands with the one
// tensor::round_to_bf16, they equal the product of the rounded operands (and the CPU's bf16 path, where
// this CPU has one) up to the order of the fp32 sums; the device copy of the weight follows its writes;
// a tiny GPT's LoRA steps in bf16 on CUDA follow its fp32 losses. Every test skips without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "autograd/weight_gemm.h"
#include "bf16_test_util.h"
#include "cuda_test_util.h"
#include "lora/lora.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "tensor/bf16.h"
#include "tensor/precision.h"

using namespace lowrank;
using namespace lowrank::cudatest;
using lowrank::testing::kBf16Tol;
using lowrank::testing::magnitude_xwt;
using tensor::Precision;
using tensor::PrecisionGuard;

namespace {

constexpr double kSameOperands = 1e-5;  // of the magnitude: two fp32 sums of the same exact products

// |got - want| <= tol·scale + 1e-6 everywhere (bf16_test_util.h's check_close), and the worst ratio of
// error to bound reported as the other CUDA tests report theirs (tools/gpu_check.sh's err/tol column).
void expect_within(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& scale,
                   double tol, const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(double(got[i]) - want[i]);
    if (!(diff / (tol * scale[i] + 1e-6) <= worst)) worst = diff / (tol * scale[i] + 1e-6);  // NaN too
    max_abs = std::max(max_abs, diff);
  }
  report_error(what, max_abs, worst);
  INFO(std::string(what) << ": error/bound " << worst);
  CHECK(worst <= 1.0);
}

// t with every element rounded to bf16 and widened back: the operand the bf16 GEMMs multiply.
Tensor rounded(const Tensor& t) {
  std::vector<uint16_t> h(static_cast<size_t>(t.numel()));
  const Tensor c = t.detach().contiguous();
  tensor::to_bf16(h.data(), c.data(), c.numel());
  Tensor out = Tensor::empty(t.shape());
  tensor::from_bf16(out.data(), h.data(), t.numel());
  return out;
}

struct LinearRun {
  std::vector<float> y, dx;
};

// y = linear(x, w, b) and dx from the seed dy, on x's device at precision p; w frozen.
LinearRun run_linear(Tensor x, const Tensor& w, const Tensor& b, const Tensor& dy, Precision p) {
  PrecisionGuard g(p);
  x.zero_grad();
  Tensor y = autograd::linear(x, w, b);
  autograd::backward(y, dy);
  return {y.to_vector(), x.grad().to_vector()};
}

}  // namespace

TEST_CASE("cuda: bf16 linear by a frozen weight, forward and dx, against the CPU's fp32 and bf16 paths") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t N = 37, in = 48, out = 40;
  Tensor x = leaf({N, in}, 1), w = randn({out, in}, 2, 0.1f), b = randn({out}, 3), dy = randn({N, out}, 4);
  Tensor dx_ = dleaf(x), dw = dev(w), db = dev(b), ddy = dev(dy);  // w, b frozen: LoRA's W0 and its bias
  const LinearRun fp32 = run_linear(x, w, b, dy, Precision::fp32);
  const int64_t calls = tensor::bf16_gemm_calls();
  const LinearRun gpu = run_linear(dx_, dw, db, ddy, Precision::bf16);
  CHECK(tensor::bf16_gemm_calls() == calls + 2);  // y = x wᵀ and dx = dy w, counted as the CPU's
  std::vector<float> scale_y = magnitude_xwt(x.detach(), w);
  for (size_t i = 0; i < scale_y.size(); ++i) scale_y[i] += std::fabs(b.to_vector()[i % out]);
  const std::vector<float> scale_dx = magnitude_xwt(dy, w.transpose(0, 1).contiguous());
  expect_within(gpu.y, fp32.y, scale_y, kBf16Tol, "linear y vs fp32");
  expect_within(gpu.dx, fp32.dx, scale_dx, kBf16Tol, "linear dx vs fp32");
  CHECK(gpu.y != fp32.y);  // bf16 really ran
  // The fp32 product of the rounded operands: what any bf16 GEMM with fp32 sums computes.
  Tensor xr = rounded(x);
  xr.requires_grad_(true);
  const LinearRun exact = run_linear(xr, rounded(w), b, rounded(dy), Precision::fp32);
  expect_within(gpu.y, exact.y, scale_y, kSameOperands, "linear y vs rounded operands");
  expect_within(gpu.dx, exact.dx, scale_dx, kSameOperands, "linear dx vs rounded operands");
  if (!tensor::bf16_gemm_available()) {
    MESSAGE("no CPU bf16 GEMM to compare with here: " << tensor::bf16_gemm_info());
    return;
  }
  const LinearRun cpu = run_linear(x, w, b, dy, Precision::bf16);
  expect_within(gpu.y, cpu.y, scale_y, kSameOperands, "linear y vs CPU bf16");
  expect_within(gpu.dx, cpu.dx, scale_dx, kSameOperands, "linear dx vs CPU bf16");
}

TEST_CASE("cuda: bf16 matmul by a frozen 2-D weight (the tied head), forward and dA, as the CPU's") {
  LR_SKIP_WITHOUT_GPU();
  Tensor h = leaf({2, 20, 24}, 8), emb = randn({50, 24}, 9), dl = randn({2, 20, 50}, 10);
  Tensor dh = dleaf(h), demb = dev(emb), ddl = dev(dl);
  auto run = [](Tensor a, const Tensor& e, const Tensor& seed, Precision p) {
    PrecisionGuard g(p);
    a.zero_grad();
    Tensor logits = autograd::matmul(a, e, false, true);
    autograd::backward(logits, seed);
    return LinearRun{logits.to_vector(), a.grad().to_vector()};
  };
  const LinearRun fp32 = run(h, emb, dl, Precision::fp32);
  const int64_t calls = tensor::bf16_gemm_calls();
  const LinearRun gpu = run(dh, demb, ddl, Precision::bf16);
  CHECK(tensor::bf16_gemm_calls() == calls + 2);
  const std::vector<float> scale_y = magnitude_xwt(h.detach().view({40, 24}), emb);
  const std::vector<float> scale_dh = magnitude_xwt(dl.view({40, 50}), emb.transpose(0, 1).contiguous());
  expect_within(gpu.y, fp32.y, scale_y, kBf16Tol, "matmul y vs fp32");
  expect_within(gpu.dx, fp32.dx, scale_dh, kBf16Tol, "matmul dA vs fp32");
  CHECK(gpu.y != fp32.y);
  Tensor hr = rounded(h);
  hr.requires_grad_(true);
  const LinearRun exact = run(hr, rounded(emb), rounded(dl), Precision::fp32);
  expect_within(gpu.y, exact.y, scale_y, kSameOperands, "matmul y vs rounded operands");
  expect_within(gpu.dx, exact.dx, scale_dh, kSameOperands, "matmul dA vs rounded operands");
  if (tensor::bf16_gemm_available()) {
    const LinearRun cpu = run(h, emb, dl, Precision::bf16);
    expect_within(gpu.y, cpu.y, scale_y, kSameOperands, "matmul y vs CPU bf16");
    expect_within(gpu.dx, cpu.dx, scale_dh, kSameOperands, "matmul dA vs CPU bf16");
  }
}

TEST_CASE("cuda: bf16 rounding kernel gives tensor::round_to_bf16's bits (ties, NaN, inf, subnormals)") {
  LR_SKIP_WITHOUT_GPU();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v{0.f, -0.f, 1.f, 1.00390625f, 1.01171875f, 3.3895314e38f, -3.4e38f,
                       inf, -inf, nan, -nan,        1e-40f,      -1e-45f,       1.17549435e-38f};
  uint32_t snan_bits = 0x7f800001u;  // a signalling NaN whose payload is only in the dropped bits
  float snan;
  std::memcpy(&snan, &snan_bits, sizeof snan);
  v.push_back(snan);
  Rng rng(12);
  for (int i = 0; i < 50; ++i) v.push_back(static_cast<float>(rng.normal()) * std::ldexp(1.f, i - 25));
  const int64_t rows = 4, cols = static_cast<int64_t>(v.size()) / rows, ld = cols + 3;  // padded rows
  Tensor src = Tensor::full({rows, ld}, 7.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) src.data()[r * ld + c] = v[static_cast<size_t>(r * cols + c)];
  const Tensor dsrc = dev(src), ddst = Tensor::empty({(rows * cols + 1) / 2}, Device::CUDA);
  cuda::to_bf16_rows(reinterpret_cast<uint16_t*>(ddst.data()), dsrc.data(), rows, cols, ld);
  const std::vector<float> back = ddst.to_vector();
  std::vector<uint16_t> got(back.size() * 2);
  std::memcpy(got.data(), back.data(), got.size() * sizeof(uint16_t));
  int wrong = 0;
  for (int64_t i = 0; i < rows * cols; ++i) wrong += got[static_cast<size_t>(i)] != tensor::round_to_bf16(v[i]);
  CHECK(wrong == 0);
}

TEST_CASE("cuda: bf16 copy of a frozen weight on the device is kept, and dropped by every write to the weight") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t N = 33, in = 40, out = 24;
  Tensor x = randn({N, in}, 20), w = randn({out, in}, 21, 0.2f);
  Tensor dx_ = dev(x), dw = dev(w);
  PrecisionGuard g(Precision::bf16);
  autograd::NoGradGuard ng;
  // Against the fp32 product of the rounded operands: a stale copy would miss the write by far more.
  auto check_follows = [&](const Tensor& w_now, const char* what) {
    INFO(std::string(what));
    const Tensor want = [&] {
      PrecisionGuard fp32(Precision::fp32);
      return autograd::linear(rounded(x), rounded(w_now));
    }();
    expect_within(autograd::linear(dx_, dw).to_vector(), want.to_vector(), magnitude_xwt(x, w_now), kSameOperands,
                  "weight copy after a write");
  };
  int64_t made = tensor::bf16_copies_made();
  check_follows(w, "first product");
  check_follows(w, "second product");
  CHECK(tensor::bf16_copies_made() == made + 1);  // made once, then kept
  const Tensor w2 = randn({out, in}, 22, 0.2f);
  dw.copy_(dev(w2));
  check_follows(w2, "after copy_");
  dw.add_(dev(w2));
  Tensor twice = w2.clone();
  twice.add_(w2);
  check_follows(twice, "after add_");
  dw.fill_(0.5f);
  check_follows(Tensor::full({out, in}, 0.5f), "after fill_");
  cuda::fill(dw.data(), 0.25f, dw.numel());  // a raw write, announced
  dw.mark_written();
  check_follows(Tensor::full({out, in}, 0.25f), "after mark_written");
  CHECK(tensor::bf16_copies_made() == made + 5);
  made = tensor::bf16_copies_made();
  const int64_t calls = tensor::bf16_gemm_calls();
  dw.requires_grad_(true);  // trainable now: fp32, no copy read or made
  const std::vector<float> y = autograd::linear(dx_, dw).to_vector();
  CHECK(tensor::bf16_gemm_calls() == calls);
  CHECK(tensor::bf16_copies_made() == made);
  PrecisionGuard fp32(Precision::fp32);  // the CPU reference: its weight is frozen, bf16 would round it
  expect_close(y, autograd::linear(x, Tensor::full({out, in}, 0.25f)).to_vector(), kGemm.rtol, kGemm.atol,
               "fp32 product by the weight made trainable");
}

namespace {

constexpr int32_t kVocab = 48;

// `steps` LoRA steps (r 8 on q, v, o and the MLP) of a tiny GPT on CUDA at precision p, from the same
// seed at either precision, on one batch of bigram targets through a permutation of the vocabulary.
std::vector<float> lora_losses_on_cuda(Precision p, int steps) {
  PrecisionGuard guard(p);
  Rng rng(2);
  nn::GPT model(lowrank::testing::tiny_config(kVocab, 16, 32, 4, 2), rng, Device::CUDA);  // width 32: > 16
  lora::LoRAConfig lc;
  lc.r = 8;
  lc.alpha = 16.f;
  lc.dropout = 0.f;
  lc.targets = {"q", "v", "o", "mlp"};
  lora::apply_lora(model, lc, rng);
  optim::AdamWConfig oc;
  oc.lr = 1e-2f;
  optim::AdamW opt(model.named_parameters(), oc);
  const int64_t B = 4, T = 16;
  std::vector<int32_t> ids, targets;  // one batch, every step: a loss that falls fast
  Rng data(7);
  for (int64_t i = 0; i < B * T; ++i) {
    ids.push_back(static_cast<int32_t>(data.randint(kVocab)));
    targets.push_back((ids.back() * 7 + 3) % kVocab);
  }
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    Tensor loss = autograd::cross_entropy(model.forward(ids, B, T, {}), targets);
    losses.push_back(loss.item());
    autograd::backward(loss);
    opt.step();
  }
  return losses;
}

}  // namespace

TEST_CASE("cuda: bf16 LoRA steps of a tiny GPT on CUDA follow the fp32 losses within 2%") {
  LR_SKIP_WITHOUT_GPU();
  const int steps = 20;
  const std::vector<float> fp32 = lora_losses_on_cuda(Precision::fp32, steps);
  const int64_t calls = tensor::bf16_gemm_calls();
  const std::vector<float> bf16 = lora_losses_on_cuda(Precision::bf16, steps);
  // Per step, as on the CPU (tests/test_bf16_train.cpp): 8 linears forward, 7 dx (block 0's c_attn input
  // needs none), the tied head's logits and dh.
  CHECK(tensor::bf16_gemm_calls() - calls == steps * (8 + 7 + 2));
  INFO("fp32 " << fp32.front() << " -> " << fp32.back() << ", bf16 " << bf16.front() << " -> " << bf16.back());
  CHECK(fp32.back() < fp32.front() - 0.3f);  // the run learns
  float worst = 0.f;
  for (size_t i = 0; i < fp32.size(); ++i) {
    CAPTURE(i);
    worst = std::max(worst, std::fabs(bf16[i] - fp32[i]) / fp32[i]);
    CHECK(std::fabs(bf16[i] - fp32[i]) <= 0.02f * fp32[i]);
  }
  MESSAGE("largest relative loss difference bf16 vs fp32 on CUDA over " << steps << " steps: " << worst);
  report_error("LoRA losses bf16 vs fp32 (of 2%)", worst, worst / 0.02);
  CHECK(bf16 != fp32);
}

#endif  // LOWRANK_HAVE_CUDA
