// tensor::gemm against tensor::gemm_reference (double accumulation), whatever backend the build has
// (-DLOWRANK_GEMM=openblas|onednn|blis|eigen, issue 13): the step's shapes scaled down, every transpose
// combination, beta 0 / 1 / other, padded leading dimensions, and the empty cases.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include <doctest/doctest.h>

using namespace lowrank;

namespace {
struct Shape3 {
  bool ta, tb;
  int64_t M, N, K;
};

std::vector<float> randn(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

// Runs gemm and the reference on the same operands, with `pad` extra columns in every leading dimension,
// and checks each entry within 2e-5 of its scale |alpha|·(|op(A)|·|op(B)|) + |beta·C| (float rounding
// grows with that sum, not with the result, which can cancel to near 0), plus 1e-6 absolute.
// Entries of C past column N (the padding) must be left as they were.
void check(const Shape3& s, float alpha, float beta, int64_t pad, unsigned seed) {
  const int64_t lda = (s.ta ? s.M : s.K) + pad, ldb = (s.tb ? s.K : s.N) + pad, ldc = s.N + pad;
  std::vector<float> A = randn((s.ta ? s.K : s.M) * lda, seed), B = randn((s.tb ? s.N : s.K) * ldb, seed + 1);
  std::vector<float> C = randn(s.M * ldc, seed + 2), ref = C, absA(A.size()), absB(B.size()), scale(C.size());
  for (size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
  for (size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
  for (size_t i = 0; i < C.size(); ++i) scale[i] = std::fabs(C[i]);
  tensor::gemm(s.ta, s.tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  tensor::gemm_reference(s.ta, s.tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
  tensor::gemm_reference(s.ta, s.tb, s.M, s.N, s.K, std::fabs(alpha), absA.data(), lda, absB.data(), ldb,
                         std::fabs(beta), scale.data(), ldc);
  INFO(tensor::gemm_backend(), " ", s.M, "x", s.N, "x", s.K, " ta=", s.ta, " tb=", s.tb, " beta=", beta, " pad=", pad);
  int bad = 0;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t k = static_cast<size_t>(i * ldc + j);
      const double tol = j < s.N ? 2e-5 * scale[k] + 1e-6 : 0.0;  // padding: exactly untouched
      if (std::fabs(double(C[k]) - ref[k]) > tol && bad++ < 5) CHECK(C[k] == doctest::Approx(ref[k]));
    }
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("gemm backend: the name matches the configured LOWRANK_GEMM") {
  CHECK(std::string(tensor::gemm_backend()) == LOWRANK_GEMM_EXPECTED);  // set from CMake's LOWRANK_GEMM
  CHECK(!tensor::gemm_backend_info().empty());
}

TEST_CASE("gemm backend: the step's shapes, scaled down, match the double reference") {
  // GPT-2 step shapes at tokens 64, width 96 (768/8), LoRA rank 4 and a 5027-wide head (50257/10):
  // forward x·Wᵀ (NT), backward dy·W (NN) and dyᵀ·x (TN), as in examples/bench_ops.cpp.
  const int64_t T = 64, C = 96, r = 4, V = 5027;
  const std::vector<Shape3> shapes = {
      {false, true, T, 3 * C, C}, {false, false, T, C, 3 * C}, {true, false, 3 * C, C, T},   // attn.c_attn
      {false, true, T, 4 * C, C}, {false, false, T, C, 4 * C}, {true, false, C, 4 * C, T},   // mlp
      {false, true, T, r, C},     {false, true, T, C, r},      {true, false, C, r, T},       // LoRA r=4
      {false, false, T, r, C},    {true, false, r, C, T},      {false, false, T, C, r},
      {false, true, T, V, C},     {false, false, T, C, V},     {true, false, V, C, T}};      // head
  unsigned seed = 1;
  for (int threads : {1, 2}) {
    const int prev = tensor::num_threads();
    tensor::set_num_threads(threads);
    for (const auto& s : shapes) check(s, 1.f, 0.f, 0, seed++);
    tensor::set_num_threads(prev);
  }
}

TEST_CASE("gemm backend: transposes, alpha and beta, padded leading dimensions") {
  unsigned seed = 100;
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {{37, 29, 53}, {33, 4, 70}, {4, 45, 1}};
  for (const auto& [M, N, K] : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.f, 1.f, -0.7f})
          for (int64_t pad : {0, 3}) check({ta == 1, tb == 1, M, N, K}, pad ? -1.3f : 0.7f, beta, pad, seed++);
}

TEST_CASE("gemm backend: beta = 0 overwrites C, NaN included; empty products") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A = randn(6 * 5, 7), B = randn(5 * 4, 8);
  std::vector<float> C(6 * 4, nan);
  tensor::gemm(false, false, 6, 4, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, C.data(), 4);
  for (float c : C) CHECK(std::isfinite(c));

  SUBCASE("K = 0: C = beta·C, and zeros for beta = 0 whatever C held") {
    std::vector<float> D(6 * 4, 2.f);
    tensor::gemm(false, false, 6, 4, 0, 1.f, A.data(), 1, B.data(), 4, 0.5f, D.data(), 4);
    for (float d : D) CHECK(d == 1.f);
    std::vector<float> E(6 * 4, nan);
    tensor::gemm(true, true, 6, 4, 0, 1.f, A.data(), 6, B.data(), 1, 0.f, E.data(), 4);
    for (float e : E) CHECK(e == 0.f);
  }
  SUBCASE("M = 0 or N = 0: C is not touched") {
    std::vector<float> D(6 * 4, 3.f);
    tensor::gemm(false, false, 0, 4, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, D.data(), 4);
    tensor::gemm(false, false, 6, 0, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, D.data(), 4);
    for (float d : D) CHECK(d == 3.f);
  }
}
