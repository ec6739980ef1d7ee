#pragma once
// exp for the hot loops (softmax, cross-entropy, attention): a branch-free version of Cephes'
// expf (range reduction by ln 2, degree-6 polynomial, 2^n through the exponent bits) that GCC
// vectorises under `#pragma omp simd`, where std::exp stays a scalar libm call. Max relative
// error vs std::exp is a few ulp (tests/test_tensor.cpp); inputs below -87.3 give 1.2e-38 (the
// smallest normal float), above 88.3 give ~3.4e38 (callers subtract the row max: arguments <= 0),
// NaN gives NaN.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace lowrank::tensor {

#pragma omp declare simd
inline float fast_exp(float x) {
  // Comparisons, not std::fmin/fmax: those keep NaN rules that stop GCC from inlining them.
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.37626f ? 88.37626f : x;
  // n = round(x / ln 2) by the 1.5·2^23 trick (std::floor does not vectorise without
  // -fno-trapping-math); GCC does not reassociate (t + c) - c without -ffast-math.
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  x = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n·ln2, ln2 split in two for accuracy
  float y = 1.9875691500e-4f;
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * x * x + x + 1.f;
  // NaN in, NaN out: a NaN n (cast to int would be undefined behaviour) becomes 0 and y, NaN, stays
  // NaN. One compare and a mask per vector, next to the polynomial's dozen FMAs.
  const float n_ok = n == n ? n : 0.f;
  const int32_t bits = (static_cast<int32_t>(n_ok) + 127) << 23;  // 2^n as a float's exponent
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

// tanh(x) = 1 - 2 / (exp(2x) + 1): vectorisable, saturates cleanly to ±1. Absolute error ~1e-7, so
// fine inside GELU's (1 + tanh u); not for callers that need relative accuracy of tiny |x|.
#pragma omp declare simd
inline float fast_tanh(float x) { return 1.f - 2.f / (fast_exp(2.f * x) + 1.f); }

}  // namespace lowrank::tensor
