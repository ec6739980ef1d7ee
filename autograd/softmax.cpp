// softmax and log_softmax over the last dim; x viewed as (N, C) rows.
//   m = max_j x_j (subtracted so exp never overflows),  s = Σ_j exp(x_j - m),  lse = m + log s
//   softmax:      y_j = exp(x_j - m) / s
//                 dx_j += y_j · (dy_j - Σ_k dy_k·y_k)       (Jacobian diag(y) - y·yᵀ)
//   log_softmax:  y_j = x_j - lse
//                 dx_j += dy_j - exp(y_j) · Σ_k dy_k         (∂lse/∂x_j = softmax_j = exp(y_j))
// Both backward passes need only the saved output y. Rows are independent and each row is
// reduced in a fixed order, so results do not depend on the thread count. CUDA tensors run
// cuda/softmax.cu (one block per row, float trees: ~1e-6 relative from the CPU's Eigen sums).
#include <algorithm>
#include <cmath>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/eigen_core.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace cpu {

// y (N, C) = softmax(x) or log_softmax(x), row by row, as Eigen array expressions: Eigen vectorises
// max, exp (its pexp) and the sums, where a std::exp loop stayed scalar (the decoder's log_softmax over
// (beams, 50257) every step was ~5 ns an element).
void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log) {
  using RowIn = Eigen::Map<const Eigen::ArrayXf>;
  using RowOut = Eigen::Map<Eigen::ArrayXf>;
#pragma omp parallel for schedule(static) if (N * C > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const RowIn xr(x + n * C, C);
    RowOut yr(y + n * C, C);
    const float m = xr.maxCoeff();
    if (log) {
      yr = xr - (m + std::log((xr - m).exp().sum()));
    } else {
      yr = (xr - m).exp();
      yr *= 1.f / yr.sum();
    }
  }
}

// dx (N, C) += Jacobianᵀ · dy (N, C), from the saved output y (N, C).
void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log) {
  // LAB 3 begin: softmax_backward (softmax and log_softmax)
#pragma omp parallel for schedule(static) if (N * C > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* yr = y + n * C;
    const float* dyr = dy + n * C;
    float* dxr = dx + n * C;
    double dot = 0.0;  // softmax: Σ dy·y;  log_softmax: Σ dy
    for (int64_t j = 0; j < C; ++j) dot += log ? dyr[j] : dyr[j] * yr[j];
    const float d = static_cast<float>(dot);
    if (log) {
      for (int64_t j = 0; j < C; ++j) dxr[j] += dyr[j] - std::exp(yr[j]) * d;
    } else {
      for (int64_t j = 0; j < C; ++j) dxr[j] += yr[j] * (dyr[j] - d);
    }
  }
  // LAB 3 end
}

}  // namespace cpu

namespace {

const char* softmax_name(bool log) { return log ? "log_softmax" : "softmax"; }

struct SoftmaxOp : Node {
  Tensor x, out;  // x contiguous (kept for its gradient slot); backward reads only out
  int64_t N = 0, C = 0;
  bool log = false;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    run(out.device(), cpu::softmax_backward, cuda::softmax_backward, dx, dy, out.data(), N, C, log);
  }
  const char* name() const override { return softmax_name(log); }
};

Tensor softmax_impl(const Tensor& x_in, bool log) {
  const char* op = softmax_name(log);
  const Device dev = op_device(op, {&x_in});
  LR_CHECK(x_in.ndim() >= 1 && x_in.size(-1) > 0, op, ": need a non-empty last dim, got ", x_in.shape());
  Tensor x = compact(x_in);
  const int64_t C = x.size(-1), N = x.numel() / C;
  Tensor out = Tensor::empty(x.shape(), dev);
  run(dev, cpu::softmax_forward, cuda::softmax_forward, out.data(), x.data(), N, C, log);
  if (needs_grad({&x})) {
    auto node = std::make_unique<SoftmaxOp>();
    node->x = x;
    node->out = out;
    node->N = N;
    node->C = C;
    node->log = log;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl(x, false); }
Tensor log_softmax(const Tensor& x) { return softmax_impl(x, true); }

}  // namespace lowrank::autograd
