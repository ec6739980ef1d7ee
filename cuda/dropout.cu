// Inverted dropout (CPU reference: autograd/dropout.cpp):
//   y = x ⊙ m,   dx += dy ⊙ m,   m_i = 0 or 1/(1-p)
// The mask is an INPUT: the caller draws it on the host with the CPU Rng (one uniform per element,
// in order) and uploads it, so a seed gives the same mask on CPU and GPU and a run can move between
// devices without changing which units are dropped. (A device RNG such as Philox would be faster
// but would draw a different mask from the CPU path.) The mask upload is n floats per call.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

__global__ void dropout_kernel(float* y, const float* x, const float* mask, int64_t n, bool accumulate) {
  LR_GRID_STRIDE(i, n) y[i] = accumulate ? y[i] + x[i] * mask[i] : x[i] * mask[i];
}

void launch(float* y, const float* x, const float* mask, int64_t n, bool accumulate) {
  if (n == 0) return;
  dropout_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(y, x, mask, n, accumulate);
  LR_CUDA_LAUNCHED();
}

}  // namespace

void dropout_forward(float* y, const float* x, const float* mask, int64_t n) { launch(y, x, mask, n, false); }
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) { launch(dx, dy, mask, n, true); }

}  // namespace lowrank::cuda
