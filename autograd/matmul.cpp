// matmul and linear: every GEMM of the models goes through tensor::gemm_batched, which runs
// tensor::gemm (Eigen -> OpenBLAS) per product on the CPU and cuBLAS on CUDA tensors (tensor/gemm.h).
// For C = op(A)·op(B) with upstream gradient dC:
//   dA = dC·op(B)ᵀ   (stored Aᵀ when trans_a: dAᵀ = op(B)·dCᵀ)
//   dB = op(A)ᵀ·dC   (stored Bᵀ when trans_b: dBᵀ = dCᵀ·op(A))
// Each is accumulated with beta = 1, so backward adds into .grad as the tape requires, or written with
// beta = 0 into a gradient buffer allocated just now (GemmSink, autograd/op_util.h: no zero fill first).
// The products by a weight (linear's W, a matmul's one 2-D B) go through weight_gemm
// (autograd/weight_gemm.h): bf16 when the precision policy asks for it and the weight is frozen.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "autograd/weight_gemm.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::gemm_batched;

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

// C (batch, M, N) = op(A)·op(B) on dev. When b is shared and A is not transposed the batch folds into M,
// and b is a weight (weight_gemm).
void matmul_forward(Device dev, float* C, const float* A, const Tensor& b, const MatmulDims& d) {
  if (d.b_shared && !d.ta) return weight_gemm(dev, d.tb, d.batch * d.M, d.N, d.K, A, d.lda(), b, d.ldb(), 0.f, C, d.N);
  const int64_t sB = d.b_shared ? 0 : d.K * d.N;
  gemm_batched(dev, d.ta, d.tb, d.M, d.N, d.K, 1.f, A, d.lda(), d.M * d.K, b.data(), d.ldb(), sB, 0.f, C, d.N,
               d.M * d.N, d.batch);
}

// dA (+)= dC·op(B)ᵀ, then dB (+)= op(A)ᵀ·dC (each only when its sink is non-null), each over the whole batch.
void matmul_backward(Device dev, GemmSink dA, GemmSink dB, const float* dC, const float* A, const Tensor& b,
                     const MatmulDims& d) {
  const bool fold = d.b_shared && !d.ta;
  const int64_t nb = fold ? 1 : d.batch, M = fold ? d.batch * d.M : d.M;
  const int64_t sA = M * d.K, sC = M * d.N, sB = d.b_shared ? 0 : d.K * d.N;
  const float ba = dA.beta, bb = dB.beta;
  const float* B = b.data();
  if (dA.p && fold)  // dA = dC·op(B)ᵀ, by the weight b
    weight_gemm(dev, !d.tb, M, d.K, d.N, dC, d.N, b, d.ldb(), ba, dA.p, d.K);
  else if (dA.p && !d.ta)
    gemm_batched(dev, false, !d.tb, M, d.K, d.N, 1.f, dC, d.N, sC, B, d.ldb(), sB, ba, dA.p, d.K, sA, nb);
  if (dA.p && d.ta) gemm_batched(dev, d.tb, true, d.K, M, d.N, 1.f, B, d.ldb(), sB, dC, d.N, sC, ba, dA.p, M, sA, nb);
  if (dB.p && !d.tb)
    gemm_batched(dev, !d.ta, false, d.K, d.N, M, 1.f, A, d.lda(), sA, dC, d.N, sC, bb, dB.p, d.N, sB, nb);
  if (dB.p && d.tb) gemm_batched(dev, true, d.ta, d.N, d.K, M, 1.f, dC, d.N, sC, A, d.lda(), sA, bb, dB.p, d.K, sB, nb);
}

struct MatmulOp : Node {
  Tensor a, b, out;  // a, b contiguous, on one device
  MatmulDims dims;
  void backward() override {
    const float* dout = grad_of(out);
    if (!dout) return;
    const GemmSink da = gemm_sink(a);  // in the order they are written: matmul(x, x) adds dB onto dA
    const GemmSink db = gemm_sink(b);
    matmul_backward(out.device(), da, db, dout, a.data(), b, dims);
  }
  const char* name() const override { return "matmul"; }
};

// ---- linear: y (N, out) = x (N, in) · wᵀ + b ----

// y (N, out) = b (out) in every row: the GEMM then accumulates x wᵀ onto it (beta = 1), so y = fl(x wᵀ + b).
void bias_rows(float* y, const float* b, int64_t N, int64_t out) {
#pragma omp parallel for schedule(static) if (N * out > tensor::kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < out; ++j) y[n * out + j] = b[j];
}
void cuda_bias_rows(float* y, const float* b, int64_t N, int64_t out) {  // a copy whose source row stride is 0
  const int64_t dst_strides[2] = {out, 1}, src_strides[2] = {0, 1}, sizes[2] = {N, out};
  cuda::copy_strided(y, dst_strides, b, src_strides, sizes, 2);
}

// db (out) += column sums of dy (N, out). Each task owns a block of kColBlock columns and walks the
// rows in order, adding a contiguous row segment at a time: vectorised, cache-friendly (a naive
// column-by-column walk strides through dy), and each column is
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
// On the device the bias gradient is add's: db (out) += column sums of dy viewed as (N, out) + b (out).
void cuda_bias_backward(float* db, const float* dy, int64_t N, int64_t out) {
  cuda::add_backward(nullptr, db, dy, N, out);
}

struct LinearOp : Node {
  Tensor x, w, b, out;  // x contiguous (N, in) rows; b may be undefined
  int64_t N = 0, in = 0, outf = 0;
  void backward() override {
    const float* dy = grad_of(out);
    if (!dy) return;
    const Device dev = out.device();
    if (const GemmSink dx = gemm_sink(x); dx.p)  // dx (N, in) (+)= dy (N, out) · w (out, in)
      weight_gemm(dev, false, N, in, outf, dy, outf, w, in, dx.beta, dx.p, in);
    if (const GemmSink dw = gemm_sink(w); dw.p)  // dw (out, in) (+)= dyᵀ · x (N, in)
      gemm_batched(dev, true, false, outf, in, N, 1.f, dy, outf, 0, x.data(), in, 0, dw.beta, dw.p, in, 0, 1);
    if (float* db = grad_sink(b)) run(dev, bias_backward, cuda_bias_backward, db, dy, N, outf);
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
  matmul_forward(dev, out.data(), a.data(), b, d);
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
  LR_CHECK(!b.defined() || (b.ndim() == 1 && b.size(0) == w.size(0) && b.is_contiguous()), "linear: bias ", b.shape(),
           " does not match weight ", w.shape(), " or is not contiguous");
  Tensor x = compact(x_in);
  const int64_t in = w.size(1), outf = w.size(0), N = x.numel() / in;
  Shape s = x.shape();
  s[-1] = outf;
  Tensor out = Tensor::empty(s, dev);
  float* y = out.data();
  if (b.defined()) run(dev, bias_rows, cuda_bias_rows, y, b.data(), N, outf);
  weight_gemm(dev, true, N, outf, in, x.data(), in, w, in, b.defined() ? 1.f : 0.f, y, outf);
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
