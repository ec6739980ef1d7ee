// linear, matmul and the fused LM head by a frozen weight under the bf16 policy (autograd/weight_gemm.h,
// docs/precision.md): forward and input gradient within bf16's tolerance of the fp32 path, what stays fp32
// (trainable weights, thin products, products of two activations), merge and unmerge seen by the next
// bf16 forward, and the fp32 fallback forced as on a CPU without bf16. Where this CPU has no bf16 GEMM the
// checks that need one say why they are skipped; the fallback and the fp32 parts run everywhere.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "bf16_test_util.h"
#include "lora/lora.h"
#include "nn/layers.h"
#include "tensor/bf16.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using tensor::Precision;
using tensor::PrecisionGuard;

TEST_CASE("bf16: linear by a frozen weight runs in bf16, forward and dx within bf16 tolerance of fp32") {
  if (!bf16_gemm_here()) return;
  const int64_t N = 37, in = 48, out = 40;
  Tensor x = param({N, in}, 1), w = param({out, in}, 2, 0.1f), b = param({out}, 3);
  w.requires_grad_(false);  // frozen, as LoRA's W0
  auto run = [&](Precision p, std::vector<float>& y, std::vector<float>& dx, std::vector<float>& db) {
    PrecisionGuard g(p);
    x.zero_grad(), b.zero_grad();
    Tensor out_t = autograd::linear(x, w, b);
    Rng rng(4);
    autograd::backward(out_t, Tensor::randn(out_t.shape(), rng));
    y = out_t.to_vector(), dx = x.grad().to_vector(), db = b.grad().to_vector();
  };
  std::vector<float> y32, dx32, db32, y16, dx16, db16;
  run(Precision::fp32, y32, dx32, db32);
  const int64_t calls = tensor::bf16_gemm_calls();
  run(Precision::bf16, y16, dx16, db16);
  CHECK(tensor::bf16_gemm_calls() == calls + 2);  // y = x wᵀ and dx = dy w; no dw: w is frozen
  CHECK(!w.grad().defined());
  std::vector<float> scale_y = magnitude_xwt(x, w);
  for (size_t i = 0; i < scale_y.size(); ++i) scale_y[i] += std::fabs(b.to_vector()[i % out]);
  check_close(y16, y32, scale_y, kBf16Tol);
  CHECK(y16 != y32);  // bf16 really ran: its rounding shows
  Rng rng(4);
  const Tensor dy = Tensor::randn({N, out}, rng);
  check_close(dx16, dx32, magnitude_xwt(dy, w.transpose(0, 1).contiguous()), kBf16Tol);
  CHECK(db16 == db32);  // the bias gradient is a column sum of dy: fp32 either way
}

TEST_CASE("bf16: trainable weights, thin products and fp32 runs keep the fp32 GEMM bit for bit") {
  const int64_t N = 24, in = 32, out = 20;
  Tensor x = param({N, in}, 5), w = param({out, in}, 6), a = param({4, in}, 7);  // a: LoRA's A, rank 4
  auto both = [&](const std::function<Tensor()>& f) {
    std::vector<float> y32, y16;
    {
      PrecisionGuard g(Precision::fp32);
      y32 = f().to_vector();
    }
    const int64_t calls = tensor::bf16_gemm_calls();
    {
      PrecisionGuard g(Precision::bf16);
      y16 = f().to_vector();
    }
    CHECK(tensor::bf16_gemm_calls() == calls);
    CHECK(y16 == y32);
  };
  both([&] { return autograd::linear(x, w); });  // w trains: fp32, and its gradient too
  Tensor frozen_a = a.detach();                  // frozen, but rank 4: the thin fp32 loops
  both([&] { return autograd::linear(x, frozen_a); });
  Tensor frozen_w = w.detach();
  both([&] { return autograd::linear(x.narrow(0, 0, 8), frozen_w); });  // 8 rows: thin
}

TEST_CASE("bf16: matmul by a frozen 2-D weight runs in bf16, forward and dA; a batched matmul stays fp32") {
  if (!bf16_gemm_here()) return;
  Tensor h = param({2, 20, 24}, 8), emb = param({50, 24}, 9);  // the tied head's h · Eᵀ
  emb.requires_grad_(false);
  auto run = [&](Precision p, std::vector<float>& y, std::vector<float>& dh) {
    PrecisionGuard g(p);
    h.zero_grad();
    Tensor logits = autograd::matmul(h, emb, false, true);
    Rng rng(5);
    autograd::backward(logits, Tensor::randn(logits.shape(), rng));
    y = logits.to_vector(), dh = h.grad().to_vector();
  };
  std::vector<float> y32, dh32, y16, dh16;
  run(Precision::fp32, y32, dh32);
  const int64_t calls = tensor::bf16_gemm_calls();
  run(Precision::bf16, y16, dh16);
  CHECK(tensor::bf16_gemm_calls() == calls + 2);
  const Tensor h2 = h.detach().view({40, 24});
  check_close(y16, y32, magnitude_xwt(h2, emb), kBf16Tol);
  Rng rng(5);
  const Tensor dl = Tensor::randn({40, 50}, rng);
  check_close(dh16, dh32, magnitude_xwt(dl, emb.transpose(0, 1).contiguous()), kBf16Tol);
  CHECK(y16 != y32);
  // Both operands activations (attention's q·kᵀ): fp32 whatever the policy.
  Tensor q = param({2, 20, 24}, 10), k = param({2, 20, 24}, 11);
  q.requires_grad_(false), k.requires_grad_(false);
  PrecisionGuard g(Precision::bf16);
  const int64_t before = tensor::bf16_gemm_calls();
  autograd::matmul(q, k, false, true);
  CHECK(tensor::bf16_gemm_calls() == before);
}

