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
// The launchers whose CPU twin has the same name and arguments are declared from autograd/kernels.def,
// where each signature is written once with its shapes; the others are declared by hand below.
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

// ---- bf16 GEMM (gemm.cu): the frozen-weight products of the bf16 policy (autograd/weight_gemm.h) ----
// dst (rows·cols bf16 values, contiguous) = src (rows, cols) fp32 with leading dim ld, each rounded by
// tensor::round_to_bf16 (tensor/bf16.h: nearest, ties to even, NaN stays a quiet NaN), the CPU's
// rounding bit for bit.
void to_bf16_rows(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld);
// C (M,N) fp32 = op(A) (M,K) · op(B) (K,N) + beta · C with bf16 A and B and fp32 sums, conventions as gemm:
// cublasGemmEx with CUDA_R_16BF operands, a CUDA_R_32F C and CUBLAS_COMPUTE_32F. beta 0 or 1; M, N, K >= 1.
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);

// ---- tensor plumbing (tensor_ops.cu), for Tensor::fill_ / copy_ / add_ / contiguous on CUDA ----
void fill(float* p, float v, int64_t n);  // p (n) = v
// dst = src elementwise over `sizes` (ndim <= 4 dims), each side with its own element strides
// (host arrays of ndim entries): compacts strided views, writes into them; a src stride 0 repeats.
void copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim);
// dst += alpha · src elementwise, strides as in copy_strided (Tensor::add_ on strided views).
void axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                  const int64_t* sizes, int ndim, float alpha);

// ---- the launchers of autograd/kernels.def: elementwise.cu, activations.cu, reduce.cu (sum),
// softmax.cu, layernorm.cu, embedding.cu, dropout.cu, cross_entropy.cu -----------------------------
#define LR_KERNEL(name, params) void name params;
#include "autograd/kernels.def"
#undef LR_KERNEL

// ---- reductions (reduce.cu); sum_forward and sum_backward are in autograd/kernels.def ----------
// out (1 element, device) = Σ x² (n), squares and partial sums in double (optim::clip_grad_norm).
void sumsq_forward(float* out, const float* x, int64_t n);

// ---- attention (attention.cu): the CPU kernels' arguments (autograd/attention_kernels.h) ----------
// q/k/v operands with unit channel stride and row stride st >= C (the fallback's GEMM leading
// dimension); d.key_len (B) is a device int32 array or nullptr. out (B, Tq, C) contiguous; L (B, NH, Tq)
// the row log-sum-exps of the scores, which backward recomputes P from (P itself is never kept). Head
// sizes 32, 64, 128: fused FlashAttention-2 kernels, no (Tq, Tk) memory; others: cuBLAS GEMMs with
// B·NH·Tq·Tk floats of scratch from the caching allocator for the duration of one call.
void attention_forward(float* out, float* L, const autograd::detail::Operand& q, const autograd::detail::Operand& k,
                       const autograd::detail::Operand& v, const autograd::detail::AttnDims& d);
// g.dq (B, Tq, C), g.dk and g.dv (B, Tk, C), contiguous, += (each may be nullptr), from g.dout (B, Tq, C);
// the fused kernels also read g.out, the forward's output (without it: the cuBLAS path).
void attention_backward(const autograd::detail::AttnGrads& g, const float* L, const autograd::detail::Operand& q,
                        const autograd::detail::Operand& k, const autograd::detail::Operand& v,
                        const autograd::detail::AttnDims& d);

// ---- AdamW (optim/adamw.cpp): one fused update of one tensor of n elements ----------------------
// c1 = 1-β1^t, c2 = 1-β2^t computed on the host; wd is this tensor's weight decay (0 for biases);
// decoupled = AdamW, else Adam with L2 added to the gradient.
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled);

// ---- AdamW over many tensors in one launch (adamw.cu): apex's multi_tensor_apply, without its limits ----
// One entry per tensor, in a device array the caller uploads once and re-uses while the tensors stay the
// same (optim::AdamW keeps it). Tensor i's elements are chunks first_chunk .. first_chunk + ceil(n / chunk)
// - 1 of the launch, kAdamWChunk elements each (first_chunk: the prefix sum of the earlier tensors' chunk
// counts); a block updates one chunk, and finds its tensor by a binary search over first_chunk.
struct AdamWEntry {
  float* p;
  float* m;
  float* v;
  const float* g;
  int64_t n;
  int64_t first_chunk;
  float lr_scale;  // this tensor's step is lr · lr_scale (optim::AdamWConfig::lr_scale)
  float wd;        // this tensor's weight decay (0 for biases)
};
inline constexpr int64_t kAdamWChunk = 4096;  // elements per block: 16 per thread of a 256-thread block
// entries (count, device) covering `chunks` chunks in all; each tensor's update is adamw_update's, with
// lr · lr_scale and wd from its entry, bit for bit (one device function does both).
void adamw_multi_update(const AdamWEntry* entries, int64_t count, int64_t chunks, float lr, float beta1, float beta2,
                        float eps, float c1, float c2, bool decoupled);

}  // namespace lowrank::cuda
