// attention's CPU kernels under the bf16 policy (tensor/precision.h, docs/precision.md): the same tiles,
// softmax and recompute as attention_kernels.cpp (where the math is derived), with every tile product
// (S = scale·Q Kᵀ and O = P V; backward's S again, dV += Pᵀ dO, dP = dO Vᵀ, dQ += scale·dS K and
// dK += scale·dSᵀ Q) on bf16 operands with fp32 accumulation and fp32 results (tensor::gemm_bf16).
// Softmax, the log-sum-exp L, P = exp(S − L), dS = P ⊙ (dP − rowsum(dP ⊙ P)) and every tensor the op
// saves or returns stay fp32. This is the split FlashAttention-2 (Dao, 2023) makes on the GPU, and the
// one PyTorch's CPU autocast gives scaled_dot_product_attention in bfloat16: low-precision matmul
// operands, fp32 statistics.
//
// Each (b, h) pair rounds its Q, K, V (and dO) to bf16 once, into the thread's buffers (row stride hs);
// the tiles then round only what they produce (P and dS). A pair's products run single-threaded
// inside the OpenMP region (oneDNN runs a primitive on one thread there), pairs are independent, so
// results do not depend on the thread count.
//
// The keys a tile multiplies are rounded up to a multiple of kKeyStep (never past Tk): with key_len
// (right padding) every length would otherwise be a new product shape, hence a new oneDNN primitive;
// with the steps, a length T gives at most T / kKeyStep shapes per product. Keys past a sequence's
// key_len are zero in the bf16 K and V, and every extra key has P = 0 and dS = 0 exactly (softmax_tile,
// probs_tile), so the extra columns add exact zeros to O, dK and dV.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "autograd/attention_kernels.h"
#include "tensor/bf16.h"
#include "tensor/gemm_bf16.h"
#include "tensor/parallel.h"

