// dropout (inverted): each element is kept with probability 1-p and scaled by 1/(1-p), so the
// expectation of y equals x and evaluation needs no rescaling:
//   m_i = 1/(1-p) if u_i >= p else 0,   y = x ⊙ m,   dx += dy ⊙ m
// u_i = Philox-4x32-10(counter i/4, key)[i % 4] (tensor/philox.h; Salmon et al. 2011): a stateless
// function of (key, i), so the mask is filled in parallel and the CUDA kernel (cuda/dropout.cu)
// computes the very same mask on the device: one seed drops the same units on either device and
// nothing is uploaded. Each call draws ONE 64-bit key from the caller's Rng, so a seed reproduces
// the whole sequence of masks, consecutive calls get independent streams, and the Rng advances by
// one draw per call on either device, whatever the thread count.
// When !training or p == 0 the op is the identity: x itself is returned and nothing is recorded.
// The mask (x's shape and device) is kept for backward: 4 bytes per element, as before.
#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"
#include "tensor/philox.h"

namespace lowrank::autograd {

namespace cpu {

// y (n) = x ⊙ mask, mask (n) = 0 or 1/(1-p) from the stream `key`: one Philox call per 4 elements
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key) {
  const float keep_scale = 1.f / (1.f - p);
  const int64_t groups = tensor::philox::dropout_groups(n);
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t g = 0; g < groups; ++g)
    tensor::philox::dropout_group(y, mask, x, n, static_cast<uint64_t>(g), key, p, keep_scale);
}

// dx (n) += dy ⊙ mask
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
#pragma omp parallel for schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * mask[i];
}

}  // namespace cpu

namespace {

struct DropoutOp : Node {
  Tensor x, mask, out;  // x contiguous; mask has x's shape and device, values 0 or 1/(1-p)
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    run(x.device(), cpu::dropout_backward, cuda::dropout_backward, dx, dy, mask.data(), x.numel());
  }
  const char* name() const override { return "dropout"; }
};

}  // namespace

Tensor dropout(const Tensor& x_in, float p, Rng& rng, bool training) {
  const Device dev = op_device("dropout", {&x_in});
  LR_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got ", p, " for input ", x_in.shape());
  if (!training || p == 0.f) return x_in;
  Tensor x = compact(x_in);
  const uint64_t key = rng.next_u64();  // this call's stream: one draw, whatever the size or device
  Tensor mask = Tensor::empty(x.shape(), dev), out = Tensor::empty(x.shape(), dev);
  run(dev, cpu::dropout_forward, cuda::dropout_forward, out.data(), mask.data(), x.data(), x.numel(), p, key);
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
