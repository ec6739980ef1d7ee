// GEMM through cuBLAS with tensor::gemm's row-major conventions:
//   C (M,N) = alpha · op(A) (M,K) · op(B) (K,N) + beta · C
// cuBLAS is column-major. A row-major matrix X (R, Cc) with leading dim ld is, read column-major,
// Xᵀ (Cc, R) with the same ld. So the row-major product C = op(A)·op(B) is the column-major
// product Cᵀ = op(B)ᵀ·op(A)ᵀ, and the stored B, read column-major, already is (op(B))ᵀ when
// !transB. Hence: swap the operands, swap M and N, keep each operand's own transpose flag:
//   cublasSgemm(opB, opA, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc)
// No data moves; the leading dimensions pass through unchanged.
// Math mode: CUBLAS_DEFAULT_MATH (true fp32, results comparable with the CPU) unless set_tf32(true)
// selects CUBLAS_TF32_TENSOR_OP_MATH (inputs rounded to 10-bit mantissas, ~1e-3 relative error).
// The bf16 GEMM of the bf16 policy (gemm_bf16, last) makes the same swapped call through cublasGemmEx
// with bf16 operands and fp32 compute; the math mode does not apply to it (bf16 inputs are exact in the
// tensor cores' fp32 products either way).
#include <atomic>
#include <limits>
#include <mutex>

#include "cuda/common.cuh"
#include "cuda/kernels.h"
#include "tensor/bf16.h"
#include "tensor/error.h"

namespace lowrank::cuda {

namespace {

std::atomic<bool> g_tf32{false};

// The backend's cuBLAS handle, bound to the backend stream. Created on first use (never at static
// init, so a machine without a GPU never touches cuBLAS); never destroyed, like the stream.
cublasHandle_t handle() {
  static std::mutex mu;
  static cublasHandle_t h = nullptr;
  static bool applied_tf32 = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!h) {
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, stream()));
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  }
  const bool want = g_tf32.load();
  if (want != applied_tf32) {
    CUBLAS_CHECK(cublasSetMathMode(h, want ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    applied_tf32 = want;
  }
  return h;
}

int as_int(int64_t v, const char* what) {
  LR_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), "cuda::gemm: ", what, " = ", v,
           " does not fit cuBLAS's int arguments");
  return static_cast<int>(v);
}

// C (rows, cols) with leading dim ldc, batch entries strideC apart: C = beta · C (K == 0 case,
// where cuBLAS would reject the zero leading dims an empty A or B may carry).
__global__ void scale_matrix_kernel(float* C, int64_t rows, int64_t cols, int64_t ldc, int64_t strideC, int64_t batch,
                                    float beta) {
  const int64_t n = rows * cols * batch;
  LR_GRID_STRIDE(i, n) {
    const int64_t b = i / (rows * cols), r = (i / cols) % rows, c = i % cols;
    float* p = C + b * strideC + r * ldc + c;
    *p = beta == 0.f ? 0.f : beta * *p;  // beta == 0 overwrites, even NaN garbage (BLAS semantics)
  }
}

void scale_only(float* C, int64_t M, int64_t N, int64_t ldc, int64_t strideC, int64_t batch, float beta) {
  if (beta == 1.f) return;
  scale_matrix_kernel<<<detail::blocks_for(M * N * batch), detail::kThreads, 0, stream()>>>(C, M, N, ldc, strideC,
                                                                                            batch, beta);
  LR_CUDA_LAUNCHED();
}

cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

// One thread per element; the row-major (rows, cols) source may have padded rows (ld > cols), the
// destination is compact, as the GEMM's operand.
__global__ void to_bf16_kernel(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  LR_GRID_STRIDE(i, rows * cols) { dst[i] = tensor::round_to_bf16(src[(i / cols) * ld + i % cols]); }
}

}  // namespace

void set_tf32(bool on) { g_tf32.store(on); }
bool tf32() { return g_tf32.load(); }

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(C, M, N, ldc, 0, 1, beta);
  CUBLAS_CHECK(cublasSgemm(handle(), op(transB), op(transA), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
                           as_int(ldb, "ldb"), A, as_int(lda, "lda"), &beta, C, as_int(ldc, "ldc")));
}

void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta,
                          float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) return scale_only(C, M, N, ldc, strideC, batch, beta);
  CUBLAS_CHECK(cublasSgemmStridedBatched(handle(), op(transB), op(transA), as_int(N, "N"), as_int(M, "M"),
                                         as_int(K, "K"), &alpha, B, as_int(ldb, "ldb"), strideB, A, as_int(lda, "lda"),
                                         strideA, &beta, C, as_int(ldc, "ldc"), strideC, as_int(batch, "batch")));
}

void to_bf16_rows(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return;
  to_bf16_kernel<<<detail::blocks_for(rows * cols), detail::kThreads, 0, stream()>>>(dst, src, rows, cols, ld);
  LR_CUDA_LAUNCHED();
}

// The operand swap of gemm above; the sums are fp32 (CUBLAS_COMPUTE_32F) into an fp32 C, as oneDNN's
// bf16 matmul on the CPU (tensor/gemm_bf16.h), so both devices round only the operands.
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  LR_CHECK(M > 0 && N > 0 && K > 0 && (beta == 0.f || beta == 1.f), "cuda::gemm_bf16: (", M, "x", K, ")·(", K, "x", N,
           ") with beta ", beta, ": needs every dimension >= 1 and beta 0 or 1");
  const float alpha = 1.f;
  CUBLAS_CHECK(cublasGemmEx(handle(), op(transB), op(transA), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
                            CUDA_R_16BF, as_int(ldb, "ldb"), A, CUDA_R_16BF, as_int(lda, "lda"), &beta, C, CUDA_R_32F,
                            as_int(ldc, "ldc"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace lowrank::cuda
