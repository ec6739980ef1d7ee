// Fused Adam / AdamW update of one tensor (CPU reference: optim/adamw.cpp, adamw_update):
//   g' = g (AdamW) or g + wd·p (Adam with L2)
//   m = β1 m + (1-β1) g';  v = β2 v + (1-β2) g'²
//   p -= lr · ( (m / c1) / (sqrt(v / c2) + eps) + [AdamW] wd · p ),  c1 = 1-β1^t, c2 = 1-β2^t
// One pass over p, m, v, g (4 reads, 3 writes per element) instead of one kernel per term.
// The expression order is the CPU's, and sqrtf is correctly rounded, so the results match the CPU
// up to the contraction of a·b + c into fused multiply-adds by nvcc (~1 ulp per step).
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1,
                             float beta2, float eps, float wd, float c1, float c2, bool decoupled) {
  LR_GRID_STRIDE(i, n) {
    const float pi = p[i];
    const float gi = decoupled ? g[i] : g[i] + wd * pi;
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float update = (mi / c1) / (sqrtf(vi / c2) + eps);
    p[i] = pi - lr * (update + (decoupled ? wd * pi : 0.f));
  }
}

}  // namespace

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled) {
  if (n == 0) return;
  adamw_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(p, m, v, g, n, lr, beta1, beta2, eps, wd, c1,
                                                                         c2, decoupled);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
