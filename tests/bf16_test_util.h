#pragma once
// Helpers of the bf16 tests (test_bf16.cpp, test_bf16_ops.cpp): the skip where no bf16 GEMM runs, and
// comparisons at bf16's tolerance, relative to the magnitude behind each entry of a product.
#include <cmath>
#include <vector>

#include <doctest/doctest.h>
#include "tensor/gemm.h"
#include "tensor/gemm_bf16.h"
#include "tensor/tensor.h"

namespace lowrank::testing {

// The bf16 GEMM needs oneDNN and a CPU with bf16 instructions: where either is missing a check that
// needs it says so and returns (test_bf16_ops.cpp tests the fallback itself).
inline bool bf16_gemm_here() {
  if (tensor::bf16_gemm_available()) return true;
  MESSAGE("skipped, no bf16 GEMM here: " << tensor::bf16_gemm_info());
  return false;
}

// |x - ref| within tol·scale + 1e-6 elementwise, scale the magnitude Σ|a||b| behind each entry: bf16
// rounds each operand to 8 significant bits (relative error ≤ 2^-9), so a product of sums is off by at
// most about 2^-8 of that magnitude, whatever cancellation makes of the result itself.
inline void check_close(const std::vector<float>& x, const std::vector<float>& ref, const std::vector<float>& scale,
                        double tol) {
  REQUIRE(x.size() == ref.size());
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::fabs(double(x[i]) - ref[i]) > tol * scale[i] + 1e-6 && bad++ < 5) CHECK(x[i] == doctest::Approx(ref[i]));
  CHECK(bad == 0);
}

inline std::vector<float> abs_of(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  for (float& x : v) x = std::fabs(x);
  return v;
}

// Σ_k |x[n,k]|·|w[j,k]| for every (n, j): the magnitude behind y = x wᵀ.
inline std::vector<float> magnitude_xwt(const Tensor& x, const Tensor& w) {
  const int64_t N = x.size(0), K = x.size(1), J = w.size(0);
  std::vector<float> ax = abs_of(x), aw = abs_of(w), out(static_cast<size_t>(N * J));
  tensor::gemm_reference(false, true, N, J, K, 1.f, ax.data(), K, aw.data(), K, 0.f, out.data(), J);
  return out;
}

inline constexpr double kBf16Tol = 1e-2;  // of the magnitude Σ|a||b|: about 2.5x the worst case 2^-8

}  // namespace lowrank::testing
