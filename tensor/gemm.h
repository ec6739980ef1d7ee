#pragma once
// The one GEMM of the CPU path. Row-major, BLAS conventions:
//   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
// op(A) = A (M,K) with leading dim lda, or Aᵀ where A is stored (K,M); likewise for B.
// Goes through Eigen, which calls OpenBLAS sgemm when built with EIGEN_USE_BLAS.
#include <cstdint>

namespace lowrank::tensor {

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Same product computed with plain loops in double: the reference the tests hold gemm() to.
void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lowrank::tensor
