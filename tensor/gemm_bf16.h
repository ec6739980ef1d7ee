#pragma once
// The bf16 GEMM of the bf16 precision policy (tensor/precision.h, docs/precision.md):
//   C (M,N) = op(A) (M,K) · op(B) (K,N) + beta·C,  A and B bfloat16, products summed in fp32, C fp32
// row-major with BLAS conventions as tensor::gemm. It is oneDNN's matmul primitive (brgemm kernels on
// AMX tiles or AVX512-BF16 dot products), one primitive per call shape, created once and kept. It runs
// only where it is fast: a build whose GEMM backend is oneDNN (-DLOWRANK_GEMM=onednn, the default on
// AVX-512) on a CPU where oneDNN reports an ISA with bf16 instructions (avx512_core_bf16 or
// avx512_core_amx) at run time. Elsewhere bf16_gemm_available() is false and the callers
// (autograd/frozen_gemm.h) run the fp32 GEMM instead: oneDNN's bf16 matmul would emulate bf16 there,
// slower than fp32, and OpenBLAS, BLIS and Eigen builds have no bf16 GEMM to call.
#include <cstdint>
#include <string>

namespace lowrank::tensor {

bool bf16_gemm_available();
// Which path a bf16 GEMM takes in this process, and why: "oneDNN 2.6.3 matmul, ISA avx512_core_amx",
// or "fp32 fallback: ..." naming what is missing (for logs, bench_step --json, results rows).
std::string bf16_gemm_info();
// Tests only: false makes bf16_gemm_available() false, as on a CPU without bf16 (the fallback path).
void set_bf16_gemm_enabled(bool on);

// The product above; needs bf16_gemm_available(), M, N, K >= 1, beta 0 or 1. Thread-safe.
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);
// bf16 GEMMs so far in this process (tests, bench_step): gemm_bf16's calls, and the CUDA bf16 GEMMs
// (autograd/weight_gemm.cpp), which call count_bf16_gemm() since tensor/ knows nothing of cuda/.
int64_t bf16_gemm_calls();
void count_bf16_gemm();
int64_t bf16_gemm_calls();  // gemm_bf16 calls so far in this process (tests, bench_step)
int64_t bf16_gemm_primitives_made();  // oneDNN primitives gemm_bf16 has created so far (tests)

}  // namespace lowrank::tensor
