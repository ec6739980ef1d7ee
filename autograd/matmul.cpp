// matmul and linear: every GEMM of the models goes through tensor::gemm (Eigen -> OpenBLAS) on the CPU.
// For C = op(A)·op(B) with upstream gradient dC:
//   dA = dC·op(B)ᵀ   (stored Aᵀ when trans_a: dAᵀ = op(B)·dCᵀ)
//   dB = op(A)ᵀ·dC   (stored Bᵀ when trans_b: dBᵀ = dCᵀ·op(A))
// Both are accumulated with beta = 1, so backward adds into .grad as the tape requires.
// CUDA tensors go through cuda::gemm (cuBLAS) with exactly the same arguments; the unfolded batch
// becomes one strided-batched GEMM instead of a loop.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::gemm;

namespace {

// Geometry of one (possibly batched) product: `batch` products of op(A) (M,K) by op(B) (K,N).
struct MatmulDims {
  int64_t batch = 1, M = 0, K = 0, N = 0;
  bool ta = false, tb = false, b_shared = false;  // b_shared: one 2-D b for every batch entry
  int64_t lda() const { return ta ? M : K; }
  int64_t ldb() const { return tb ? K : N; }
};

MatmulDims matmul_dims(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  LR_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: need 2-D or more, got ", a.shape(), " and ", b.shape());
  MatmulDims d;
  d.ta = ta;
  d.tb = tb;
  d.M = ta ? a.size(-1) : a.size(-2);
  d.K = ta ? a.size(-2) : a.size(-1);
  const int64_t bK = tb ? b.size(-1) : b.size(-2);
  d.N = tb ? b.size(-2) : b.size(-1);
  LR_CHECK(d.K == bK, "matmul: inner dims differ: ", a.shape(), (ta ? "ᵀ" : ""), " · ", b.shape(), (tb ? "ᵀ" : ""),
           " (", d.K, " vs ", bK, ")");
  d.batch = a.numel() / (d.M * d.K > 0 ? d.M * d.K : 1);
  if (b.ndim() == 2) {
    d.b_shared = true;
  } else {
    LR_CHECK(b.ndim() == a.ndim(), "matmul: batch dims differ: ", a.shape(), " · ", b.shape());
    for (int i = 0; i < a.ndim() - 2; ++i)
      LR_CHECK(a.size(i) == b.size(i), "matmul: batch dims differ: ", a.shape(), " · ", b.shape());
  }
  return d;
}

// C (batch, M, N) = op(A)·op(B). When b is shared and A is not transposed the batch folds into M.
void matmul_forward(float* C, const float* A, const float* B, const MatmulDims& d) {
  if (d.b_shared && !d.ta) {
    gemm(false, d.tb, d.batch * d.M, d.N, d.K, 1.f, A, d.lda(), B, d.ldb(), 0.f, C, d.N);
    return;
  }
  const int64_t sB = d.b_shared ? 0 : d.K * d.N;
  for (int64_t i = 0; i < d.batch; ++i)
    gemm(d.ta, d.tb, d.M, d.N, d.K, 1.f, A + i * d.M * d.K, d.lda(), B + i * sB, d.ldb(), 0.f, C + i * d.M * d.N, d.N);
}

// dA += dC·op(B)ᵀ and dB += op(A)ᵀ·dC (each only when its pointer is non-null).
void matmul_backward(float* dA, float* dB, const float* dC, const float* A, const float* B, const MatmulDims& d) {
  const bool fold = d.b_shared && !d.ta;
  const int64_t nb = fold ? 1 : d.batch, M = fold ? d.batch * d.M : d.M;
  const int64_t sA = M * d.K, sC = M * d.N, sB = d.b_shared ? 0 : d.K * d.N;
  for (int64_t i = 0; i < nb; ++i) {
    const float* a = A + i * sA;
    const float* b = B + i * sB;
    const float* dc = dC + i * sC;
    if (dA && !d.ta) gemm(false, !d.tb, M, d.K, d.N, 1.f, dc, d.N, b, d.ldb(), 1.f, dA + i * sA, d.K);
    if (dA && d.ta) gemm(d.tb, true, d.K, M, d.N, 1.f, b, d.ldb(), dc, d.N, 1.f, dA + i * sA, M);
    if (dB && !d.tb) gemm(!d.ta, false, d.K, d.N, M, 1.f, a, d.lda(), dc, d.N, 1.f, dB + i * sB, d.N);
    if (dB && d.tb) gemm(true, d.ta, d.N, d.K, M, 1.f, dc, d.N, a, d.lda(), 1.f, dB + i * sB, d.K);
  }
}

// ---- the same products on the device ----

// `batch` products C_i (M,N) = op(A_i)·op(B_i) + beta·C_i, operand i at X + i·sX. cuBLAS runs the
// entries of a batched GEMM concurrently, so a shared output (sC == 0: the gradient of a b shared by
// the batch) is accumulated by single GEMMs in order instead, which also keeps the CPU's sum order.
void gemm_batch_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, int64_t sA,
                     const float* B, int64_t ldb, int64_t sB, float beta, float* C, int64_t ldc, int64_t sC,
                     int64_t batch) {
  if constexpr (kCudaBuilt) {
    if (batch == 1) {
      cuda::gemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
    } else if (sC == 0) {
      for (int64_t i = 0; i < batch; ++i)
        cuda::gemm(ta, tb, M, N, K, 1.f, A + i * sA, lda, B + i * sB, ldb, beta, C, ldc);
    } else {
      cuda::gemm_strided_batched(ta, tb, M, N, K, 1.f, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    }
  }
}

// matmul_forward on the device: C (batch, M, N) = op(A)·op(B), folded like the CPU when b is shared.
void matmul_forward_cuda(float* C, const float* A, const float* B, const MatmulDims& d) {
  if (d.b_shared && !d.ta) {
    gemm_batch_cuda(false, d.tb, d.batch * d.M, d.N, d.K, A, d.lda(), 0, B, d.ldb(), 0, 0.f, C, d.N, 0, 1);
    return;
  }
  const int64_t sB = d.b_shared ? 0 : d.K * d.N;
  gemm_batch_cuda(d.ta, d.tb, d.M, d.N, d.K, A, d.lda(), d.M * d.K, B, d.ldb(), sB, 0.f, C, d.N, d.M * d.N, d.batch);
}

// matmul_backward on the device: the same four products, each over the whole batch at once.
void matmul_backward_cuda(float* dA, float* dB, const float* dC, const float* A, const float* B,
                          const MatmulDims& d) {
  const bool fold = d.b_shared && !d.ta;
  const int64_t nb = fold ? 1 : d.batch, M = fold ? d.batch * d.M : d.M;
  const int64_t sA = M * d.K, sC = M * d.N, sB = d.b_shared ? 0 : d.K * d.N;
  if (dA && !d.ta) gemm_batch_cuda(false, !d.tb, M, d.K, d.N, dC, d.N, sC, B, d.ldb(), sB, 1.f, dA, d.K, sA, nb);
  if (dA && d.ta) gemm_batch_cuda(d.tb, true, d.K, M, d.N, B, d.ldb(), sB, dC, d.N, sC, 1.f, dA, M, sA, nb);
  if (dB && !d.tb) gemm_batch_cuda(!d.ta, false, d.K, d.N, M, A, d.lda(), sA, dC, d.N, sC, 1.f, dB, d.N, sB, nb);
  if (dB && d.tb) gemm_batch_cuda(true, d.ta, d.N, d.K, M, dC, d.N, sC, A, d.lda(), sA, 1.f, dB, d.K, sB, nb);
}

struct MatmulOp : Node {
  Tensor a, b, out;  // a, b contiguous, on one device
  MatmulDims dims;
  void backward() override {
    const float* dout = grad_of(out);
    if (!dout) return;
    float *da = grad_sink(a), *db = grad_sink(b);
    if (out.device() == Device::CUDA) {
      matmul_backward_cuda(da, db, dout, a.data(), b.data(), dims);
    } else {
      matmul_backward(da, db, dout, a.data(), b.data(), dims);
    }
  }
  const char* name() const override { return "matmul"; }
};

// ---- linear: y (N, out) = x (N, in) · wᵀ + b ----

// db (out) += column sums of dy (N, out). Each task owns a block of kColBlock columns and walks the
// rows in order, adding a contiguous row segment at a time: vectorised, cache-friendly (the naive
// column-by-column walk strides through dy and was 2% of a fine-tuning step), and each column is
// still summed over n in order, so the result does not depend on the thread count.
constexpr int64_t kColBlock = 64;
void bias_backward(float* db, const float* dy, int64_t N, int64_t out) {
  const int64_t blocks = (out + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (N * out > tensor::kParallelGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kColBlock, w = std::min(kColBlock, out - j0);
    float acc[kColBlock] = {};
    for (int64_t n = 0; n < N; ++n) {
      const float* row = dy + n * out + j0;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) acc[j] += row[j];
    }
    for (int64_t j = 0; j < w; ++j) db[j0 + j] += acc[j];
  }
}

// The bias gradient is add's: db (out) += column sums of dy (N, out), dy viewed as (N, out) + b (out).
void bias_backward_cuda(float* db, const float* dy, int64_t N, int64_t out) {
  if constexpr (kCudaBuilt) cuda::add_backward(nullptr, db, dy, N, out);
}

// y (N, out) = x wᵀ (beta = 0: y is uninitialised) and then y += b in place, so y = fl(x wᵀ + b) as on
// the CPU, where the GEMM accumulates onto rows of b.
void linear_forward_cuda(float* y, const float* x, const float* w, const float* b, int64_t N, int64_t in,
                         int64_t outf) {
  if constexpr (kCudaBuilt) {
    cuda::gemm(false, true, N, outf, in, 1.f, x, in, w, in, 0.f, y, outf);
    if (b) cuda::add_forward(y, y, b, N, outf);
  }
}

struct LinearOp : Node {
  Tensor x, w, b, out;  // x contiguous (N, in) rows; b may be undefined
  int64_t N = 0, in = 0, outf = 0;
  void backward_cuda(const float* dy) {
    if constexpr (kCudaBuilt) {
      if (float* dx = grad_sink(x)) cuda::gemm(false, false, N, in, outf, 1.f, dy, outf, w.data(), in, 1.f, dx, in);
      if (float* dw = grad_sink(w)) cuda::gemm(true, false, outf, in, N, 1.f, dy, outf, x.data(), in, 1.f, dw, in);
    }
    if (float* db = grad_sink(b)) bias_backward_cuda(db, dy, N, outf);
  }
  void backward() override {
    const float* dy = grad_of(out);
    if (!dy) return;
    if (out.device() == Device::CUDA) return backward_cuda(dy);
    if (float* dx = grad_sink(x)) gemm(false, false, N, in, outf, 1.f, dy, outf, w.data(), in, 1.f, dx, in);
    if (float* dw = grad_sink(w)) gemm(true, false, outf, in, N, 1.f, dy, outf, x.data(), in, 1.f, dw, in);
    if (float* db = grad_sink(b)) bias_backward(db, dy, N, outf);
  }
  const char* name() const override { return "linear"; }
};

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const Device dev = op_device("matmul", {&a_in, &b_in});
  MatmulDims d = matmul_dims(a_in, b_in, trans_a, trans_b);
  Tensor a = compact(a_in), b = compact(b_in);
  Shape s = a.shape();
  s[-2] = d.M;
  s[-1] = d.N;
  Tensor out = Tensor::empty(s, dev);
  if (dev == Device::CUDA) {
    matmul_forward_cuda(out.data(), a.data(), b.data(), d);
  } else {
    matmul_forward(out.data(), a.data(), b.data(), d);
  }
  if (needs_grad({&a, &b})) {
    auto node = std::make_unique<MatmulOp>();
    node->a = a;
    node->b = b;
    node->dims = d;
    node->out = out;
    record(std::move(node), out);
  }
  return out;
}

