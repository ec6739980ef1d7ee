// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/gemm.cu and
// cuda/tensor_ops.cu: gemm, gemm_strided_batched, the TF32 switch, the bf16 rounding and GEMM, fill,
// copy_strided and axpy_strided. The GEMMs call tensor::gemm (the CPU path's GEMM, same row-major conventions as
// cuda::gemm) on the untagged pointers, after the argument checks cuBLAS itself makes (leading
// dims, int range) and two it does not, whose violation is undefined on a GPU: the output overlaps
// an input, or several entries of a batched GEMM write one output (stride 0).
// TF32 is only recorded: the emulated math is always full fp32. The bf16 GEMM widens its bf16
// operands to fp32 (exact) and runs tensor::gemm: every product of two bf16 values is exact in fp32, so
// this is what cuBLAS's and oneDNN's bf16 GEMMs compute, up to the order of the fp32 sums, on any CPU
// (oneDNN's bf16 matmul runs only where the CPU has bf16 instructions).
#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include "cuda/emulation/tagged.h"
#include "cuda/kernels.h"
#include "tensor/bf16.h"
#include "tensor/gemm.h"

namespace lowrank::cuda {

namespace {

std::atomic<bool> g_tf32{false};

// The checks cublasSgemm makes on the swapped column-major call (gemm.cu): each stored operand's
// leading dim covers its row-major row, and every size fits an int.
void check_cublas_args(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                       int64_t batch) {
  for (int64_t v : {M, N, K, lda, ldb, ldc, batch})
    LR_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), "cuda::gemm: argument ", v,
             " does not fit cuBLAS's int arguments");
  LR_CHECK(lda >= std::max<int64_t>(1, ta ? M : K) && ldb >= std::max<int64_t>(1, tb ? K : N) &&
               ldc >= std::max<int64_t>(1, N),
           "cuda::gemm: cuBLAS rejects the leading dims (CUBLAS_STATUS_INVALID_VALUE): transA ", ta, " transB ", tb,
           " M ", M, " N ", N, " K ", K, " lda ", lda, " ldb ", ldb, " ldc ", ldc);
}

bool overlap(const float* a, int64_t na, const float* b, int64_t nb) {
  return na > 0 && nb > 0 && a < b + nb && b < a + na;
}

// C_i = beta · C_i for every entry: the K == 0 case, which gemm.cu handles without cuBLAS.
void scale_only(float* C, int64_t M, int64_t N, int64_t ldc, int64_t strideC, int64_t batch, float beta) {
  if (beta == 1.f) return;
  float* c = emu::arg(C, emu::batch_extent(batch, strideC, M, N, ldc), "gemm C");
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < M; ++r)
      for (int64_t j = 0; j < N; ++j) {
        float& x = c[b * strideC + r * ldc + j];
        x = beta == 0.f ? 0.f : beta * x;  // beta == 0 overwrites, even NaN garbage (BLAS semantics)
      }
}

}  // namespace

void set_tf32(bool on) { g_tf32.store(on); }
bool tf32() { return g_tf32.load(); }

