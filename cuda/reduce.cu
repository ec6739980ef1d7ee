// sum / mean over all elements (CPU reference: autograd/reduce.cpp):
//   y = factor · Σ x   (factor 1 for sum, 1/n for mean);   dx += factor · dy
// Forward in two passes, without atomics so the result is reproducible:
//   1. `blocks` blocks (a function of n only) each sum a grid-stride share in double and write
//      one partial;  2. one block sums the partials in a fixed tree and scales.
// Double accumulation matches the CPU's double chunk sums to float rounding.
// sumsq (Σ x², for clip_grad_norm) is the same two passes with each term squared in double, as the
// CPU's clip_grad_norm squares in double.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

constexpr int kSumThreads = 256;
constexpr int kMaxPartials = 1024;  // stage-2 block size bounds the number of stage-1 blocks

template <bool Square>
__global__ void partial_sums_kernel(double* part, const float* x, int64_t n) {
  __shared__ double smem[32];
  double acc = 0.0;
  LR_GRID_STRIDE(i, n) {
    const double v = x[i];
    acc += Square ? v * v : v;
  }
  acc = detail::block_sum_d(acc, smem);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

// One block of kMaxPartials threads: out[0] = factor · Σ part
__global__ void final_sum_kernel(float* out, const double* part, int count, float factor) {
  __shared__ double smem[32];
  double v = threadIdx.x < count ? part[threadIdx.x] : 0.0;
  v = detail::block_sum_d(v, smem);
  if (threadIdx.x == 0) out[0] = static_cast<float>(v * factor);
}

__global__ void fill_grad_kernel(float* dx, const float* dy, int64_t n, float factor) {
  const float g = dy[0] * factor;  // every thread reads the device scalar: no host round trip
  LR_GRID_STRIDE(i, n) dx[i] += g;
}

template <bool Square>
void sum_launch(float* out, const float* x, int64_t n, float factor) {
  int blocks = detail::blocks_for(n, kSumThreads);
  if (blocks > kMaxPartials) blocks = kMaxPartials;
  double* part = static_cast<double*>(alloc(sizeof(double) * blocks));
  // n == 0 still launches: every partial is 0 and out becomes 0, like the CPU.
  partial_sums_kernel<Square><<<blocks, kSumThreads, 0, stream()>>>(part, x, n);
  LR_CUDA_LAUNCHED();
  final_sum_kernel<<<1, kMaxPartials, 0, stream()>>>(out, part, blocks, factor);
  LR_CUDA_LAUNCHED();
  // Safe to hand back at once: any later user of this block is ordered after us on the one stream.
  release(part, sizeof(double) * blocks);
}

}  // namespace

void sum_forward(float* out, const float* x, int64_t n, float factor) { sum_launch<false>(out, x, n, factor); }

void sumsq_forward(float* out, const float* x, int64_t n) { sum_launch<true>(out, x, n, 1.f); }

void sum_backward(float* dx, const float* dy, int64_t n, float factor) {
  if (n == 0) return;
  fill_grad_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(dx, dy, n, factor);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
