#pragma once
// The one GEMM of the CPU path. Row-major, BLAS conventions:
//   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
// op(A) = A (M,K) with leading dim lda, or Aᵀ where A is stored (K,M); likewise for B.
// The library behind it is chosen at configure time, -DLOWRANK_GEMM=openblas (default) | onednn | blis |
// eigen (CMakeLists.txt, LOWRANK_GEMM; measurements in docs/benchmarks.md, "GEMM backends").
#include <cstdint>
#include <string>

#include "tensor/storage.h"

namespace lowrank::tensor {

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The backend this build calls: "openblas", "onednn", "blis" or "eigen" (for benchmark JSON).
const char* gemm_backend();
// What it runs on this machine: OpenBLAS's kernel set (and OPENBLAS_CORETYPE), oneDNN's ISA, BLIS's arch.
std::string gemm_backend_info();
// Threads for the backend's own pool, where it has one (OpenBLAS, BLIS); tensor::set_num_threads calls it.
void gemm_set_num_threads(int n);

// `batch` products C_i = alpha · op(A_i) · op(B_i) + beta · C_i with operand i at X + i·sX (a stride 0
// shares that operand), on the operands' device: gemm() per product, in order, on the CPU; cuBLAS on
// CUDA (the hook cuda_gemm_batched of tensor/storage.h). This is how the ops call a GEMM.
void gemm_batched(Device dev, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C, int64_t ldc,
                  int64_t sC, int64_t batch);

// Same product computed with plain loops in double: the reference the tests hold gemm() to.
void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lowrank::tensor
