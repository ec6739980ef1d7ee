// Fused Adam / AdamW update (CPU reference: optim/adamw.cpp, adamw_update):
//   g' = g (AdamW) or g + wd·p (Adam with L2)
//   m = β1 m + (1-β1) g';  v = β2 v + (1-β2) g'²
//   p -= lr · ( (m / c1) / (sqrt(v / c2) + eps) + [AdamW] wd · p ),  c1 = 1-β1^t, c2 = 1-β2^t
// One pass over p, m, v, g (4 reads, 3 writes per element) instead of one kernel per term.
// The expression order is the CPU's, and sqrtf is correctly rounded, so the results match the CPU
// up to the contraction of a·b + c into fused multiply-adds by nvcc (~1 ulp per step).
// Two launchers: adamw_update for one tensor, adamw_multi_update for every trainable tensor of a step
// in one launch (a LoRA model has hundreds of small A and B matrices: one launch each would cost more
// in launch overhead than the updates themselves). Both run the same device function per element, so
// the two agree bit for bit.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

struct Hyper {
  float beta1, beta2, eps, c1, c2;
  bool decoupled;
};

__device__ __forceinline__ void adamw_element(float* p, float* m, float* v, const float* g, int64_t i, float lr,
                                              float wd, const Hyper& h) {
  const float pi = p[i];
  const float gi = h.decoupled ? g[i] : g[i] + wd * pi;
  const float mi = h.beta1 * m[i] + (1.f - h.beta1) * gi;
  const float vi = h.beta2 * v[i] + (1.f - h.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  const float update = (mi / h.c1) / (sqrtf(vi / h.c2) + h.eps);
  p[i] = pi - lr * (update + (h.decoupled ? wd * pi : 0.f));
}

__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, int64_t n, float lr, float wd, Hyper h) {
  LR_GRID_STRIDE(i, n) { adamw_element(p, m, v, g, i, lr, wd, h); }
}

// Block b updates chunk b: the entry whose chunks hold b is the last with first_chunk <= b (entries are
// in increasing first_chunk, the first at 0), found by binary search; every thread of the block finds
// the same entry, reading the same few table words (cached).
__global__ void adamw_multi_kernel(const AdamWEntry* entries, int64_t count, int64_t chunks, float lr, Hyper h) {
  for (int64_t b = blockIdx.x; b < chunks; b += gridDim.x) {
    int64_t lo = 0, hi = count - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (entries[mid].first_chunk <= b) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const AdamWEntry e = entries[lo];
    const int64_t begin = (b - e.first_chunk) * kAdamWChunk;
    const int64_t end = begin + kAdamWChunk < e.n ? begin + kAdamWChunk : e.n;
    const float lr_t = lr * e.lr_scale;  // the host's lr · lr_scale of the per-tensor path, the same float
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) adamw_element(e.p, e.m, e.v, e.g, i, lr_t, e.wd, h);
  }
}

}  // namespace

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled) {
  if (n == 0) return;
  adamw_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(p, m, v, g, n, lr, wd,
                                                                         Hyper{beta1, beta2, eps, c1, c2, decoupled});
  LR_CUDA_LAUNCHED();
}

void adamw_multi_update(const AdamWEntry* entries, int64_t count, int64_t chunks, float lr, float beta1, float beta2,
                        float eps, float c1, float c2, bool decoupled) {
  if (count == 0 || chunks == 0) return;
  const int blocks = static_cast<int>(chunks < detail::kMaxBlocks ? chunks : detail::kMaxBlocks);
  adamw_multi_kernel<<<blocks, detail::kThreads, 0, stream()>>>(entries, count, chunks, lr,
                                                                Hyper{beta1, beta2, eps, c1, c2, decoupled});
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
