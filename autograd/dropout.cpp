// dropout (inverted): each element is kept with probability 1-p and scaled by 1/(1-p), so the
// expectation of y equals x and evaluation needs no rescaling:
//   m_i = 1/(1-p) if u_i >= p else 0,   u_i ~ U[0, 1) drawn from the caller's Rng in element order
//   y = x ⊙ m,   dx += dy ⊙ m
// The mask is drawn serially from one Rng, so a seed reproduces it whatever the thread count.
// When !training or p == 0 the op is the identity: x itself is returned and nothing is recorded.
// CUDA tensors: the mask is still drawn here on the host from the same Rng (so one seed drops the
// same units on either device, and the Rng advances identically), then uploaded (n floats per call)
// and applied by the launchers of the same names (cuda/dropout.cu).
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace {

// mask (n) = 0 or 1/(1-p), one uniform draw per element in order
void dropout_mask(float* mask, int64_t n, float p, Rng& rng) {
  const float keep_scale = 1.f / (1.f - p);
  for (int64_t i = 0; i < n; ++i) mask[i] = rng.uniform() >= p ? keep_scale : 0.f;
}

// y (n) = x ⊙ mask
void dropout_forward(float* y, const float* x, const float* mask, int64_t n) {
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mask[i];
}

// dx (n) += dy ⊙ mask
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * mask[i];
}

struct DropoutOp : Node {
  Tensor x, mask, out;  // x contiguous; mask has x's shape and device, values 0 or 1/(1-p)
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    if (x.device() == Device::CUDA) {
      if constexpr (kCudaBuilt) cuda::dropout_backward(dx, dy, mask.data(), x.numel());
    } else {
      dropout_backward(dx, dy, mask.data(), x.numel());
    }
  }
  const char* name() const override { return "dropout"; }
};

}  // namespace

Tensor dropout(const Tensor& x_in, float p, Rng& rng, bool training) {
  const Device dev = op_device("dropout", {&x_in});
  LR_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got ", p, " for input ", x_in.shape());
  if (!training || p == 0.f) return x_in;
  Tensor x = compact(x_in);
  Tensor mask = Tensor::empty(x.shape());  // drawn on the host whatever the device
  dropout_mask(mask.data(), x.numel(), p, rng);
  Tensor out = Tensor::empty(x.shape(), dev);
  if (dev == Device::CUDA) {
    mask = mask.to(dev);
    if constexpr (kCudaBuilt) cuda::dropout_forward(out.data(), x.data(), mask.data(), x.numel());
  } else {
    dropout_forward(out.data(), x.data(), mask.data(), x.numel());
  }
  if (needs_grad({&x})) {
    auto node = std::make_unique<DropoutOp>();
    node->x = x;
    node->mask = mask;
    node->out = out;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
