// weight_norm: the norm of each row of w (N, C) (CPU reference: autograd/weight_norm.cpp):
//   n_j = √(Σ_i w_ji²),   dw_ji += dn_j · w_ji / n_j   (0 for a zero row)
// One block per row; the forward sums in double (block_sum_d) like the CPU, so both agree to float
// rounding. The backward is elementwise over (N, C), reading n and dn per row.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

using detail::blocks_for;
using detail::kThreads;
constexpr int64_t kMaxRowBlocks = 65535;

__global__ void weight_norm_forward_kernel(float* n, const float* w, int64_t N, int64_t C) {
  __shared__ double smem[32];
  for (int64_t j = blockIdx.x; j < N; j += gridDim.x) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) acc += static_cast<double>(w[j * C + i]) * w[j * C + i];
    acc = detail::block_sum_d(acc, smem);
    if (threadIdx.x == 0) n[j] = static_cast<float>(sqrt(acc));
  }
}

__global__ void weight_norm_backward_kernel(float* dw, const float* dn, const float* w, const float* n, int64_t N,
                                            int64_t C) {
  LR_GRID_STRIDE(k, N * C) {
    const int64_t j = k / C;
    if (n[j] != 0.f) dw[k] += dn[j] / n[j] * w[k];
  }
}

}  // namespace

void weight_norm_forward(float* n, const float* w, int64_t N, int64_t C) {
  if (N == 0) return;
  weight_norm_forward_kernel<<<static_cast<unsigned>(std::min(N, kMaxRowBlocks)), kThreads, 0, stream()>>>(n, w, N, C);
  LR_CUDA_LAUNCHED();
}

void weight_norm_backward(float* dw, const float* dn, const float* w, const float* n, int64_t N, int64_t C) {
  if (N * C == 0) return;
  weight_norm_backward_kernel<<<blocks_for(N * C), kThreads, 0, stream()>>>(dw, dn, w, n, N, C);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
