#pragma once
// The GEMMs whose right operand is a weight: y = x·Wᵀ and dx = dy·W of linear, C = A·op(B) and
// dA = dC·op(B)ᵀ of a matmul by one 2-D B (autograd/matmul.cpp), the logits h·wᵀ and G_h = dz·w of the
// fused head (autograd/linear_cross_entropy.cpp). Under the bf16 precision policy (tensor/precision.h,
// docs/precision.md) such a product runs in bf16 when the weight is frozen; a trainable weight (and its
// gradient dW, never computed for a frozen one) stays fp32.
#include <cstdint>

#include "tensor/tensor.h"

namespace lowrank::autograd {

// True when C = A·op(w) of this shape runs in bf16 now: the policy is bf16, w is a CPU tensor that needs
// no gradient, every dimension exceeds 16 (thinner products, LoRA's rank-r ones and decoding's few rows,
// stay on tensor/gemm_thin.cpp's fp32 loops, as cheap as any bf16 call) and the bf16 GEMM runs on this
// machine (tensor/gemm_bf16.h; otherwise the fp32 GEMM is the fallback).
bool weight_gemm_in_bf16(const Tensor& w, int64_t M, int64_t N, int64_t K);

// C (M,N) = A (M,K) · op(B) (K,N) + beta·C, beta 0 or 1, where B is the contiguous 2-D weight w (leading
// dimension ldb; stored (N,K) when tw). In bf16: A is rounded to bf16 per call (a scratch buffer of the
// calling thread), B is w's cached bf16 copy (tensor/bf16.h), the sum is fp32. Otherwise
// tensor::gemm_batched in fp32 on dev.
void weight_gemm(tensor::Device dev, bool tw, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const Tensor& w, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lowrank::autograd
