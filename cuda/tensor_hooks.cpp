// The tensor library's elementwise and GEMM device hooks (tensor/storage.h) on the cuda:: launchers:
// tensor/ declares what Tensor::fill_, copy_, add_ and tensor::gemm_batched need on CUDA buffers and
// cuda/ implements it here, so tensor/ never includes cuda/ (the allocation and transfer hooks beside
// them are in memory.cu and, for the host emulation, emulation/device.cpp). Built with the CUDA backend
// and with the emulation.
#include "cuda/kernels.h"
#include "tensor/storage.h"

namespace lowrank::tensor {

void cuda_fill_floats(float* p, float v, int64_t n) { cuda::fill(p, v, n); }

// dst += alpha · src is the backward of y = alpha · x (dx += alpha · dy): the same kernel.
void cuda_axpy_floats(float* dst, const float* src, float alpha, int64_t n) {
  cuda::scale_backward(dst, src, alpha, n);
}

void cuda_copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim) {
  cuda::copy_strided(dst, dst_strides, src, src_strides, sizes, static_cast<int>(ndim));
}

void cuda_axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim, float alpha) {
  cuda::axpy_strided(dst, dst_strides, src, src_strides, sizes, static_cast<int>(ndim), alpha);
}

// cuBLAS runs the entries of a batched GEMM concurrently, so a shared output (sC == 0: the gradient of
// a weight shared by the batch) is accumulated by single GEMMs in order instead, which also keeps the
// CPU's sum order.
void cuda_gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C,
                       int64_t ldc, int64_t sC, int64_t batch) {
  if (batch == 1 || sC == 0) {
    for (int64_t i = 0; i < batch; ++i)
      cuda::gemm(transA, transB, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
    return;
  }
  cuda::gemm_strided_batched(transA, transB, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
}

}  // namespace lowrank::tensor
