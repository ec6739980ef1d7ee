// Tensor plumbing for device tensors, behind Tensor::fill_, copy_, add_ and contiguous (tensor.cpp):
//   fill:         p (n) = v
//   copy_strided: dst[i0,i1,i2,i3] = src[i0,i1,i2,i3]            for any strides
//   axpy_strided: dst[i0,i1,i2,i3] += alpha · src[i0,i1,i2,i3]   for any strides
// Shapes are padded to 4 dims with leading size-1 dims (tensor::kMaxDims = 4), like the CPU's pad4().
// A source stride of 0 repeats one element (Tensor::fill_ of a strided view copies a device scalar).
// (add_ on two contiguous tensors is scale_backward: dst += alpha · src, without the index math.)
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

__global__ void fill_kernel(float* p, float v, int64_t n) { LR_GRID_STRIDE(i, n) p[i] = v; }

// Strides and sizes travel by value in a struct (kernel parameters), not through device memory.
struct Geometry4 {
  int64_t n[4], ds[4], ss[4];
};

// Pads (sizes, strides) of ndim <= 4 dims to 4; returns the element count.
int64_t make_geometry(Geometry4& g, const int64_t* dst_strides, const int64_t* src_strides, const int64_t* sizes,
                      int ndim, const char* op) {
  LR_CHECK(ndim >= 0 && ndim <= 4, "cuda::", op, ": ", ndim, " dims (at most 4)");
  int64_t total = 1;
  for (int d = 0; d < 4; ++d) {
    const int k = d - (4 - ndim);  // source dim, or < 0 for a padding dim
    g.n[d] = k >= 0 ? sizes[k] : 1;
    g.ds[d] = k >= 0 ? dst_strides[k] : 0;
    g.ss[d] = k >= 0 ? src_strides[k] : 0;
    total *= g.n[d];
  }
  return total;
}

// Logical row-major index i -> element offsets in dst and src.
__device__ __forceinline__ void offsets(const Geometry4& g, int64_t i, int64_t& doff, int64_t& soff) {
  doff = 0;
  soff = 0;
  for (int d = 3; d >= 0; --d) {
    const int64_t idx = i % g.n[d];
    i /= g.n[d];
    doff += idx * g.ds[d];
    soff += idx * g.ss[d];
  }
}

__global__ void copy_strided_kernel(float* dst, const float* src, Geometry4 g, int64_t total) {
  LR_GRID_STRIDE(i, total) {
    int64_t doff, soff;
    offsets(g, i, doff, soff);
    dst[doff] = src[soff];
  }
}

// Each dst element is owned by one thread (dst views never overlap themselves), so no atomics.
__global__ void axpy_strided_kernel(float* dst, const float* src, float alpha, Geometry4 g, int64_t total) {
  LR_GRID_STRIDE(i, total) {
    int64_t doff, soff;
    offsets(g, i, doff, soff);
    dst[doff] += alpha * src[soff];
  }
}

}  // namespace

void fill(float* p, float v, int64_t n) {
  if (n == 0) return;
  if (v == 0.f && !std::signbit(v)) {  // all-zero bits: a memset is the cheapest fill (-0.f is not)
    CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream()));
    return;
  }
  fill_kernel<<<detail::blocks_for(n), detail::kThreads, 0, stream()>>>(p, v, n);
  LR_CUDA_LAUNCHED();
}

void copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim) {
  Geometry4 g;
  const int64_t total = make_geometry(g, dst_strides, src_strides, sizes, ndim, "copy_strided");
  if (total == 0) return;
  copy_strided_kernel<<<detail::blocks_for(total), detail::kThreads, 0, stream()>>>(dst, src, g, total);
  LR_CUDA_LAUNCHED();
}

void axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim, float alpha) {
  Geometry4 g;
  const int64_t total = make_geometry(g, dst_strides, src_strides, sizes, ndim, "axpy_strided");
  if (total == 0) return;
  axpy_strided_kernel<<<detail::blocks_for(total), detail::kThreads, 0, stream()>>>(dst, src, alpha, g, total);
  LR_CUDA_LAUNCHED();
}

}  // namespace lowrank::cuda
