// sum and mean over all elements -> shape ().
//   y = Σ x:        dx += dy
//   y = Σ x / n:    dx += dy / n
// The forward sums fixed 4096-element chunks in double and adds the chunk sums in order, so the
// result is the same for every thread count. On CUDA (cuda/reduce.cu) the sum stays on the device:
// the loss feeds backward without a host round trip; item() copies it only when logged.
#include <vector>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace {

constexpr int64_t kChunk = 4096;

double sum_forward(const float* x, int64_t n) {
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
  return total;
}

struct SumOp : Node {
  Tensor x, out;
  float factor = 1.f;  // 1 for sum, 1/n for mean
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    const int64_t n = x.numel();
    if (out.device() == Device::CUDA) {  // dy is a device scalar: the launcher reads it there
      if constexpr (kCudaBuilt) cuda::sum_backward(dx, dy, n, factor);
      return;
    }
    const float g = dy[0] * factor;
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dx[i] += g;
  }
  const char* name() const override { return factor == 1.f ? "sum" : "mean"; }
};

Tensor reduce_all(const Tensor& x_in, bool is_mean) {
  const Device dev = op_device(is_mean ? "mean" : "sum", {&x_in});
  Tensor x = compact(x_in);
  const int64_t n = x.numel();
  LR_CHECK(!is_mean || n > 0, "mean: empty tensor ", x.shape());
  const float factor = is_mean ? 1.f / static_cast<float>(n) : 1.f;
  Tensor out;
  if (dev == Device::CUDA) {
    out = Tensor::empty(Shape(), dev);
    if constexpr (kCudaBuilt) cuda::sum_forward(out.data(), x.data(), n, factor);
  } else {
    out = Tensor::full(Shape(), static_cast<float>(sum_forward(x.data(), n) * (is_mean ? 1.0 / n : 1.0)));
  }
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
