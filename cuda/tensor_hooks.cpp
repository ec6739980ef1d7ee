// The tensor library's elementwise device hooks (tensor/storage.h) on the cuda:: launchers: tensor/
// declares what Tensor::fill_, copy_ and add_ need on CUDA buffers and cuda/ implements it here, so
// tensor/ never includes cuda/ (the allocation and transfer hooks beside them are in memory.cu and, for
// the host emulation, emulation/device.cpp). Built with the CUDA backend and with the emulation.
#include "cuda/kernels.h"
#include "tensor/storage.h"

namespace lowrank::tensor {

void cuda_fill_floats(float* p, float v, int64_t n) { cuda::fill(p, v, n); }

// dst += alpha · src is the backward of y = alpha · x (dx += alpha · dy): the same kernel.
void cuda_axpy_floats(float* dst, const float* src, float alpha, int64_t n) { cuda::scale_backward(dst, src, alpha, n); }

void cuda_copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim) {
  cuda::copy_strided(dst, dst_strides, src, src_strides, sizes, static_cast<int>(ndim));
}

void cuda_axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim, float alpha) {
  cuda::axpy_strided(dst, dst_strides, src, src_strides, sizes, static_cast<int>(ndim), alpha);
}

}  // namespace lowrank::tensor
