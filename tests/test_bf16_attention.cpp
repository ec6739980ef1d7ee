// attention under the bf16 policy (autograd/attention_bf16.cpp, docs/precision.md): its tile products in
// bf16 with fp32 accumulation, forward and dq, dk, dv within bf16's tolerance of the fp32 kernels (causal
// and not, Tq < Tk, key lengths, strided qkv slices, gradients accumulated into non-zero buffers); the
// fp32 kernels bit for bit under the fp32 policy and where no bf16 GEMM runs; the same bits with 1 and 2
// threads; no new oneDNN primitive once a shape has run. Where this CPU has no bf16 GEMM the checks that
// need one say so; the fallback checks run everywhere.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "bf16_test_util.h"
#include "tensor/gemm_bf16.h"
#include "tensor/parallel.h"
#include "tensor/precision.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using autograd::attention;
using autograd::slice;
using tensor::Precision;
using tensor::PrecisionGuard;

namespace {

struct AttnCase {
  int64_t B, Tq, Tk, C;
  int NH;
  bool causal, fused;
  std::vector<int32_t> key_len;
};

// out, then each leaf's gradient, after two forward and backward passes at precision p: the second
// backward accumulates into the gradients the first left (q, k, v, or the fused qkv through its slices).
std::vector<std::vector<float>> run_case(const AttnCase& c, Precision p) {
  PrecisionGuard guard(p);
  Tensor qkv, q, k, v;
  std::vector<Tensor> leaves;
  if (c.fused) {  // q, k, v read in place from (B, T, 3C): row stride 3C
    qkv = param({c.B, c.Tq, 3 * c.C}, 70);
    leaves = {qkv};
  } else {
    q = param({c.B, c.Tq, c.C}, 71), k = param({c.B, c.Tk, c.C}, 72), v = param({c.B, c.Tk, c.C}, 73);
    leaves = {q, k, v};
  }
  std::vector<float> out;
  for (int pass = 0; pass < 2; ++pass) {
    if (c.fused) q = slice(qkv, 2, 0, c.C), k = slice(qkv, 2, c.C, c.C), v = slice(qkv, 2, 2 * c.C, c.C);
    Tensor y = attention(q, k, v, c.NH, c.causal, c.key_len);
    Rng rng(74 + pass);
    autograd::backward(y, Tensor::randn(y.shape(), rng));
    if (pass == 0) out = y.to_vector();
  }
  std::vector<std::vector<float>> r{out};
  for (const Tensor& t : leaves) r.push_back(t.grad().to_vector());
  return r;
}

// |x − ref| <= tol · max|ref| elementwise; returns the largest error in those units.
double worst_relative(const std::vector<float>& x, const std::vector<float>& ref) {
  REQUIRE(x.size() == ref.size());
  double big = 0.0, worst = 0.0;
  for (float r : ref) big = std::max(big, double(std::fabs(r)));
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(double(x[i]) - ref[i]));
  return worst / big;
}

const std::vector<AttnCase> kCases = {
    {2, 70, 70, 32, 2, false, false, {}},      {2, 70, 70, 32, 2, true, false, {}},         // ragged tiles (64 + 6)
    {2, 37, 70, 32, 2, true, false, {}},       {2, 37, 70, 32, 2, false, false, {}},        // Tq < Tk
    {2, 70, 70, 32, 2, true, false, {70, 45}}, {2, 37, 70, 32, 2, false, false, {20, 70}},  // key lengths
    {2, 70, 70, 32, 2, true, true, {}},                                                     // fused qkv slices
    {1, 130, 130, 64, 4, true, true, {}},                                                   // 3 row tiles, hs 16
};

}  // namespace

// Tolerance: each product's operands are rounded to bf16 (relative error <= 2^-9), so a product entry
// is off by about 2^-8 of its magnitude Σ|a||b|. An error δ in a score moves its probability by at most
// 2δ relative, and unit-variance q, k at hs = 16 give scores of magnitude ≲ 4, so P, O and the gradients
// move by a few 2^-8 of their largest entries: 3e-2 of the largest fp32 entry is that bound with room.
// Measured here: at most 0.73% (MESSAGE below).
TEST_CASE("bf16: attention runs its tile products in bf16; output and dq, dk, dv within bf16 tolerance of fp32") {
  if (!bf16_gemm_here()) return;
  double worst = 0.0;
  for (const AttnCase& c : kCases) {
    CAPTURE(c.Tq);
    CAPTURE(c.Tk);
    CAPTURE(c.causal);
    CAPTURE(c.fused);
    CAPTURE(c.key_len.size());
    const auto fp32 = run_case(c, Precision::fp32);
    const int64_t calls = tensor::bf16_gemm_calls();
    const auto bf16 = run_case(c, Precision::bf16);
    CHECK(tensor::bf16_gemm_calls() > calls);
    for (size_t i = 0; i < fp32.size(); ++i) {
      CAPTURE(i);  // 0 the output, then the leaves' gradients
      const double w = worst_relative(bf16[i], fp32[i]);
      CHECK(w <= 3e-2);
      CHECK(w > 0.0);  // it did run in bf16
      worst = std::max(worst, w);
    }
  }
  MESSAGE("attention in bf16: largest error " << worst << " of the largest fp32 entry");
}

TEST_CASE("bf16: attention under the fp32 policy or without a bf16 GEMM is the fp32 kernels bit for bit") {
  for (const AttnCase& c : kCases) {
    const auto fp32 = run_case(c, Precision::fp32);
    tensor::set_bf16_gemm_enabled(false);  // as on a CPU without bf16
    const int64_t calls = tensor::bf16_gemm_calls();
    const auto fallback = run_case(c, Precision::bf16);
    tensor::set_bf16_gemm_enabled(true);
    CHECK(tensor::bf16_gemm_calls() == calls);
    CHECK(fallback == fp32);
  }
  if (!tensor::bf16_gemm_available()) MESSAGE("no bf16 GEMM here (" << tensor::bf16_gemm_info() << ")");
}

TEST_CASE("bf16: attention in bf16 gives the same bits with 1 and 2 threads") {
  if (!bf16_gemm_here()) return;
  PrecisionGuard guard(Precision::bf16);
  for (int64_t T : {8, 96}) {  // below and above the work that opens the OpenMP region
    CAPTURE(T);
    Tensor qkv = param({2, T, 96}, 260);
    check_same_with_1_and_2_threads(
        [&] { return attention(slice(qkv, -1, 0, 32), slice(qkv, -1, 32, 32), slice(qkv, -1, 64, 32), 4, true); },
        {qkv});
  }
}

TEST_CASE("bf16: attention's product shapes are few and made once: a second step creates no primitive") {
  if (!bf16_gemm_here()) return;
  // Key lengths 33..64 all round up to 64 keys (a multiple of 32): one set of shapes for all of them.
  const AttnCase a{2, 64, 64, 32, 2, true, false, {33, 64}}, b{2, 64, 64, 32, 2, true, false, {40, 57}};
  run_case(a, Precision::bf16);
  const int64_t made = tensor::bf16_gemm_primitives_made();
  run_case(a, Precision::bf16);
  run_case(b, Precision::bf16);
  CHECK(tensor::bf16_gemm_primitives_made() == made);
}
