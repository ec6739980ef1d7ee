#pragma once
// The GEMMs whose right operand is a weight: y = x·Wᵀ and dx = dy·W of linear, C = A·op(B) and
// dA = dC·op(B)ᵀ of a matmul by one 2-D B (autograd/matmul.cpp), the logits h·wᵀ and G_h = dz·w of the
// fused head (autograd/linear_cross_entropy.cpp). Under the bf16 precision policy (tensor/precision.h,
// docs/precision.md) such a product runs in bf16 when the weight is frozen; a trainable weight (and its
// gradient dW, never computed for a frozen one) stays fp32. The same policy on either device: oneDNN's
// bf16 matmul on the CPU, cuBLAS's GemmEx on CUDA.
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace lowrank::autograd {

// True when C = A·op(w) of this shape runs in bf16 now: the policy is bf16, w needs no gradient, every
// dimension exceeds 16 (thinner products, LoRA's rank-r ones and decoding's few rows, stay on
// tensor/gemm_thin.cpp's fp32 loops on the CPU, as cheap as any bf16 call, and the same rule holds on
// CUDA so that both devices round the same products) and the bf16 GEMM runs on w's device: always on
// CUDA, on the CPU where tensor/gemm_bf16.h says so (otherwise the fp32 GEMM is the fallback).
bool weight_gemm_in_bf16(const Tensor& w, int64_t M, int64_t N, int64_t K);

// C (M,N) = A (M,K) · op(B) (K,N) + beta·C, beta 0 or 1, where B is the contiguous 2-D weight w (leading
// dimension ldb; stored (N,K) when tw), A and C on w's device dev. In bf16: A is rounded to bf16 per call
// (a scratch buffer: the calling thread's on the CPU, one from the caching allocator on CUDA), B is w's
// cached bf16 copy (tensor/bf16.h on the CPU, device_bf16_copy on CUDA), the sum is fp32. Otherwise
// tensor::gemm_batched in fp32 on dev.
void weight_gemm(tensor::Device dev, bool tw, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const Tensor& w, int64_t ldb, float beta, float* C, int64_t ldc);

// The bf16 copy of a contiguous CUDA tensor, the device twin of tensor::bf16_copy: made on the first call
// by a rounding kernel into a device buffer (ceil(n/2) floats holding n bf16 values), kept by w's storage
// and dropped at its next write, exactly as the CPU copy (tensor/bf16.h). The buffer is the returned
// tensor's; its data(), read as uint16_t, is w's values in order. Thread-safe.
Tensor device_bf16_copy(const Tensor& w);

// What a bf16 product on dev runs, for logs and results: tensor::bf16_gemm_info() on the CPU, cuBLAS's
// GemmEx on CUDA.
std::string bf16_gemm_info(tensor::Device dev);

}  // namespace lowrank::autograd
