// layernorm over the last dim; x viewed as (N, C) rows, weight w (C), bias b (C).
//   μ = Σ_j x_j / C,   σ² = Σ_j (x_j - μ)² / C  (biased, as GPT-2/PyTorch),   rstd = 1/√(σ² + eps)
//   xhat_j = (x_j - μ)·rstd,   y_j = xhat_j·w_j + b_j
// Backward. With dxhat_j = dy_j·w_j, and since ∂μ/∂x_j = 1/C and ∂rstd/∂x_j = -rstd²·xhat_j/C,
//   ∂xhat_k/∂x_j = rstd·(δ_kj - 1/C - xhat_k·xhat_j/C), so summing over k:
//   dx_j += rstd·(dxhat_j - mean(dxhat) - xhat_j·mean(dxhat·xhat))
//   dw_j += Σ_rows dy_j·xhat_j,   db_j += Σ_rows dy_j
// The node saves μ (N) and rstd (N) and recomputes xhat from x. dx is parallel over rows; the
// dw/db column sums give each task a fixed block of columns that it sums over rows in order,
// so the result does not depend on the thread count or schedule. CUDA tensors run the launchers of
// the same names and arguments (cuda/layernorm.cu) on the same saved tensors.
#include <algorithm>
#include <cmath>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace cpu {

constexpr int64_t kColBlock = 16;  // columns per dw/db task: one 64-byte line of each row

// y (N, C), mean (N), rstd (N) from x (N, C), w (C), b (C or nullptr).
void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t N,
                       int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    double s = 0.0;
    for (int64_t j = 0; j < C; ++j) s += xr[j];
    const float m = static_cast<float>(s / C);
    double v = 0.0;  // two passes: Σ(x - μ)² does not cancel like Σx² - Cμ²
    for (int64_t j = 0; j < C; ++j) v += static_cast<double>(xr[j] - m) * (xr[j] - m);
    const float r = static_cast<float>(1.0 / std::sqrt(v / C + eps));
    for (int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - m) * r * w[j] + (b ? b[j] : 0.f);
    mean[n] = m;
    rstd[n] = r;
  }
}

// dx (N, C) += rstd·(dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)), row by row.
void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C) {
  // LAB 2 begin: layernorm_backward_dx (the input gradient)
#pragma omp parallel for schedule(static) if (N * C > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * C;
    const float* dyr = dy + n * C;
    float* dxr = dx + n * C;
    const float m = mean[n], r = rstd[n];
    double s1 = 0.0, s2 = 0.0;  // Σ dxhat, Σ dxhat·xhat
    for (int64_t j = 0; j < C; ++j) {
      const float dxhat = dyr[j] * w[j];
      s1 += dxhat;
      s2 += static_cast<double>(dxhat) * ((xr[j] - m) * r);
    }
    const float m1 = static_cast<float>(s1 / C), m2 = static_cast<float>(s2 / C);
    for (int64_t j = 0; j < C; ++j) {
      const float xhat = (xr[j] - m) * r;
      dxr[j] += r * (dyr[j] * w[j] - m1 - xhat * m2);
    }
  }
  // LAB 2 end
}

// dw (C) += Σ_rows dy·xhat and db (C) += Σ_rows dy; either may be nullptr.
void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C) {
  // LAB 2 begin: layernorm_backward_params (dw and db, column sums)
  const int64_t blocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (N * C > kParallelGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kColBlock, j1 = std::min(C, j0 + kColBlock);
    double aw[kColBlock] = {}, ab[kColBlock] = {};
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x + n * C;
      const float* dyr = dy + n * C;
      for (int64_t j = j0; j < j1; ++j) {
        aw[j - j0] += static_cast<double>(dyr[j]) * ((xr[j] - mean[n]) * rstd[n]);
        ab[j - j0] += dyr[j];
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      if (dw) dw[j] += static_cast<float>(aw[j - j0]);
      if (db) db[j] += static_cast<float>(ab[j - j0]);
    }
  }
  // LAB 2 end
}

}  // namespace cpu

namespace {

struct LayerNormOp : Node {
  Tensor x, w, b, out;  // x contiguous (N, C) rows; b may be undefined; all on one device
  Tensor mean, rstd;    // (N) each, from the forward, on that device
  int64_t N = 0, C = 0;
  void backward() override {
    const float* dy = grad_of(out);
    if (!dy) return;
    const Device dev = x.device();
    if (float* dx = grad_sink(x))
      run(dev, cpu::layernorm_backward_dx, cuda::layernorm_backward_dx, dx, dy, x.data(), w.data(), mean.data(),
          rstd.data(), N, C);
    float* dw = grad_sink(w);
    float* db = grad_sink(b);
    if (dw || db)
      run(dev, cpu::layernorm_backward_params, cuda::layernorm_backward_params, dw, db, dy, x.data(), mean.data(),
          rstd.data(), N, C);
  }
  const char* name() const override { return "layernorm"; }
};

}  // namespace

Tensor layernorm(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, float eps) {
  const Device dev = op_device("layernorm", {&x_in, &w_in, &b_in});
  const int64_t C = x_in.ndim() >= 1 ? x_in.size(-1) : 0;
  LR_CHECK(C > 0 && w_in.ndim() == 1 && w_in.size(0) == C && (!b_in.defined() || b_in.shape() == w_in.shape()),
           "layernorm: x ", x_in.shape(), " does not match weight ", w_in.shape(), " and bias ", b_in.shape(),
           " (expected (..., C), (C), (C))");
  LR_CHECK(eps >= 0.f, "layernorm: eps must be >= 0, got ", eps);
  Tensor x = compact(x_in), w = compact(w_in), b = b_in.defined() ? compact(b_in) : Tensor();
  const int64_t N = x.numel() / C;
  Tensor out = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({N}, dev), rstd = Tensor::empty({N}, dev);
  const float* bp = b.defined() ? b.data() : nullptr;
  run(dev, cpu::layernorm_forward, cuda::layernorm_forward, out.data(), mean.data(), rstd.data(), x.data(), w.data(),
      bp, N, C, eps);
  if (needs_grad({&x, &w, &b})) {
    auto node = std::make_unique<LayerNormOp>();
    node->x = x;
    node->w = w;
    node->b = b;
    node->out = out;
    node->mean = mean;
    node->rstd = rstd;
    node->N = N;
    node->C = C;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
