// Attention with cuBLAS GEMMs around a masked-softmax kernel: the path for head sizes without a fused
// kernel (cuda/attention.cu chooses; the fused kernels are cuda/flash_attention_*.cu). Same math and
// arguments as the CPU kernels (autograd/attention_kernels.cpp, .h). For one (b, h), with Q (Tq, hs),
// K and V (Tk, hs) the head's channel slices:
//   S = scale · Q Kᵀ (Tq, Tk), scale = 1/sqrt(hs);  P = row softmax of S over the visible keys
//   (causal: key j visible to query i iff j <= i + (Tk - Tq); then at most key_len[b] keys);
//   masked P_ij = 0 exactly;  O = P V, written to out[b, :, h·hs : (h+1)·hs]
// Backward: dV += Pᵀ dO;  dP = dO Vᵀ;  dS = P ⊙ (dP − rowsum(dP ⊙ P));
//           dQ += scale · dS K;  dK += scale · dSᵀ Q
// Approach: the products are cuBLAS strided-batched GEMMs straight on the (possibly strided) q/k/v
// rows — a head's slice is a row-major matrix with leading dim = the row stride, so nothing is
// copied or permuted. The (b, h) offset is b·sb + h·hs, which is not one stride over a flat (b, h)
// index, so the batch runs over heads for each b (B calls) or over the batch for each head (NH
// calls), whichever makes fewer calls. As on the CPU, only the row log-sum-exp L (B, NH, Tq) is kept
// for backward: the forward computes S into a scratch buffer and a fused masked-softmax kernel (one
// block per row) turns it into P in place and writes L; backward recomputes S and P = exp(S - L)
// (one more QKᵀ product). The scratch P (B·NH·Tq·Tk floats) lives for one call only, from the caching
// allocator; unlike the fused kernels it is whole, and nothing skips the causal upper triangle.
#include <algorithm>
#include <cmath>

#include "cuda/attention_paths.h"
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda::detail {

namespace {

constexpr int64_t kMaxRowBlocks = 65535;

int row_threads(int64_t n) { return static_cast<int>(std::min<int64_t>(256, (n + 31) / 32 * 32)); }
unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::min(rows, kMaxRowBlocks)); }

// Keys [0, visible) are seen by query i of sequence b.
__device__ __forceinline__ int64_t visible_keys(int64_t b, int64_t i, int64_t Tq, int64_t Tk, bool causal,
                                                const int32_t* key_len) {
  int64_t n = causal ? i + (Tk - Tq) + 1 : Tk;
  if (key_len) n = min(n, static_cast<int64_t>(key_len[b]));
  return n;
}

// P (B·NH·Tq rows of Tk), in place over S: softmax over the visible keys, exact 0 elsewhere;
// L (rows) = m + log Σ exp(S - m) over the visible keys.
__global__ void masked_softmax_kernel(float* P, float* L, int64_t rows, int64_t NH, int64_t Tq, int64_t Tk, bool causal,
                                      const int32_t* key_len) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % Tq, b = r / (Tq * NH);
    const int64_t n = visible_keys(b, i, Tq, Tk, causal, key_len);  // >= 1, checked by the caller
    float* row = P + r * Tk;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = detail::block_max(mx, smem);
    float sum = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += expf(row[j] - mx);
    sum = detail::block_sum(sum, smem);
    const float inv = 1.f / sum;
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) row[j] = j < n ? expf(row[j] - mx) * inv : 0.f;
    if (threadIdx.x == 0) L[r] = mx + logf(sum);
  }
}

// P (rows of Tk), in place over the recomputed S: P = exp(S - L) over the visible keys, 0 elsewhere.
__global__ void probs_from_lse_kernel(float* P, const float* L, int64_t rows, int64_t NH, int64_t Tq, int64_t Tk,
                                      bool causal, const int32_t* key_len) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % Tq, b = r / (Tq * NH);
    const int64_t n = visible_keys(b, i, Tq, Tk, causal, key_len);
    float* row = P + r * Tk;
    const float l = L[r];
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) row[j] = j < n ? expf(row[j] - l) : 0.f;
  }
}

// dS (rows of Tk), in place over dP: dS = P ⊙ (dP − rowsum(dP ⊙ P)). Masked P = 0 gives dS = 0.
__global__ void softmax_grad_kernel(float* dS, const float* P, int64_t rows, int64_t Tk) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float* g = dS + r * Tk;
    const float* p = P + r * Tk;
    float dot = 0.f;
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) dot += g[j] * p[j];
    dot = detail::block_sum(dot, smem);
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) g[j] = p[j] * (g[j] - dot);
  }
}

// Where head (b, h) of one operand starts: p + b·per_b + h·per_h.
struct Mat {
  const float* p;
  int64_t ld, per_b, per_h;
};

