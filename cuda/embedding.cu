// embedding: a row lookup (CPU reference: autograd/embedding.cpp). weight (V, C), ids (N):
//   y[n] = weight[ids[n]]
//   dweight[v] += Σ_{n : ids[n] = v} dy[n]      (scatter-add; repeated ids accumulate)
// Backward without atomics and without sorting: every cell dweight[v, c] is OWNED by one thread,
// the thread for channel c and bucket v % nbuckets. Each thread walks n = 0..N-1 in order, reads
// ids[n] (a broadcast: the 32 threads of a warp share a bucket and hold 32 adjacent channels) and
// adds dy[n, c] only when ids[n] falls in its bucket. So every sum is formed in the CPU's order:
// the result is deterministic and bitwise equal to the CPU reference. Parallelism is C × nbuckets
// threads; the price is that each thread scans all N ids (cheap, cached) to find its own.
// For LoRA the embedding is frozen, so this kernel runs only for full fine-tuning.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

constexpr int kBucketLanes = 8;              // buckets per block (threadIdx.y)
constexpr int64_t kTargetThreads = 1 << 16;  // enough threads to fill an A100/H100 with warps

__global__ void embedding_forward_kernel(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C) {
  LR_GRID_STRIDE(i, N * C) {
    const int64_t n = i / C, c = i - n * C;
    y[i] = weight[static_cast<int64_t>(ids[n]) * C + c];
  }
}

// Block: 32 channels (threadIdx.x) × kBucketLanes buckets (threadIdx.y); grid (ceil(C/32), nbuckets/lanes).
__global__ void embedding_backward_kernel(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C,
                                          int nbuckets) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int bucket = blockIdx.y * kBucketLanes + threadIdx.y;
  if (c >= C || bucket >= nbuckets) return;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t id = ids[n];
    if (id % nbuckets == bucket) dweight[static_cast<int64_t>(id) * C + c] += dy[n * C + c];
  }
}

}  // namespace

void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  embedding_forward_kernel<<<detail::blocks_for(N * C), detail::kThreads, 0, stream()>>>(y, weight, ids, N, C);
  LR_CUDA_LAUNCHED();
}

void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  const int64_t col_blocks = (C + 31) / 32;
  // Buckets: enough threads in total, a multiple of the lanes, at most 1024 (more would only add
  // id scans). The bucket count depends on C alone, and ownership makes the result independent of it.
  int64_t nb = kTargetThreads / (col_blocks * 32);
  nb = std::max<int64_t>(kBucketLanes, std::min<int64_t>(1024, nb)) / kBucketLanes * kBucketLanes;
  const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(nb / kBucketLanes));
  const dim3 threads(32, kBucketLanes);
  embedding_backward_kernel<<<grid, threads, 0, stream()>>>(dweight, dy, ids, N, C, static_cast<int>(nb));
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
