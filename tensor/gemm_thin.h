#pragma once
// GEMMs with a dimension of at most 16 (LoRA's rank-r products) on the calling thread, without the BLAS
// (tensor/gemm_thin.cpp says why). tensor::gemm tries it first, for every backend.
#include <cstdint>

namespace lowrank::tensor {

// C (M,N) = alpha·op(A)·op(B) + beta·C as tensor::gemm (row-major, BLAS conventions, M, N, K ≥ 1);
// false, touching nothing, when no dimension is thin or the product is too large to stay on one thread.
bool gemm_thin(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lowrank::tensor