// out_bh = alpha · op(A_bh) · op(B_bh) + beta · out_bh for every (b, h), as strided-batched GEMMs
// (batched over heads per b when B <= NH, else over the batch per head).
void head_gemm(const AttnDims& d, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const Mat& A,
               const Mat& Bm, float beta, float* C, int64_t ldc, int64_t c_per_b, int64_t c_per_h) {
  const bool over_heads = d.B <= d.NH;
  const int64_t outer = over_heads ? d.B : d.NH, batch = over_heads ? d.NH : d.B;
  for (int64_t o = 0; o < outer; ++o) {
    const int64_t b = over_heads ? o : 0, h = over_heads ? 0 : o;
    auto at = [&](const Mat& m) { return m.p + b * m.per_b + h * m.per_h; };
    auto stride = [&](int64_t per_b, int64_t per_h) { return over_heads ? per_h : per_b; };
    gemm_strided_batched(ta, tb, M, N, K, alpha, at(A), A.ld, stride(A.per_b, A.per_h), at(Bm), Bm.ld,
                         stride(Bm.per_b, Bm.per_h), beta, C + b * c_per_b + h * c_per_h, ldc, stride(c_per_b, c_per_h),
                         batch);
  }
}

// S = scale · Q Kᵀ into S (B, NH, Tq, Tk)
void scores(float* S, const Operand& q, const Operand& k, const AttnDims& d) {
  const int64_t psize = d.Tq * d.Tk;
  head_gemm(d, false, true, d.Tq, d.Tk, d.hs, d.scale, Mat{q.p, q.st, q.sb, d.hs}, Mat{k.p, k.st, k.sb, d.hs}, 0.f, S,
            d.Tk, d.NH * psize, psize);
}

}  // namespace

void cublas_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d) {
  const int64_t hs = d.hs, psize = d.Tq * d.Tk, rows = d.B * d.NH * d.Tq;
  if (rows == 0 || hs == 0) return;
  const size_t pbytes = sizeof(float) * static_cast<size_t>(rows * d.Tk);
  float* P = static_cast<float*>(alloc(pbytes));
  scores(P, q, k, d);
  masked_softmax_kernel<<<row_blocks(rows), row_threads(d.Tk), 0, stream()>>>(P, L, rows, d.NH, d.Tq, d.Tk, d.causal,
                                                                              d.key_len);
  LR_CUDA_LAUNCHED();
  // O = P V into out (B, Tq, C), head h at columns h·hs
  head_gemm(d, false, false, d.Tq, hs, d.Tk, 1.f, Mat{P, d.Tk, d.NH * psize, psize}, Mat{v.p, v.st, v.sb, hs}, 0.f, out,
            d.C, d.Tq * d.C, hs);
  release(P, pbytes);  // stream-ordered: the next user of the block runs after these kernels
}

void cublas_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                               const AttnDims& d) {
  const int64_t hs = d.hs, psize = d.Tq * d.Tk, rows = d.B * d.NH * d.Tq;
  if (rows == 0 || hs == 0) return;
  const size_t pbytes = sizeof(float) * static_cast<size_t>(rows * d.Tk);
  float* P = static_cast<float*>(alloc(pbytes));
  scores(P, q, k, d);  // S again, then P = exp(S - L) in place
  probs_from_lse_kernel<<<row_blocks(rows), row_threads(d.Tk), 0, stream()>>>(P, L, rows, d.NH, d.Tq, d.Tk, d.causal,
                                                                              d.key_len);
  LR_CUDA_LAUNCHED();
  const Mat Pm{P, d.Tk, d.NH * psize, psize};
  const Mat dO{g.dout, d.C, d.Tq * d.C, hs};
  // dV += Pᵀ dO   (Tk, hs)
  if (g.dv) head_gemm(d, true, false, d.Tk, hs, d.Tq, 1.f, Pm, dO, 1.f, g.dv, d.C, d.Tk * d.C, hs);
  if (g.dq || g.dk) {
    float* dS = static_cast<float*>(alloc(pbytes));
    // dP = dO Vᵀ   (Tq, Tk), then dS in place
    head_gemm(d, false, true, d.Tq, d.Tk, hs, 1.f, dO, Mat{v.p, v.st, v.sb, hs}, 0.f, dS, d.Tk, d.NH * psize, psize);
    softmax_grad_kernel<<<row_blocks(rows), row_threads(d.Tk), 0, stream()>>>(dS, P, rows, d.Tk);
    LR_CUDA_LAUNCHED();
    const Mat dSm{dS, d.Tk, d.NH * psize, psize};
    // dQ += scale · dS K   (Tq, hs);   dK += scale · dSᵀ Q   (Tk, hs)
    if (g.dq)
      head_gemm(d, false, false, d.Tq, hs, d.Tk, d.scale, dSm, Mat{k.p, k.st, k.sb, hs}, 1.f, g.dq, d.C, d.Tq * d.C,
                hs);
    if (g.dk)
      head_gemm(d, true, false, d.Tk, hs, d.Tq, d.scale, dSm, Mat{q.p, q.st, q.sb, hs}, 1.f, g.dk, d.C, d.Tk * d.C, hs);
    release(dS, pbytes);
  }
  release(P, pbytes);
}

}  // namespace lowrank::cuda::detail
