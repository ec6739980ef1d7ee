#pragma once
// Shared by the CUDA test files (compiled only with LOWRANK_HAVE_CUDA): random CPU inputs, device
// copies, and a closeness check that reports the worst element. Tests skip without a GPU via
// LR_SKIP_WITHOUT_GPU().
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda/check.h"
#include "cuda/kernels.h"
#include "cuda/memory.h"
#include "test_util.h"

#define LR_SKIP_WITHOUT_GPU()                      \
  if (!lowrank::cuda::available()) {               \
    MESSAGE("no CUDA device: skipped");            \
    return;                                        \
  }

namespace lowrank::cudatest {

inline Tensor randn(const Shape& s, uint64_t seed, float std = 1.f) {
  Rng rng(seed);
  return Tensor::randn(s, rng, std);
}

inline Tensor leaf(const Shape& s, uint64_t seed, float std = 1.f) {
  Tensor t = randn(s, seed, std);
  t.requires_grad_(true);
  return t;
}

inline Tensor dev(const Tensor& t) { return t.contiguous().to(Device::CUDA); }
inline float* dp(const Tensor& t) { return t.data(); }  // device pointer of a CUDA tensor

// Host values of a = G0 + b, elementwise (the expected content of an accumulated gradient).
inline std::vector<float> plus(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  return x;
}

// With LOWRANK_TEST_REPORT_ERRORS set, every comparison prints its worst error to stderr, one
// "[cuda-err]" line, so tools/gpu_check.sh can report how close the GPU came to the CPU per test
// (a pass says only "within tolerance"; the margin is what a first GPU run should record).
inline void report_error(const char* what, double max_abs, double ratio) {
  static const bool on = std::getenv("LOWRANK_TEST_REPORT_ERRORS") != nullptr;
  if (on) std::fprintf(stderr, "[cuda-err] %s: max |got - want| %.3g, error/tolerance %.3g\n", what, max_abs, ratio);
}

// got ≈ want with |got - want| <= atol + rtol·|want| everywhere; reports the worst element.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol,
                  const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0, max_abs = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(double(got[i]) - want[i]);
    const double err = diff == 0.0 ? 0.0 : diff / (atol + rtol * std::fabs(double(want[i])));
    if (!(err <= worst)) worst = err, at = i;  // also catches NaN
    if (!(diff <= max_abs)) max_abs = diff;
  }
  report_error(what, max_abs, worst);
  // std::string: doctest's INFO prints a bare const char* as its address.
  INFO(std::string(what) << ": worst element " << at << " got " << got[at] << " want " << want[at] << " (error/tolerance "
            << worst << ")");
  CHECK(worst <= 1.0);
}
inline void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const char* what) {
  expect_close(got.to_vector(), want.to_vector(), rtol, atol, what);
}

// An int32 array on the device, freed with the scope.
struct DeviceInts {
  int32_t* p = nullptr;
  size_t n = 0;
  explicit DeviceInts(const std::vector<int32_t>& v) : n(v.size()) {
    if (n == 0) return;
    p = static_cast<int32_t*>(cuda::alloc(n * sizeof(int32_t)));
    CUDA_CHECK(cudaMemcpyAsync(p, v.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, cuda::stream()));
    CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  }
  ~DeviceInts() { cuda::release(p, n * sizeof(int32_t)); }
  DeviceInts(const DeviceInts&) = delete;
  DeviceInts& operator=(const DeviceInts&) = delete;
};

// The CPU reference shared by the embedding tests (kernel level and op level): a (50, 70) table looked up
// by N = 200 ids, shaped (10, 20), so every row is hit many times; backward from a random seed.
struct EmbeddingReference {
  static constexpr int64_t V = 50, C = 70, N = 200;
  std::vector<int32_t> ids;
  Tensor weight, seed, y;  // weight.grad() holds the reference scatter-add
};
inline EmbeddingReference embedding_reference() {
  EmbeddingReference r;
  Rng rng(60);
  for (int64_t n = 0; n < r.N; ++n) r.ids.push_back(static_cast<int32_t>(rng.randint(r.V)));
  r.weight = leaf({r.V, r.C}, 61);
  r.seed = randn({10, 20, r.C}, 62);
  r.y = autograd::embedding(r.weight, r.ids, Shape{10, 20});
  autograd::backward(r.y, r.seed);
  return r;
}

}  // namespace lowrank::cudatest