TEST_CASE("bf16: the fused LM head multiplies a frozen head in bf16, loss and dh within tolerance of fp32") {
  if (!bf16_gemm_here()) return;
  const int64_t N = 50, C = 24, V = 300;
  Tensor h = param({N, C}, 16), w = param({V, C}, 17, 0.5f);
  w.requires_grad_(false);  // the tied embedding of a LoRA run
  std::vector<int32_t> targets(N);
  for (int64_t i = 0; i < N; ++i) targets[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37) % V);
  auto run = [&](Precision p, float& loss, std::vector<float>& dh) {
    PrecisionGuard g(p);
    h.zero_grad();
    Tensor l = autograd::linear_cross_entropy(h, w, targets, {}, 20);  // chunks of 20, 20 and 10 rows
    autograd::backward(l);
    loss = l.item(), dh = h.grad().to_vector();
  };
  float l32 = 0, l16 = 0;
  std::vector<float> dh32, dh16;
  run(Precision::fp32, l32, dh32);
  const int64_t calls = tensor::bf16_gemm_calls();
  run(Precision::bf16, l16, dh16);
  // The logits and G_h of the two full chunks in bf16; the last chunk's 10 rows are thin: fp32.
  CHECK(tensor::bf16_gemm_calls() == calls + 4);
  // Each logit is off by at most kBf16Tol of its magnitude Σ|h||w|, the loss (lse - z_target) by twice that.
  const std::vector<float> mag = magnitude_xwt(h.detach(), w);
  const float zmax = *std::max_element(mag.begin(), mag.end());
  CHECK(std::fabs(l16 - l32) <= 2 * kBf16Tol * zmax);
  CHECK(l16 != l32);
  float dmax = 0, err = 0;
  for (size_t i = 0; i < dh32.size(); ++i)
    dmax = std::max(dmax, std::fabs(dh32[i])), err = std::max(err, std::fabs(dh16[i] - dh32[i]));
  CHECK(err <= 2 * kBf16Tol * dmax);
}

TEST_CASE("bf16: merge and unmerge of a LoRA layer are seen by the next bf16 forward") {
  Rng rng(13);
  nn::Linear base(48, 40, true, nn::Init{rng}, 0.1f);
  lora::LoRALinear m(base, 4, 8.f, 0.f, 0.f, rng);
  m.lora_B.copy_(Tensor::randn({40, 4}, rng, 0.5f));  // ΔW far above bf16's rounding
  const Tensor x = Tensor::randn({33, 48}, rng), w0 = m.weight.clone();
  auto forward = [&](Precision p) {
    PrecisionGuard g(p);
    autograd::NoGradGuard ng;
    return m.forward(x, {}).to_vector();
  };
  // The magnitude behind each output: x against |W| (W0, or W0 + ΔW once merged), plus the bias and the
  // LoRA path's share, bounded by 1.
  auto magnitude = [&](const Tensor& w) {
    std::vector<float> s = magnitude_xwt(x, w);
    for (float& v : s) v += 1.f;
    return s;
  };
  const std::vector<float> ref = forward(Precision::fp32), scale0 = magnitude(w0);
  const std::vector<float> unmerged = forward(Precision::bf16);
  const int64_t made = tensor::bf16_copies_made();
  m.merge();  // W0 += s·B A: the bf16 copy of W0 must go
  const std::vector<float> merged32 = forward(Precision::fp32), merged = forward(Precision::bf16);
  const std::vector<float> scale1 = magnitude(m.weight);
  m.unmerge();
  const std::vector<float> back = forward(Precision::bf16);
  check_close(unmerged, ref, scale0, kBf16Tol);
  check_close(merged, merged32, scale1, kBf16Tol);
  check_close(back, ref, scale0, kBf16Tol);
  // A stale copy of W0 while merged would give W0 x + b: off by ΔW x, far outside the tolerance above.
  const std::vector<float> stale = autograd::linear(x, w0, m.bias).to_vector();
  int far = 0;
  for (size_t i = 0; i < stale.size(); ++i) far += std::fabs(stale[i] - merged32[i]) > 3 * kBf16Tol * scale1[i];
  CHECK(far > static_cast<int>(stale.size()) / 2);
  if (!tensor::bf16_gemm_available()) {
    MESSAGE("bf16 parts ran as fp32 here: " << tensor::bf16_gemm_info());
    return;
  }
  CHECK(unmerged != ref);
  CHECK(tensor::bf16_copies_made() == made + 2);  // one after merge, one after unmerge
}

TEST_CASE("bf16: the forced fallback runs the fp32 GEMM bit for bit and says so") {
  struct Restore {
    ~Restore() { tensor::set_bf16_gemm_enabled(true); }
  } restore;
  tensor::set_bf16_gemm_enabled(false);
  CHECK(!tensor::bf16_gemm_available());
  CHECK(tensor::bf16_gemm_info().rfind("fp32 fallback: ", 0) == 0);
  Tensor x = param({40, 32}, 14), w = param({24, 32}, 15);
  w.requires_grad_(false);
  std::vector<float> y32, dx32, y16, dx16;
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    PrecisionGuard g(p);
    x.zero_grad();
    Tensor y = autograd::linear(x, w);
    autograd::backward(autograd::sum(y));
    (p == Precision::fp32 ? y32 : y16) = y.to_vector();
    (p == Precision::fp32 ? dx32 : dx16) = x.grad().to_vector();
  }
  CHECK(y16 == y32);
  CHECK(dx16 == dx32);
  CHECK(contains(error_of([] {
                   float c = 0;
                   uint16_t a = 0;
                   tensor::gemm_bf16(false, false, 1, 1, 1, &a, 1, &a, 1, 0.f, &c, 1);
                 }),
                 "gemm_bf16: not available here (fp32 fallback: "));
}
