// The CPU kernels of autograd::attention (attention.cpp holds the op, its node and the CUDA path).
//
// Scaled dot-product attention over NH heads. q (B, Tq, C), k and v (B, Tk, C); head h owns the
// channels [h*hs, (h+1)*hs), hs = C / NH. For one (b, h), with Q (Tq, hs), K and V (Tk, hs):
//   S = scale · Q Kᵀ             (Tq, Tk), scale = 1/sqrt(hs)
//   P = softmax over each row of S, restricted to the visible keys; masked P_ij = 0 exactly
//       causal: query i sees key j iff j <= i + (Tk - Tq)   (the last query sees every key)
//   O = P V                      (Tq, hs), written to out[b, :, h*hs : (h+1)*hs]
// Backward, from dO (the upstream gradient in the same place):
//   dV = Pᵀ dO                   (O is linear in V)
//   dP = dO Vᵀ
//   dS = P ⊙ (dP − rowsum(dP ⊙ P))   softmax Jacobian: ∂P_ij/∂S_il = P_ij (δ_jl − P_il)
//   dQ = scale · dS K,   dK = scale · dSᵀ Q
// Masked entries have P = 0, hence dS = 0: no gradient flows to keys a query cannot see.
//
// Memory and work (as FlashAttention, Dao et al. 2022, but with BLAS tiles on the CPU): the node keeps
// only the row log-sum-exp L_i = m_i + log Σ_j exp(S_ij − m_i), (B, NH, Tq), never P (B, NH, Tq, Tk),
// which is 600 MB for GPT-2 at T = 1024. Backward recomputes S for a block of rows and gets
// P = exp(S − L) exactly as the forward normalised it: one extra QKᵀ product, a sixth more attention
// FLOPs, for a (T/hs)-fold smaller saved state. Queries go in blocks of kRowBlock rows; a block only
// multiplies the keys its last row can see, so causal attention skips the masked upper triangle
// (about half the products at T = 1024) instead of computing and then zeroing it.
// q/k/v may be strided views (slices of a fused (B, T, 3C) qkv): every access goes through the
// (batch, row) strides with unit channel stride, and the products run as tensor::gemm with
// lda = row stride, so nothing is copied. Their .grad buffers are contiguous (B, T, C), so the
// gradients are written with row stride C. Each (b, h) pair is independent and its columns of
// out/dq/dk/dv are disjoint from every other pair's, so pairs run on OpenMP threads without
// locks; a pair's BLAS call then runs single-threaded, and results do not depend on the thread count.
#include "autograd/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "tensor/vecmath.h"

