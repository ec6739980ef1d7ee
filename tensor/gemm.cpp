#include "tensor/gemm.h"

#include <Eigen/Core>

namespace lowrank::tensor {

namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

// C = alpha * a * b + beta * C for Eigen expressions a, b (plain maps or their transposes).
template <typename A, typename B>
void product(const A& a, const B& b, float alpha, float beta, MutMap& c) {
  if (beta == 0.f) {
    c.noalias() = alpha * a * b;
  } else {
    if (beta != 1.f) c *= beta;
    c.noalias() += alpha * a * b;
  }
}
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  MutMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == 0.f) c.setZero(); else c *= beta;
    return;
  }
  ConstMap a(A, transA ? K : M, transA ? M : K, Eigen::OuterStride<>(lda));
  ConstMap b(B, transB ? N : K, transB ? K : N, Eigen::OuterStride<>(ldb));
  if (!transA && !transB) product(a, b, alpha, beta, c);
  if (!transA && transB) product(a, b.transpose(), alpha, beta, c);
  if (transA && !transB) product(a.transpose(), b, alpha, beta, c);
  if (transA && transB) product(a.transpose(), b.transpose(), alpha, beta, c);
}

void gemm_batched(Device dev, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C, int64_t ldc,
                  int64_t sC, int64_t batch) {
  if (dev == Device::CUDA)
    return cuda_gemm_batched(transA, transB, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
  for (int64_t i = 0; i < batch; ++i)
    gemm(transA, transB, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
}

void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double av = transA ? A[k * lda + i] : A[i * lda + k];
        double bv = transB ? B[j * ldb + k] : B[k * ldb + j];
        acc += av * bv;
      }
      float prev = beta == 0.f ? 0.f : beta * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(alpha * acc + prev);
    }
}

}  // namespace lowrank::tensor
