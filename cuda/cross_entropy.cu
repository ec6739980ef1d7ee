// cross_entropy: fused log_softmax + NLL (CPU reference: autograd/cross_entropy.cpp).
// Logits x (N, V), targets t (N), row weights w (N) (mask_i, 0 for ignore_index; from the host):
//   lse_i = m_i + log Σ_v exp(x_iv - m_i),  m_i = max_v x_iv
//   ℓ_i = lse_i - (1-eps)·x_it - (eps/V)·Σ_v x_iv      (label smoothing eps; eps = 0: plain NLL)
//   row_loss_i = w_i·ℓ_i;  the caller reduces: loss = Σ_i row_loss_i / W
//   dx_iv += dloss·(w_i/W)·(p_iv - q_iv),  p = exp(x - lse),  q = (1-eps)·onehot(t) + eps/V
// One block per row. Only lse (N) is stored between passes; p is recomputed in backward, never
// materialised as an (N, V) matrix (V = 50257 for GPT-2). Rows with weight 0 are skipped (their
// target may be ignore_index, which must not be read). Row sums are in double, like the CPU.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

constexpr int kThreads = 256;  // a block per row; V is large (thousands), so use a full block
constexpr int64_t kMaxRowBlocks = 65535;

__global__ void cross_entropy_forward_kernel(float* row_loss, float* lse, const float* x, const int32_t* targets,
                                             const float* w, int64_t N, int64_t V, float eps) {
  __shared__ float smem[32];
  __shared__ double smem_d[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    if (w[n] == 0.f) {  // uniform over the block: no thread reaches the barriers below
      if (threadIdx.x == 0) lse[n] = row_loss[n] = 0.f;
      continue;
    }
    const float* xr = x + n * V;
    float m = -INFINITY;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, xr[v]);
    m = detail::block_max(m, smem);
    double s = 0.0, sum_x = 0.0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      s += expf(xr[v] - m);
      sum_x += xr[v];
    }
    s = detail::block_sum_d(s, smem_d);
    sum_x = detail::block_sum_d(sum_x, smem_d);
    if (threadIdx.x == 0) {
      const double l = m + log(s);
      lse[n] = static_cast<float>(l);
      const double loss = l - (1.0 - eps) * xr[targets[n]] - (eps / static_cast<double>(V)) * sum_x;
      row_loss[n] = static_cast<float>(w[n] * loss);
    }
  }
}

__global__ void cross_entropy_backward_kernel(float* dx, const float* x, const float* lse, const int32_t* targets,
                                              const float* row_scale, const float* dloss, int64_t N, int64_t V,
                                              float eps) {
  const float q_off = eps / static_cast<float>(V);  // q_iv off the target
  const float dl = dloss[0];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float c = dl * row_scale[n];
    if (c == 0.f) continue;
    const float* xr = x + n * V;
    float* dxr = dx + n * V;
    const float l = lse[n];
    const int32_t t = targets[n];
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      float d = dxr[v] + c * (expf(xr[v] - l) - q_off);
      if (v == t) d -= c * (1.f - eps);  // the same two steps as the CPU, in the same order
      dxr[v] = d;
    }
  }
}

unsigned row_blocks(int64_t N) { return static_cast<unsigned>(std::min(N, kMaxRowBlocks)); }

}  // namespace

void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float label_smoothing) {
  if (N == 0 || V == 0) return;
  cross_entropy_forward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(row_loss, lse, x, targets, w, N, V,
                                                                         label_smoothing);
  LR_CUDA_LAUNCHED();
}

void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets, const float* row_scale,
                            const float* dloss, int64_t N, int64_t V, float label_smoothing) {
  if (N == 0 || V == 0) return;
  cross_entropy_backward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(dx, x, lse, targets, row_scale, dloss, N, V,
                                                                          label_smoothing);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
