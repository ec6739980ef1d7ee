// sum and mean over all elements -> shape ().
//   y = Σ x:        dx += dy
//   y = Σ x / n:    dx += dy / n
// The forward sums fixed 4096-element chunks in double and adds the chunk sums in order, so the
// result is the same for every thread count. On CUDA (cuda/reduce.cu) the sum stays on the device:
// the loss feeds backward without a host round trip; item() copies it only when logged.
#include <algorithm>
#include <vector>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace cpu {

constexpr int64_t kChunk = 4096;

// out (1 element) = factor · Σ x (n): chunk sums in double, added in order.
void sum_forward(float* out, const float* x, int64_t n, float factor) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0.0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) acc += x[i];
    part[c] = acc;
  }
  double total = 0.0;
  for (double p : part) total += p;
  out[0] = static_cast<float>(total * factor);
}

// Σ x² (n) in double, one thread in index order: clip_grad_norm's CPU sum and the host emulation of
// the CUDA reduction (cuda/emulation/elementwise.cpp).
double sumsq(const float* x, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * x[i];
  return acc;
}

// dx (n) += factor · dy[0]
void sum_backward(float* dx, const float* dy, int64_t n, float factor) {
  const float g = dy[0] * factor;
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += g;
}

}  // namespace cpu

namespace {

struct SumOp : Node {
  Tensor x, out;
  float factor = 1.f;  // 1 for sum, 1/n for mean
  void backward() override {
    const float* dy = grad_of(out);  // on CUDA a device scalar: the launcher reads it there
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    run(out.device(), cpu::sum_backward, cuda::sum_backward, dx, dy, x.numel(), factor);
  }
  const char* name() const override { return factor == 1.f ? "sum" : "mean"; }
};

Tensor reduce_all(const Tensor& x_in, bool is_mean) {
  const Device dev = op_device(is_mean ? "mean" : "sum", {&x_in});
  Tensor x = compact(x_in);
  const int64_t n = x.numel();
  LR_CHECK(!is_mean || n > 0, "mean: empty tensor ", x.shape());
  const float factor = is_mean ? 1.f / static_cast<float>(n) : 1.f;
  Tensor out = Tensor::empty(Shape(), dev);
  run(dev, cpu::sum_forward, cuda::sum_forward, out.data(), x.data(), n, factor);
  if (needs_grad({&x})) {
    auto node = std::make_unique<SumOp>();
    node->x = x;
    node->out = out;
    node->factor = factor;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_all(x, false); }
Tensor mean(const Tensor& x) { return reduce_all(x, true); }

}  // namespace lowrank::autograd
