#pragma once
// tensor::gemm held to tensor::gemm_reference (double accumulation) on random operands: the harness of
// test_gemm_backend.cpp and test_gemm_thin.cpp.
#include <cmath>
#include <random>
#include <vector>

#include <doctest/doctest.h>
#include "tensor/gemm.h"

namespace lowrank::testing {

struct Shape3 {
  bool ta, tb;
  int64_t M, N, K;
};

inline std::vector<float> random_floats(int64_t n, unsigned seed) {
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
inline void check(const Shape3& s, float alpha, float beta, int64_t pad, unsigned seed) {
  const int64_t lda = (s.ta ? s.M : s.K) + pad, ldb = (s.tb ? s.K : s.N) + pad, ldc = s.N + pad;
  std::vector<float> A = random_floats((s.ta ? s.K : s.M) * lda, seed),
                     B = random_floats((s.tb ? s.N : s.K) * ldb, seed + 1);
  std::vector<float> C = random_floats(s.M * ldc, seed + 2), ref = C, absA(A.size()), absB(B.size()), scale(C.size());
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

}  // namespace lowrank::testing
