// layernorm over the last dim (CPU reference: autograd/layernorm.cpp); x (N, C), w (C), b (C):
//   μ = Σ_j x_j / C,   σ² = Σ_j (x_j - μ)² / C (biased),   rstd = 1/√(σ² + eps)
//   xhat_j = (x_j - μ)·rstd,   y_j = xhat_j·w_j + b_j
//   dx_j += rstd·(dxhat_j - mean(dxhat) - xhat_j·mean(dxhat·xhat)),  dxhat = dy·w
//   dw_j += Σ_rows dy_j·xhat_j,   db_j += Σ_rows dy_j
// Forward and dx: one block per row, block reductions with warp shuffles; the variance takes a
// second pass over the row (Σ(x - μ)², which does not cancel like Σx² - Cμ²), as on the CPU.
// dw/db: deterministic column sums (detail::column_sum), in double like the CPU.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

constexpr int64_t kMaxRowBlocks = 65535;

int row_threads(int64_t C) { return static_cast<int>(std::min<int64_t>(256, (C + 31) / 32 * 32)); }
unsigned row_blocks(int64_t N) { return static_cast<unsigned>(std::min(N, kMaxRowBlocks)); }

__global__ void layernorm_forward_kernel(float* y, float* mean, float* rstd, const float* x, const float* w,
                                         const float* b, int64_t N, int64_t C, float eps) {
  __shared__ float smem[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += xr[j];
    const float m = detail::block_sum(s, smem) / C;
    float v = 0.f;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) v += (xr[j] - m) * (xr[j] - m);
    const float r = 1.f / sqrtf(detail::block_sum(v, smem) / C + eps);
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) yr[j] = (xr[j] - m) * r * w[j] + (b ? b[j] : 0.f);
    if (threadIdx.x == 0) {
      mean[n] = m;
      rstd[n] = r;
    }
  }
}

__global__ void layernorm_backward_dx_kernel(float* dx, const float* dy, const float* x, const float* w,
                                             const float* mean, const float* rstd, int64_t N, int64_t C) {
  __shared__ float smem[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float* xr = x + n * C;
    const float* dyr = dy + n * C;
    float* dxr = dx + n * C;
    const float m = mean[n], r = rstd[n];
    float s1 = 0.f, s2 = 0.f;  // Σ dxhat, Σ dxhat·xhat
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
      const float dxhat = dyr[j] * w[j];
      s1 += dxhat;
      s2 += dxhat * ((xr[j] - m) * r);
    }
    const float m1 = detail::block_sum(s1, smem) / C;
    const float m2 = detail::block_sum(s2, smem) / C;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
      const float xhat = (xr[j] - m) * r;
      dxr[j] += r * (dyr[j] * w[j] - m1 - xhat * m2);
    }
  }
}

// Block = 32 columns × kColLanes row-lanes; see detail::column_sum.
__global__ void layernorm_backward_params_kernel(float* dw, float* db, const float* dy, const float* x,
                                                 const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const bool valid = col < C;
  if (dw) {
    const double sw = detail::column_sum(
        [=](int64_t r, int64_t c) { return dy[r * C + c] * ((x[r * C + c] - mean[r]) * rstd[r]); }, N, col, valid);
    if (threadIdx.y == 0 && valid) dw[col] += static_cast<float>(sw);
  }
  if (db) {
    const double sb = detail::column_sum([=](int64_t r, int64_t c) { return dy[r * C + c]; }, N, col, valid);
    if (threadIdx.y == 0 && valid) db[col] += static_cast<float>(sb);
  }
}

}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t N,
                       int64_t C, float eps) {
  if (N == 0 || C == 0) return;
  layernorm_forward_kernel<<<row_blocks(N), row_threads(C), 0, stream()>>>(y, mean, rstd, x, w, b, N, C, eps);
  LR_CUDA_LAUNCHED();
}

void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  layernorm_backward_dx_kernel<<<row_blocks(N), row_threads(C), 0, stream()>>>(dx, dy, x, w, mean, rstd, N, C);
  LR_CUDA_LAUNCHED();
}

void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C) {
  if ((!dw && !db) || C == 0) return;
  const dim3 threads(32, detail::kColLanes);
  const unsigned blocks = static_cast<unsigned>((C + 31) / 32);
  layernorm_backward_params_kernel<<<blocks, threads, 0, stream()>>>(dw, db, dy, x, mean, rstd, N, C);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
