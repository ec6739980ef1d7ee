// Thin GEMMs: C (M,N) = alpha·op(A)·op(B) + beta·C with one of M, N, K at most kThinDim, computed on the
// calling thread by plain vectorised loops instead of the BLAS. These are LoRA's rank-r products
// (Hu et al., 2021, eq. 3: h = W0 x + B A x), per adapted matrix and step, for r = 4 and N·T tokens:
//   forward   x·Aᵀ (N·T, r, C)   h·Bᵀ (N·T, C, r)
//   backward  dy·B (N·T, r, C)   dyᵀ·h = dB (C, r, N·T)   dhᵀ·x = dA (r, C, N·T)   dh·A (N·T, C, r)
// Each is a few MFLOP that only has to read its big operand once. The BLAS packs panels for square-ish
// kernels and, at 2 threads, gives half the rows to a second OpenMP thread: where the other core is
// busy that thread waits a scheduler quantum, and a call of 0.1–0.3 ms takes 8–12 ms (measured by
// bench_ops, docs/benchmarks.md "GEMM backends"); 144 such calls make a GPT-2 LoRA step.
// Two loop forms, each summing an element's K products in increasing k (so no thread-count dependence):
//   dot form   c[m,n] = alpha·⟨op(A)[m,:], op(B)[:,n]⟩ (+ beta·c)    when N is thin and A is not transposed
//   axpy form  c[m,:] = beta·c[m,:] + Σ_k alpha·op(A)[m,k] · op(B)[k,:]  when K or M is thin
// and the remaining cases through the transposed problem Cᵀ = op(B)ᵀ·op(A)ᵀ, which is one of the two.
#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "tensor/gemm_thin.h"

namespace lowrank::tensor {

namespace {

constexpr int64_t kThinDim = 16;
constexpr int64_t kThinWork = int64_t{1} << 24;  // M·N·K; a larger thin product keeps the BLAS's threads

using ConstVec = Eigen::Map<const Eigen::VectorXf>;

// op(X)[i, j] of a row-major X (leading dimension ld), transposed or not.
inline float at(const float* X, int64_t ld, bool t, int64_t i, int64_t j) { return t ? X[j * ld + i] : X[i * ld + j]; }

// op(X) (R, S) copied into R contiguous rows of S floats.
std::vector<float> rows_of(const float* X, int64_t ld, bool t, int64_t R, int64_t S) {
  std::vector<float> out(static_cast<size_t>(R * S));
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < S; ++j) out[static_cast<size_t>(i * S + j)] = at(X, ld, t, i, j);
  return out;
}

// Dot form, op(A) = A (rows contiguous); op(B)ᵀ as N rows of K floats (B itself when tb).
void dot_form(bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
              int64_t ldb, float beta, float* C, int64_t ldc) {
  std::vector<float> packed;
  if (!tb) packed = rows_of(B, ldb, true, N, K);  // op(B)ᵀ (N, K): N ≤ kThinDim rows
  const float* Bt = tb ? B : packed.data();
  const int64_t ldbt = tb ? ldb : K;
  for (int64_t m = 0; m < M; ++m) {
    const ConstVec a(A + m * lda, K);
    float* c = C + m * ldc;
    for (int64_t n = 0; n < N; ++n) {
      const float s = alpha * a.dot(ConstVec(Bt + n * ldbt, K));
      c[n] = beta == 0.f ? s : s + beta * c[n];
    }
  }
}

// c[0, N) = beta·c (exactly 0 when beta is 0, dropping NaNs in C as the BLAS does).
inline void scale_row(float* c, int64_t N, float beta) {
  if (beta == 0.f)
    std::fill(c, c + N, 0.f);
  else if (beta != 1.f)
    for (int64_t n = 0; n < N; ++n) c[n] *= beta;
}

inline void axpy(float* __restrict c, const float* __restrict b, float s, int64_t N) {
  for (int64_t n = 0; n < N; ++n) c[n] += s * b[n];
}

// Axpy form; op(B) as K rows of N floats (B itself unless tb). With M thin, k runs outside so that
// op(B) is read once; with K thin, m outside so that each row of C is finished at once. Either way
// each element gets beta·c and then its K terms in increasing k: the same sums.
void axpy_form(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  std::vector<float> packed;
  if (tb) packed = rows_of(B, ldb, true, K, N);  // op(B) (K, N): only with K ≤ kThinDim
  const float* Bk = tb ? packed.data() : B;
  const int64_t ldbk = tb ? N : ldb;
  if (M <= kThinDim) {
    for (int64_t m = 0; m < M; ++m) scale_row(C + m * ldc, N, beta);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t m = 0; m < M; ++m) axpy(C + m * ldc, Bk + k * ldbk, alpha * at(A, lda, ta, m, k), N);
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    scale_row(C + m * ldc, N, beta);
    for (int64_t k = 0; k < K; ++k) axpy(C + m * ldc, Bk + k * ldbk, alpha * at(A, lda, ta, m, k), N);
  }
}

// The cases with op(A) not transposed and N thin, or op(B) rows contiguous and K or M thin.
bool direct(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
            int64_t ldb, float beta, float* C, int64_t ldc) {
  if (N <= kThinDim && !ta) {
    dot_form(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return true;
  }
  if (K <= kThinDim || (M <= kThinDim && !tb)) {
    axpy_form(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return true;
  }
  return false;
}

}  // namespace

bool gemm_thin(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (std::min({M, N, K}) > kThinDim || M * N * K > kThinWork) return false;
  if (direct(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return true;
  // Left: N thin with ta (dB = dyᵀ·h), or M thin with tb. Cᵀ (N,M) = op(B)ᵀ·op(A)ᵀ, where op(B)ᵀ is B
  // read with the other transpose flag and op(A)ᵀ is A with the other one: thin M (resp. N) and a
  // row-contiguous second operand, a direct case.
  std::vector<float> Ct(static_cast<size_t>(N * M));
  if (!direct(!tb, !ta, N, M, K, alpha, B, ldb, A, lda, 0.f, Ct.data(), M)) return false;  // cannot happen
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    for (int64_t n = 0; n < N; ++n) {
      const float s = Ct[static_cast<size_t>(n * M + m)];
      c[n] = beta == 0.f ? s : s + beta * c[n];
    }
  }
  return true;
}

}  // namespace lowrank::tensor
