// softmax and log_softmax over the last dim (CPU reference: autograd/softmax.cpp); x, y (N, C):
//   m = max_j x_j,  s = Σ_j exp(x_j - m),  lse = m + log s
//   softmax:      y_j = exp(x_j - m) / s;    dx_j += y_j · (dy_j - Σ_k dy_k·y_k)
//   log_softmax:  y_j = x_j - lse;           dx_j += dy_j - exp(y_j) · Σ_k dy_k
// One block per row (rows beyond the grid loop): the block reduces max and sum with warp shuffles,
// then writes the row. Rows are read twice or three times from global memory; for the row lengths
// of GPT-2 (C <= 50257) they stay in L2. Reductions are in float with a fixed tree (reproducible);
// the CPU uses a sequential double sum, so the two agree to ~1e-6 relative, not bitwise.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

constexpr int64_t kMaxRowBlocks = 65535;

// A block size for rows of length C: a multiple of 32, at most 256, no larger than needed.
int row_threads(int64_t C) { return static_cast<int>(std::min<int64_t>(256, (C + 31) / 32 * 32)); }
unsigned row_blocks(int64_t N) { return static_cast<unsigned>(std::min(N, kMaxRowBlocks)); }

__global__ void softmax_forward_kernel(float* y, const float* x, int64_t N, int64_t C, bool log) {
  __shared__ float smem[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = detail::block_max(m, smem);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += expf(xr[j] - m);
    s = detail::block_sum(s, smem);
    if (log) {
      const float lse = m + logf(s);
      for (int64_t j = threadIdx.x; j < C; j += blockDim.x) yr[j] = xr[j] - lse;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = threadIdx.x; j < C; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
    }
  }
}

__global__ void softmax_backward_kernel(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log) {
  __shared__ float smem[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* yr = y + n * C;
    const float* dyr = dy + n * C;
    float* dxr = dx + n * C;
    float dot = 0.f;  // softmax: Σ dy·y;  log_softmax: Σ dy
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) dot += log ? dyr[j] : dyr[j] * yr[j];
    dot = detail::block_sum(dot, smem);
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
      dxr[j] += log ? dyr[j] - expf(yr[j]) * dot : yr[j] * (dyr[j] - dot);
  }
}

}  // namespace

void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log) {
  if (N == 0 || C == 0) return;
  softmax_forward_kernel<<<row_blocks(N), row_threads(C), 0, stream()>>>(y, x, N, C, log);
  LR_CUDA_LAUNCHED();
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log) {
  if (N == 0 || C == 0) return;
  softmax_backward_kernel<<<row_blocks(N), row_threads(C), 0, stream()>>>(dx, dy, y, N, C, log);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