namespace lowrank::autograd::detail {

namespace {

using tensor::gemm_bf16;

constexpr int64_t kKeyStep = 32;

// One thread's bf16 operands for the pair it runs, and its fp32 tile scratch. The scale goes into K
// (and, for dK, into a second copy of Q) as they are rounded, so no pass over a tile applies it:
//   S = Q (scale·K)ᵀ,   dQ = dS (scale·K),   dK = dSᵀ (scale·Q).
struct PairBuffers {
  std::vector<uint16_t> q, qs, dout;  // Q, scale·Q, dO: (Tq, hs), row stride hs
  std::vector<uint16_t> ks, v;        // scale·K, V: (Tk, hs)
  std::vector<uint16_t> p16, ds16;    // one tile's P and dS, (rows, nk)
  std::vector<float> P, dS;           // one tile's fp32 S → P and dP → dS, (rows, nk)
  explicit PairBuffers(const AttnDims& d) {
    const auto tile = static_cast<size_t>(std::min(d.Tq, kRowBlock) * d.Tk);
    q.resize(static_cast<size_t>(d.Tq * d.hs)), qs.resize(q.size()), dout.resize(q.size());
    ks.resize(static_cast<size_t>(d.Tk * d.hs)), v.resize(ks.size());
    p16.resize(tile), ds16.resize(tile), P.resize(tile), dS.resize(tile);
  }
};

// dst[i] = bf16(s · src[i]) for i < n, one vectorised pass on the pair's thread (tensor::to_bf16 would
// open an OpenMP region of its own for a large tile).
void round_scaled(uint16_t* dst, const float* src, int64_t n, float s) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = tensor::round_to_bf16(s * src[i]);
}

// dst (T, hs) = bf16(s · x) for a head's rows [0, n) at x (row stride ld); rows [n, T) zero.
void round_head(std::vector<uint16_t>& dst, const float* x, int64_t ld, const AttnDims& d, int64_t n, float s) {
  for (int64_t r = 0; r < n; ++r) round_scaled(dst.data() + r * d.hs, x + r * ld, d.hs, s);
  std::fill(dst.begin() + n * d.hs, dst.end(), uint16_t{0});
}

// Q, scale·K and V of pair (b, h); keys past key_len[b] zero.
void round_pair(PairBuffers& p, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d, int64_t b,
                int64_t h) {
  const int64_t n = d.key_len ? std::min<int64_t>(d.Tk, d.key_len[b]) : d.Tk;
  round_head(p.q, q.head(b, h, d.hs), q.st, d, d.Tq, 1.f);
  round_head(p.ks, k.head(b, h, d.hs), k.st, d, n, d.scale);
  round_head(p.v, v.head(b, h, d.hs), v.st, d, n, 1.f);
}

// The tile with its key count rounded up to a multiple of kKeyStep, at most Tk.
Tile stepped(const AttnDims& d, Tile t) {
  t.nk = std::min(d.Tk, (t.nk + kKeyStep - 1) / kKeyStep * kKeyStep);
  return t;
}

// S (rows, nk) = Q[i0:i1] (scale·K[0:nk])ᵀ: bf16 products summed in fp32.
void scores_bf16(float* S, const PairBuffers& p, const AttnDims& d, const Tile& t) {
  gemm_bf16(false, true, t.rows(), t.nk, d.hs, p.q.data() + t.i0 * d.hs, d.hs, p.ks.data(), d.hs, 0.f, S, t.nk);
}

// Pair (b, h) of the forward: O rows into out, L[i] for its rows (L points at the pair's Tq values).
void forward_pair(float* out, float* L, PairBuffers& p, const Operand& q, const Operand& k, const Operand& v,
                  const AttnDims& d, int64_t b, int64_t h) {
  round_pair(p, q, k, v, d, b, h);
  for_each_tile(d, b, h, [&](const Tile& tile) {
    const Tile t = stepped(d, tile);
    scores_bf16(p.P.data(), p, d, t);
    softmax_tile(p.P.data(), L, d, t);
    round_scaled(p.p16.data(), p.P.data(), t.rows() * t.nk, 1.f);
    float* o = out + (b * d.Tq + t.i0) * d.C + h * d.hs;  // (rows, hs), row stride C
    gemm_bf16(false, false, t.rows(), d.hs, t.nk, p.p16.data(), t.nk, p.v.data(), d.hs, 0.f, o, d.C);
  });
}

// One backward tile, as attention_kernels.cpp's attention_backward_tile, accumulating into dq/dk/dv.
void backward_tile(const AttnGrads& g, const float* L, PairBuffers& p, const AttnDims& d, const Tile& t) {
  const int64_t qoff = (t.b * d.Tq + t.i0) * d.C + t.h * d.hs, koff = t.b * d.Tk * d.C + t.h * d.hs;
  const int64_t n = t.rows() * t.nk;
  const uint16_t* dO = p.dout.data() + t.i0 * d.hs;  // (rows, hs)
  scores_bf16(p.P.data(), p, d, t);
  probs_tile(p.P.data(), L, d, t);
  round_scaled(p.p16.data(), p.P.data(), n, 1.f);
  if (g.dv) gemm_bf16(true, false, t.nk, d.hs, t.rows(), p.p16.data(), t.nk, dO, d.hs, 1.f, g.dv + koff, d.C);
  if (!g.dq && !g.dk) return;
  gemm_bf16(false, true, t.rows(), t.nk, d.hs, dO, d.hs, p.v.data(), d.hs, 0.f, p.dS.data(), t.nk);  // dP
  softmax_backward_tile(p.dS.data(), p.P.data(), t);
  round_scaled(p.ds16.data(), p.dS.data(), n, 1.f);
  const uint16_t* qs = p.qs.data() + t.i0 * d.hs;  // scale·Q[i0:i1] (rows, hs)
  if (g.dq)
    gemm_bf16(false, false, t.rows(), d.hs, t.nk, p.ds16.data(), t.nk, p.ks.data(), d.hs, 1.f, g.dq + qoff, d.C);
  if (g.dk) gemm_bf16(true, false, t.nk, d.hs, t.rows(), p.ds16.data(), t.nk, qs, d.hs, 1.f, g.dk + koff, d.C);
}

// Runs f(buffers, bh) for every (b, h) pair on OpenMP threads, each thread with its own buffers. An
// exception must not leave an OpenMP region (the runtime would terminate the process): the first one is
// kept and rethrown after the region. The tile helpers throw in a course lab's student copy
// (tools/make_lab.sh), which then fails its tests instead of aborting them.
template <typename F>
void for_each_pair(const AttnDims& d, F f) {
  const int64_t pairs = d.B * d.NH;
  std::exception_ptr error;
#pragma omp parallel if (d.work() > tensor::kParallelGrain)
  {
    PairBuffers p(d);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh) {
      try {
        f(p, bh);
      } catch (...) {
#pragma omp critical(attention_bf16_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

void attention_forward_bf16(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                            const AttnDims& d) {
  for_each_pair(
      d, [&](PairBuffers& p, int64_t bh) { forward_pair(out, L + bh * d.Tq, p, q, k, v, d, bh / d.NH, bh % d.NH); });
}

void attention_backward_bf16(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d) {
  for_each_pair(d, [&](PairBuffers& p, int64_t bh) {
    const int64_t b = bh / d.NH, h = bh % d.NH;
    round_pair(p, q, k, v, d, b, h);
    round_head(p.qs, q.head(b, h, d.hs), q.st, d, d.Tq, d.scale);
    round_head(p.dout, g.dout + b * d.Tq * d.C + h * d.hs, d.C, d, d.Tq, 1.f);
    for_each_tile(d, b, h, [&](const Tile& t) { backward_tile(g, L + bh * d.Tq, p, d, stepped(d, t)); });
  });
}

}  // namespace lowrank::autograd::detail