Tensor linear(const Tensor& x_in, const Tensor& w, const Tensor& b) {
  const Device dev = op_device("linear", {&x_in, &w, &b});
  LR_CHECK(x_in.ndim() >= 1 && w.ndim() == 2 && x_in.size(-1) == w.size(1), "linear: x ", x_in.shape(),
           " does not match weight ", w.shape(), " (expected (..., in) and (out, in))");
  LR_CHECK(w.is_contiguous(), "linear: weight ", w.shape(), " must be contiguous");
  LR_CHECK(!b.defined() || (b.ndim() == 1 && b.size(0) == w.size(0) && b.is_contiguous()), "linear: bias ",
           b.shape(), " does not match weight ", w.shape(), " or is not contiguous");
  Tensor x = compact(x_in);
  const int64_t in = w.size(1), outf = w.size(0), N = x.numel() / in;
  Shape s = x.shape();
  s[-1] = outf;
  Tensor out = Tensor::empty(s, dev);
  float* y = out.data();
  if (dev == Device::CUDA) {
    linear_forward_cuda(y, x.data(), w.data(), b.defined() ? b.data() : nullptr, N, in, outf);
  } else {
    if (b.defined()) {
      const float* bp = b.data();
#pragma omp parallel for schedule(static) if (N * outf > tensor::kParallelGrain)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < outf; ++j) y[n * outf + j] = bp[j];
    }
    gemm(false, true, N, outf, in, 1.f, x.data(), in, w.data(), in, b.defined() ? 1.f : 0.f, y, outf);
  }
  if (needs_grad({&x, &w, &b})) {
    auto node = std::make_unique<LinearOp>();
    node->x = x;
    node->w = w;
    node->b = b;
    node->out = out;
    node->N = N;
    node->in = in;
    node->outf = outf;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