namespace lowrank::autograd::detail {

using tensor::gemm;

namespace {

constexpr int64_t kLanes = 16;  // explicit float lanes: GCC 12 vectorises these row loops

// S (rows, nk) = scale · Q[i0:i1] K[0:nk]ᵀ, row stride nk.
void scores(float* S, const Operand& q, const Operand& k, const AttnDims& d, const Tile& t) {
  gemm(false, true, t.rows(), t.nk, d.hs, d.scale, q.row(t.b, t.h, d.hs, t.i0), q.st, k.head(t.b, t.h, d.hs), k.st, 0.f,
       S, t.nk);
}

float lane_max(const float* x, int64_t n) {
  float m[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  float r = m[0];
  for (int64_t l = 1; l < kLanes; ++l) r = m[l] > r ? m[l] : r;
  for (; j < n; ++j) r = x[j] > r ? x[j] : r;
  return r;
}

// x[j] = exp(x[j] - shift) for j < n; returns Σ_j of the new values.
float lane_exp(float* x, int64_t n, float shift) {
  float s[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) s[l] += (x[j + l] = tensor::fast_exp(x[j + l] - shift));
  float r = 0.f;
  for (int64_t l = 0; l < kLanes; ++l) r += s[l];
  for (; j < n; ++j) r += (x[j] = tensor::fast_exp(x[j] - shift));
  return r;
}

}  // namespace

// Forward: each row of S becomes its softmax over the visible keys (max-subtracted, so exp never
// overflows), masked keys exactly 0; L[i] = m + log Σ exp(S − m).
void softmax_tile(float* S, float* L, const AttnDims& d, const Tile& t) {
  for (int64_t i = t.i0; i < t.i1; ++i) {
    float* row = S + (i - t.i0) * t.nk;
    const int64_t n = d.visible(t.b, i);
    const float mx = lane_max(row, n);
    const float sum = lane_exp(row, n, mx);
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    std::fill(row + n, row + t.nk, 0.f);
    L[i] = mx + std::log(sum);
  }
}

// Backward: P = exp(S − L) from the saved log-sum-exp, the forward's probabilities recomputed.
void probs_tile(float* S, const float* L, const AttnDims& d, const Tile& t) {
  // LAB 4 begin: probs_tile (P recomputed from the saved log-sum-exp)
  for (int64_t i = t.i0; i < t.i1; ++i) {
    float* row = S + (i - t.i0) * t.nk;
    const int64_t n = d.visible(t.b, i);
    lane_exp(row, n, L[i]);
    std::fill(row + n, row + t.nk, 0.f);
  }
  // LAB 4 end
}

// dS (rows, nk), in place over dP: dS = P ⊙ (dP − rowsum(dP ⊙ P))
void softmax_backward_tile(float* dS, const float* P, const Tile& t) {
  // LAB 4 begin: softmax_backward_tile (dS from dP and P)
  for (int64_t r = 0; r < t.rows(); ++r) {
    float* g = dS + r * t.nk;
    const float* p = P + r * t.nk;
    float acc[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= t.nk; j += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) acc[l] += g[j + l] * p[j + l];
    float dot = 0.f;
    for (int64_t l = 0; l < kLanes; ++l) dot += acc[l];
    for (; j < t.nk; ++j) dot += g[j] * p[j];
    for (j = 0; j < t.nk; ++j) g[j] = p[j] * (g[j] - dot);
  }
  // LAB 4 end
}

namespace {

// One tile, accumulating into dq/dk/dv: P recomputed; dV += Pᵀ dO; dS from dP = dO Vᵀ;
// dQ += scale·dS K; dK += scale·dSᵀ Q. P and dS are the caller's (rows, nk) scratch.
void attention_backward_tile(const AttnGrads& g, float* P, float* dS, const float* L, const Operand& q,
                             const Operand& k, const Operand& v, const AttnDims& d, const Tile& t) {
  // LAB 4 begin: attention_backward_tile (dQ, dK, dV of one tile)
  const int64_t qoff = (t.b * d.Tq + t.i0) * d.C + t.h * d.hs, koff = t.b * d.Tk * d.C + t.h * d.hs;
  const float* dO = g.dout + qoff;
  scores(P, q, k, d, t);
  probs_tile(P, L, d, t);
  if (g.dv) gemm(true, false, t.nk, d.hs, t.rows(), 1.f, P, t.nk, dO, d.C, 1.f, g.dv + koff, d.C);
  if (!g.dq && !g.dk) return;
  gemm(false, true, t.rows(), t.nk, d.hs, 1.f, dO, d.C, v.head(t.b, t.h, d.hs), v.st, 0.f, dS, t.nk);
  softmax_backward_tile(dS, P, t);
  if (g.dq)
    gemm(false, false, t.rows(), d.hs, t.nk, d.scale, dS, t.nk, k.head(t.b, t.h, d.hs), k.st, 1.f, g.dq + qoff, d.C);
  if (g.dk)
    gemm(true, false, t.nk, d.hs, t.rows(), d.scale, dS, t.nk, q.row(t.b, t.h, d.hs, t.i0), q.st, 1.f, g.dk + koff,
         d.C);
  // LAB 4 end
}

}  // namespace

// out (B, Tq, C); L (B, NH, Tq) the row log-sum-exps (always written: Tq floats per pair).
void attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d) {
  const int64_t pairs = d.B * d.NH;
#pragma omp parallel if (d.work() > tensor::kParallelGrain)
  {
    std::vector<float> S(static_cast<size_t>(std::min(d.Tq, kRowBlock) * d.Tk));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh) {
      const int64_t b = bh / d.NH, h = bh % d.NH;
      for_each_tile(d, b, h, [&](const Tile& t) {
        scores(S.data(), q, k, d, t);
        softmax_tile(S.data(), L + bh * d.Tq, d, t);
        float* o = out + (b * d.Tq + t.i0) * d.C + h * d.hs;
        gemm(false, false, t.rows(), d.hs, t.nk, 1.f, S.data(), t.nk, v.head(b, h, d.hs), v.st, 0.f, o, d.C);
      });
    }
  }
}

void attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                        const AttnDims& d) {
  // LAB 4 begin: attention_backward (every (b, h) pair and row tile, on OpenMP threads)
  const int64_t pairs = d.B * d.NH;
#pragma omp parallel if (d.work() > tensor::kParallelGrain)
  {
    const size_t tile = static_cast<size_t>(std::min(d.Tq, kRowBlock) * d.Tk);
    std::vector<float> P(tile), dS(tile);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh)
      for_each_tile(d, bh / d.NH, bh % d.NH, [&](const Tile& t) {
        attention_backward_tile(g, P.data(), dS.data(), L + bh * d.Tq, q, k, v, d, t);
      });
  }
  // LAB 4 end
}

}  // namespace lowrank::autograd::detail
