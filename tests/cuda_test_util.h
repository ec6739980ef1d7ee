#pragma once
// Shared by the CUDA tests (tests/test_cuda*.cpp and the CUDA half of tests/ops/test_<op>.cpp, all
// compiled only with LOWRANK_HAVE_CUDA): random CPU inputs, device copies and leaves, a closeness
// check that reports the worst element, and check_on_cuda, which runs one op on CPU and CUDA
// tensors and compares the output and every gradient. Tests skip without a GPU via
// LR_SKIP_WITHOUT_GPU().
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/kernels.h"
#include "cuda/memory.h"
#include "test_util.h"

#define LR_SKIP_WITHOUT_GPU()           \
  if (!lowrank::cuda::available()) {    \
    MESSAGE("no CUDA device: skipped"); \
    return;                             \
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
  INFO(std::string(what) << ": worst element " << at << " got " << got[at] << " want " << want[at]
                         << " (error/tolerance " << worst << ")");
  CHECK(worst <= 1.0);
}
inline void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const char* what) {
  expect_close(got.to_vector(), want.to_vector(), rtol, atol, what);
}

// A CUDA leaf holding t's values, with its own autograd state.
inline Tensor dleaf(const Tensor& t) {
  Tensor d = dev(t);
  d.requires_grad_(true);
  return d;
}

// The CPU leaf `cpu` and its device twin `d` get the same random gradient G0 before their backward
// runs, so that comparing the gradients afterwards also checks that the device backward accumulates
// (adds to G0) like the CPU one.
inline void seed_grad(Tensor cpu, Tensor d, uint64_t seed) {
  Tensor g0 = randn(cpu.shape(), seed);
  cpu.set_grad(g0.clone());
  d.set_grad(dev(g0));
}

// The gradient of the device twin `d` matches the CPU tensor's gradient, and stayed on the device.
inline void expect_grad(const Tensor& d, const Tensor& cpu, double rtol, double atol, const char* what) {
  INFO("gradient " << std::string(what));
  REQUIRE(cpu.grad().defined());
  REQUIRE(d.grad().defined());
  CHECK(d.grad().device() == Device::CUDA);
  expect_close(d.grad(), cpu.grad(), rtol, atol, what);
}

// ---- check_on_cuda: one op through the public autograd API on CPU and CUDA tensors ----

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Tol {
  double rtol, atol;
};

// Tolerances as in docs/cuda.md: elementwise and activations 1e-5 relative, reductions and softmax
// 1e-4, GEMMs 1e-3 (TF32 off), pure data movement (views, concat) within float rounding of one add.
inline constexpr Tol kElementwise{1e-5, 1e-6}, kReduce{1e-4, 1e-5}, kGemm{1e-3, 1e-3}, kCopy{1e-6, 1e-7};

// f on the CPU tensors `xs` and on CUDA copies of them; compares f's output and, for each input that
// requires grad, its accumulated gradient (via autograd::backward from one random seed). Gradients
// start from the same random G0 on both sides, so the device backward must accumulate like the CPU
// one. `what` names the case in failure messages.
inline void check_on_cuda(const OpFn& f, std::vector<Tensor> xs, Tol fwd, Tol bwd, const std::string& what) {
  INFO(what);
  std::vector<Tensor> ds;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor d = dev(xs[i]);
    if (xs[i].requires_grad()) {
      d.requires_grad_(true);
      seed_grad(xs[i], d, 500 + i);
    }
    ds.push_back(d);
  }
  // One pass per device: the tape is shared and backward() clears all of it, so recording both
  // forwards before the first backward would drop the device nodes unrun.
  Tensor y = f(xs);
  Tensor seed = randn(y.shape(), 600);
  autograd::backward(y, seed);
  Tensor dy = f(ds);
  REQUIRE(dy.device() == Device::CUDA);
  REQUIRE(dy.shape() == y.shape());
  expect_close(dy, y, fwd.rtol, fwd.atol, (what + ": forward").c_str());
  autograd::backward(dy, dev(seed));
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) {
      CHECK_FALSE(ds[i].grad().defined());  // frozen inputs get no gradient buffer on the device either
      continue;
    }
    REQUIRE(ds[i].grad().device() == Device::CUDA);
    const std::string name = what + ": grad of input " + std::to_string(i);
    expect_close(ds[i].grad(), xs[i].grad(), bwd.rtol, bwd.atol, name.c_str());
  }
}

}  // namespace lowrank::cudatest
