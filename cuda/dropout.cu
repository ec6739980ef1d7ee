// Inverted dropout (CPU reference: autograd/dropout.cpp):
//   y = x ⊙ m,   dx += dy ⊙ m,   m_i = u_i >= p ? 1/(1-p) : 0
// u_i comes from Philox-4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3")
// of counter i/4 under the call's 64-bit key, through tensor/philox.h: the header the CPU op
// compiles too, so a seed gives the same mask on CPU and GPU and a run can move between devices
// without changing which units are dropped. The key is the only per-call input: the mask is
// computed here on the device (no upload) and written out for backward.
#include "cuda/common.cuh"
#include "cuda/kernels.h"
#include "tensor/philox.h"

namespace lowrank::cuda {

namespace {

// One thread per group of 4 elements (one Philox call gives 4 uniforms); mask (n) and y (n) written.
__global__ void dropout_forward_kernel(float* y, float* mask, const float* x, int64_t n, float p, float scale,
                                       uint64_t key) {
  const int64_t groups = tensor::philox::dropout_groups(n);
  LR_GRID_STRIDE(g, groups) tensor::philox::dropout_group(y, mask, x, n, static_cast<uint64_t>(g), key, p, scale);
}

// dx (n) += dy ⊙ mask
__global__ void dropout_backward_kernel(float* dx, const float* dy, const float* mask, int64_t n) {
  LR_GRID_STRIDE(i, n) dx[i] += dy[i] * mask[i];
}

}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key) {
  if (n == 0) return;
  const float scale = 1.f / (1.f - p);  // on the host, as the CPU op computes it
  const int64_t groups = tensor::philox::dropout_groups(n);
  dropout_forward_kernel<<<detail::blocks_for(groups), detail::kThreads, 0, stream()>>>(y, mask, x, n, p, scale, key);
  LR_CUDA_LAUNCHED();
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  if (n == 0) return;
  dropout_backward_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(dx, dy, mask, n);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
