#pragma once
// Device helpers shared by the cuda/*.cu kernels (included by .cu files only, never by C++ code).
// Reductions here have a fixed shape (fixed block size, fixed tree), so a kernel that uses them
// gives the same bits on every run: no atomics anywhere in the backend.
#include <cstdint>

#include "cuda/check.h"
#include "cuda/memory.h"

// After every <<<...>>>: launch-configuration errors surface here, at the launch that caused them.
#define LR_CUDA_LAUNCHED() CUDA_CHECK(cudaGetLastError())

namespace lowrank::cuda::detail {

constexpr int kThreads = 256;         // default block size for elementwise and row kernels
constexpr int64_t kMaxBlocks = 4096;  // grid-stride loops cover the rest; keeps grids small

// Blocks for a grid-stride loop over n elements.
inline int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// 64-bit grid-stride loop: for (i = first; i < n; i += stride).
#define LR_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum (or max) over the whole block; every thread gets the result. blockDim.x must be a multiple
// of 32 and at most 1024. `smem` holds 32 floats; the leading __syncthreads() makes it safe to
// call twice in a row with the same buffer.
__device__ __forceinline__ float block_sum(float v, float* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : -INFINITY;
  return warp_max(v);
}

// Double versions, for sums the CPU reference also forms in double (long rows, loss totals).
__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ double block_sum_d(double v, double* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum_d(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : 0.0;
  return warp_sum_d(v);
}

// Column sums Σ_r term(r, col) over a row-major (rows, cols) matrix, deterministically: a block
// owns 32 adjacent columns (threadIdx.x, so each row read is one coalesced 128-byte line); its
// kColLanes row-lanes (threadIdx.y) stride over the rows in order, accumulating in double like
// the CPU reference, then lane 0 adds the lane partials in lane order. Launch with
// dim3(32, kColLanes) threads and ceil(cols / 32) blocks. The result is valid in threadIdx.y == 0.
// (Parallelism is cols/32 blocks; a split-rows second pass would help very tall matrices.)
constexpr int kColLanes = 16;

template <typename Term>
__device__ __forceinline__ double column_sum(Term term, int64_t rows, int64_t col, bool valid) {
  __shared__ double part[kColLanes][32];
  __syncthreads();  // a previous call with the same Term may still be reading `part`
  double acc = 0.0;
  if (valid)
    for (int64_t r = threadIdx.y; r < rows; r += kColLanes) acc += static_cast<double>(term(r, col));
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.y == 0)
    for (int l = 0; l < kColLanes; ++l) total += part[l][threadIdx.x];
  return total;
}

}  // namespace lowrank::cuda::detail
