// weight_norm: the norm of each row of a weight W (N, C) -> n (N). DoRA's ‖W‖_c (Liu et al., 2024,
// Eq. 2 and 5): the paper writes W as (in, out) and takes the norm of each column, one per output
// feature; in the nn.Linear layout (out, in) used here that is one norm per row.
//   n_j = √(Σ_i W_ji²)
//   dW_ji += dn_j · W_ji / n_j          (∂‖w‖/∂w = w / ‖w‖)
// A zero row has no direction: its gradient is taken as 0 (the subgradient at the origin).
// Row sums in double, one row per thread, so the result does not depend on the thread count.
#include <cmath>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace cpu {

// n (N) = √(Σ_i w² over each row of w (N, C))
void weight_norm_forward(float* n, const float* w, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > tensor::kParallelGrain)
  for (int64_t j = 0; j < N; ++j) {
    double acc = 0.0;
    for (int64_t i = 0; i < C; ++i) acc += static_cast<double>(w[j * C + i]) * w[j * C + i];
    n[j] = static_cast<float>(std::sqrt(acc));
  }
}

// dw (N, C) += dn_j · w_ji / n_j, from the saved output n (N)
void weight_norm_backward(float* dw, const float* dn, const float* w, const float* n, int64_t N, int64_t C) {
  // LAB 9 begin: weight_norm_backward (the direction's gradient)
#pragma omp parallel for schedule(static) if (N * C > tensor::kParallelGrain)
  for (int64_t j = 0; j < N; ++j) {
    if (n[j] == 0.f) continue;
    const float g = dn[j] / n[j];
    for (int64_t i = 0; i < C; ++i) dw[j * C + i] += g * w[j * C + i];
  }
  // LAB 9 end
}

}  // namespace cpu

namespace {

struct WeightNormOp : Node {
  Tensor w, out;  // w (N, C) contiguous, out (N)
  void backward() override {
    const float* dn = grad_of(out);
    float* dw = grad_sink(w);
    if (!dn || !dw) return;
    run(out.device(), cpu::weight_norm_backward, cuda::weight_norm_backward, dw, dn, w.data(), out.data(), w.size(0),
        w.size(1));
  }
  const char* name() const override { return "weight_norm"; }
};

}  // namespace

Tensor weight_norm(const Tensor& w_in) {
  const Device dev = op_device("weight_norm", {&w_in});
  LR_CHECK(w_in.ndim() == 2, "weight_norm: expected a weight (N, C), got ", w_in.shape());
  Tensor w = compact(w_in);
  const int64_t N = w.size(0), C = w.size(1);
  Tensor out = Tensor::empty(Shape{N}, dev);
  run(dev, cpu::weight_norm_forward, cuda::weight_norm_forward, out.data(), w.data(), N, C);
  if (needs_grad({&w})) {
    auto node = std::make_unique<WeightNormOp>();
    node->w = w;
    node->out = out;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
