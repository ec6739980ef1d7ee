#pragma once
// CUDA launchers, one per op and direction, on raw DEVICE pointers (float32, row-major, contiguous
// unless a stride argument says otherwise). Each mirrors the CPU reference kernel of the same name
// in autograd/*.cpp (or optim/adamw.cpp) with the same math and the same argument meaning:
//   * forward launchers overwrite their outputs;
//   * backward launchers ACCUMULATE (+=) into gradient buffers, like the tape expects; a gradient
//     pointer may be nullptr where that input needs no gradient, as on the CPU.
// Every launcher runs asynchronously on lowrank::cuda::stream() (the one stream of the backend),
// so consecutive launches are ordered and no launcher synchronises the host. Integer side inputs
// (ids, targets, key lengths) are device int32 arrays the caller uploads (they come from the host).
// No atomics are used: every result is bitwise reproducible from run to run on one GPU.
// Shape names as in autograd/ops.h: N rows, C channels, V vocabulary, B batch, T time, NH heads.
#include <cstdint>

#include "autograd/attention_kernels.h"

namespace lowrank::cuda {

// ---- GEMM (gemm.cu): cuBLAS, same row-major conventions as tensor::gemm -------------------
// C (M,N) = alpha · op(A) (M,K) · op(B) (K,N) + beta · C, leading dims as in tensor/gemm.h.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// `batch` such products; product i uses A + i·strideA, B + i·strideB, C + i·strideC (stride 0 shares).
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB, float beta,
                          float* C, int64_t ldc, int64_t strideC, int64_t batch);
// TF32 tensor-core math for every later GEMM (default OFF: full fp32, comparable with the CPU).
void set_tf32(bool on);
bool tf32();

// ---- tensor plumbing (tensor_ops.cu), for Tensor::fill_ / copy_ / add_ / contiguous on CUDA ----
void fill(float* p, float v, int64_t n);  // p (n) = v
// dst = src elementwise over `sizes` (ndim <= 4 dims), each side with its own element strides
// (host arrays of ndim entries): compacts strided views, writes into them; a src stride 0 repeats.
void copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim);
// dst += alpha · src elementwise, strides as in copy_strided (Tensor::add_ on strided views).
void axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim, float alpha);

// ---- elementwise with row broadcast (elementwise.cu) ------------------------------------
// a (outer, inner), b (inner) repeated over rows (outer = 1 when shapes are equal), y (outer, inner).
void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
// da (outer, inner) += dy (·b for mul); db (inner) += ±Σ_rows dy (·a for mul). a, b read by mul only.
void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner);
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner);
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer, int64_t inner);
// y (n) = s · x;  dx (n) += s · dy
void scale_forward(float* y, const float* x, float s, int64_t n);
void scale_backward(float* dx, const float* dy, float s, int64_t n);

// ---- activations (activations.cu), n elements -------------------------------------------
void gelu_forward(float* y, const float* x, int64_t n);  // GPT-2 tanh approximation
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n);
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* x, int64_t n);
void tanh_forward(float* y, const float* x, int64_t n);
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n);  // from the saved output y

// ---- reductions (reduce.cu) --------------------------------------------------------------
// out (1 element, device) = factor · Σ x (n): 1 for sum, 1/n for mean. Partial sums in double.
void sum_forward(float* out, const float* x, int64_t n, float factor = 1.f);
// dx (n) += factor · dy[0], dy a device scalar
void sum_backward(float* dx, const float* dy, int64_t n, float factor = 1.f);
// out (1 element, device) = Σ x² (n), squares and partial sums in double (optim::clip_grad_norm).
void sumsq_forward(float* out, const float* x, int64_t n);

// ---- softmax family over the last dim (softmax.cu); x, y (N, C) ---------------------------
void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log);
// dx (N, C) += Jacobianᵀ · dy, from the saved output y
void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log);

// ---- layernorm (layernorm.cu) ------------------------------------------------------------
// y (N, C), mean (N), rstd (N) from x (N, C), w (C), b (C or nullptr)
void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t N,
                       int64_t C, float eps);
// dx (N, C) += rstd·(dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)), dxhat = dy·w
void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C);
// dw (C) += Σ_rows dy·xhat, db (C) += Σ_rows dy; either may be nullptr
void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C);

// ---- embedding (embedding.cu); ids (N) device int32, already checked in [0, V) -------------
// y (N, C) = weight (V, C) rows picked by ids
void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C);
// dweight (V, C) += scatter-add of dy (N, C) rows: one thread per (channel, bucket of ids, id % buckets)
// walks n in order and adds only the rows whose id is in its bucket, so each sum is formed in the CPU's
// order (same bits as the CPU, no atomics). Parallel over C and the buckets.
void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C);

// ---- dropout (dropout.cu); mask (n) = 0 or 1/(1-p) from Philox(key, i) (tensor/philox.h) ------
// forward writes both mask and y = x ⊙ mask on the device; backward: dx += dy ⊙ mask.
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key);
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n);

// ---- attention (attention.cu): the CPU kernels' arguments (autograd/attention_kernels.h) ----------
// q/k/v operands with unit channel stride and row stride st >= C (the GEMMs' leading dimension);
// d.key_len (B) is a device int32 array or nullptr. out (B, Tq, C) contiguous; L (B, NH, Tq) the row
// log-sum-exps of the scores, which backward recomputes P from (P itself is never kept: scratch of
// B·NH·Tq·Tk floats comes from the caching allocator for the duration of one call).
void attention_forward(float* out, float* L, const autograd::detail::Operand& q, const autograd::detail::Operand& k,
                       const autograd::detail::Operand& v, const autograd::detail::AttnDims& d);
// g.dq (B, Tq, C), g.dk and g.dv (B, Tk, C), contiguous, += (each may be nullptr), from g.dout (B, Tq, C).
void attention_backward(const autograd::detail::AttnGrads& g, const float* L, const autograd::detail::Operand& q,
                        const autograd::detail::Operand& k, const autograd::detail::Operand& v,
                        const autograd::detail::AttnDims& d);

// ---- cross entropy (cross_entropy.cu); logits x (N, V), targets (N) device int32 ---------------
// The host computes the row weights w_i (mask_i, 0 for ignore_index) and W = Σ w_i, as the CPU op
// does. Per row: lse (N) and row_loss (N) = w_i·ℓ_i (both 0 on rows with w_i == 0); the loss is then
// sum_forward(loss, row_loss, N, 1/W) (or 0 when W == 0). One block per row.
void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float label_smoothing);
// dx (N, V) += dloss[0]·row_scale_i·(p_iv - q_iv), row_scale_i = w_i / W (0: row skipped); dloss is a
// device scalar (the loss's gradient), so no host round trip is needed.
void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets, const float* row_scale,
                            const float* dloss, int64_t N, int64_t V, float label_smoothing);

// ---- AdamW (optim/adamw.cpp): one fused update of one tensor of n elements ----------------------
// c1 = 1-β1^t, c2 = 1-β2^t computed on the host; wd is this tensor's weight decay (0 for biases);
// decoupled = AdamW, else Adam with L2 added to the gradient.
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled);

}  // namespace lowrank::cuda
