// Tensor plumbing for device tensors, for the tensor library's in-place ops (Tensor::fill_, add_,
// copy_, contiguous) once they dispatch on device (see docs/cuda.md): today they are CPU-only.
//   fill:         p (n) = v
//   copy_strided: dst[i0,i1,i2,i3] = src[i0,i1,i2,i3] for any strides, shapes padded to 4 dims
//                 with leading size-1 dims (tensor::kMaxDims = 4), like the CPU's pad4()
// (add_ with alpha on contiguous tensors is scale_backward: dst += alpha · src.)
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

__global__ void fill_kernel(float* p, float v, int64_t n) {
  LR_GRID_STRIDE(i, n) p[i] = v;
}

// Strides and sizes travel by value in a struct (kernel parameters), not through device memory.
struct Geometry4 {
  int64_t n[4], ds[4], ss[4];
};

__global__ void copy_strided_kernel(float* dst, const float* src, Geometry4 g, int64_t total) {
  LR_GRID_STRIDE(i, total) {
    int64_t rest = i, doff = 0, soff = 0;
    for (int d = 3; d >= 0; --d) {  // logical row-major index -> per-dim indices
      const int64_t idx = rest % g.n[d];
      rest /= g.n[d];
      doff += idx * g.ds[d];
      soff += idx * g.ss[d];
    }
    dst[doff] = src[soff];
  }
}

}  // namespace

void fill(float* p, float v, int64_t n) {
  if (n == 0) return;
  if (v == 0.f) {  // all-zero bits: a memset is the cheapest fill
    CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream()));
    return;
  }
  fill_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(p, v, n);
  LR_CUDA_LAUNCHED();
}

void copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim) {
  LR_CHECK(ndim >= 0 && ndim <= 4, "cuda::copy_strided: ", ndim, " dims (at most 4)");
  Geometry4 g;
  int64_t total = 1;
  for (int d = 0; d < 4; ++d) {
    const int k = d - (4 - ndim);  // source dim, or < 0 for a padding dim
    g.n[d] = k >= 0 ? sizes[k] : 1;
    g.ds[d] = k >= 0 ? dst_strides[k] : 0;
    g.ss[d] = k >= 0 ? src_strides[k] : 0;
    total *= g.n[d];
  }
  if (total == 0) return;
  copy_strided_kernel<<<detail::blocks_for(total), detail::kThreads, 0, stream()>>>(dst, src, g, total);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