void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta,
                          float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) return scale_only(C, M, N, ldc, strideC, batch, beta);
  check_cublas_args(transA, transB, M, N, K, lda, ldb, ldc, batch);
  LR_CHECK(batch == 1 || strideC != 0, "cuda::gemm_strided_batched: ", batch,
           " entries write one output (strideC = 0): they race on a GPU");
  const int64_t nA = emu::batch_extent(batch, strideA, transA ? K : M, transA ? M : K, lda);
  const int64_t nB = emu::batch_extent(batch, strideB, transB ? N : K, transB ? K : N, ldb);
  const int64_t nC = emu::batch_extent(batch, strideC, M, N, ldc);
  const float* a = emu::arg(A, nA, "gemm A");
  const float* b = emu::arg(B, nB, "gemm B");
  float* c = emu::arg(C, nC, "gemm C");
  LR_CHECK(!overlap(c, nC, a, nA) && !overlap(c, nC, b, nB), "cuda::gemm: the output C overlaps an input");
  for (int64_t i = 0; i < batch; ++i)
    tensor::gemm(transA, transB, M, N, K, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC,
                 ldc);
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_strided_batched(transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

// ---- bf16 ----

void to_bf16_rows(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return;
  LR_CHECK(ld >= cols, "cuda::to_bf16_rows: leading dim ", ld, " below the row length ", cols);
  tensor::to_bf16_rows(emu::arg(dst, rows * cols, "to_bf16 dst"),
                       emu::arg(src, emu::matrix_extent(rows, cols, ld), "to_bf16 src"), rows, cols, ld);
}

void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  LR_CHECK(M > 0 && N > 0 && K > 0 && (beta == 0.f || beta == 1.f), "cuda::gemm_bf16: (", M, "x", K, ")·(", K, "x", N,
           ") with beta ", beta, ": needs every dimension >= 1 and beta 0 or 1");
  check_cublas_args(transA, transB, M, N, K, lda, ldb, ldc, 1);
  const int64_t nA = emu::matrix_extent(transA ? K : M, transA ? M : K, lda);
  const int64_t nB = emu::matrix_extent(transB ? N : K, transB ? K : N, ldb);
  std::vector<float> a(static_cast<size_t>(nA)), b(static_cast<size_t>(nB));
  tensor::from_bf16(a.data(), emu::arg(A, nA, "gemm_bf16 A"), nA);
  tensor::from_bf16(b.data(), emu::arg(B, nB, "gemm_bf16 B"), nB);
  float* c = emu::arg(C, emu::matrix_extent(M, N, ldc), "gemm_bf16 C");
  tensor::gemm(transA, transB, M, N, K, 1.f, a.data(), lda, b.data(), ldb, beta, c, ldc);
}

// ---- tensor plumbing ----

void fill(float* p, float v, int64_t n) {
  float* h = emu::arg(p, n, "fill p");
  std::fill(h, h + std::max<int64_t>(n, 0), v);
}

namespace {

// Sizes and strides padded to 4 dims with leading size-1 dims, like tensor_ops.cu's Geometry4.
struct Geometry4 {
  int64_t n[4], ds[4], ss[4];
  int64_t total() const { return n[0] * n[1] * n[2] * n[3]; }
  // Elements from the first to the last one touched through strides s (0 when nothing is).
  int64_t extent(const int64_t* s) const {
    if (total() == 0) return 0;
    int64_t e = 1;
    for (int d = 0; d < 4; ++d) e += (n[d] - 1) * s[d];
    return e;
  }
};

Geometry4 geometry(const int64_t* dst_strides, const int64_t* src_strides, const int64_t* sizes, int ndim,
                   const char* op) {
  LR_CHECK(ndim >= 0 && ndim <= 4, "cuda::", op, ": ", ndim, " dims (at most 4)");
  Geometry4 g;
  for (int d = 0; d < 4; ++d) {
    const int k = d - (4 - ndim);  // source dim, or < 0 for a padding dim
    g.n[d] = k >= 0 ? sizes[k] : 1;
    g.ds[d] = k >= 0 ? dst_strides[k] : 0;
    g.ss[d] = k >= 0 ? src_strides[k] : 0;
    LR_CHECK(g.n[d] >= 0 && g.ds[d] >= 0 && g.ss[d] >= 0, "cuda::", op, ": negative size or stride");
  }
  return g;
}

// f(dst element, src element) over every logical element, in row-major order.
template <typename F>
void walk(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides, const int64_t* sizes,
          int ndim, const char* op, F f) {
  const Geometry4 g = geometry(dst_strides, src_strides, sizes, ndim, op);
  float* d = emu::arg(dst, g.extent(g.ds), op);
  const float* s = emu::arg(src, g.extent(g.ss), op);
  for (int64_t i0 = 0; i0 < g.n[0]; ++i0)
    for (int64_t i1 = 0; i1 < g.n[1]; ++i1)
      for (int64_t i2 = 0; i2 < g.n[2]; ++i2)
        for (int64_t i3 = 0; i3 < g.n[3]; ++i3)
          f(d[i0 * g.ds[0] + i1 * g.ds[1] + i2 * g.ds[2] + i3 * g.ds[3]],
            s[i0 * g.ss[0] + i1 * g.ss[1] + i2 * g.ss[2] + i3 * g.ss[3]]);
}

}  // namespace

void copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim) {
  walk(dst, dst_strides, src, src_strides, sizes, ndim, "copy_strided", [](float& d, float s) { d = s; });
}

void axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim, float alpha) {
  walk(dst, dst_strides, src, src_strides, sizes, ndim, "axpy_strided", [alpha](float& d, float s) { d += alpha * s; });
}

}  // namespace lowrank::cuda
