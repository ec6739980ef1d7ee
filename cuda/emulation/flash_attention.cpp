// Host reference of the fused attention kernels (cuda/flash_attention_fwd.cu, _bwd.cu, _dkdv.cu:
// FlashAttention-2, Dao 2023, Algorithms 1 and 2), which the emulated cuda::attention_forward and
// attention_backward run for head sizes 32, 64 and 128, as the real launchers do. The same tiling
// as the kernels, written as plain loops so the emulation tests exercise the algorithm: the same
// block tiles and ranges (cuda/flash_attention.h: query_rows, key_end, query_begin), the online
// softmax with its rescaling by α per key tile and ℓ kept as one partial sum per lane, the same
// D = rowsum(dO ⊙ O), the separate dQ pass and the dK/dV pass over query tiles. A kernel's warp
// and lane loops become loops over the rows and the kLanes columns of a tile; rows past the end of
// the sequence, which the kernels compute on zero-filled tiles and never write, are left out.
// Sums over a tile's columns run in column order, as in mul_rows; the kernels' warp reductions
// (the max, ℓ's lane partials) and the dot products' order differ, so results agree to rounding.
#include "cuda/emulation/flash_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cuda/flash_attention.h"

namespace lowrank::cuda::emu {

namespace {

using namespace flash;

const float* row_at(const Operand& o, int64_t b, int64_t h, int64_t hs, int64_t t) {
  return o.p + b * o.sb + t * o.st + h * hs;
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] += a * x[c];
}

// One query row's registers in flash_forward_kernel: the running max m, ℓ as kLanes lane
// partials, the unnormalised output O (hs).
struct RowState {
  float m = -std::numeric_limits<float>::infinity();
  float l[kLanes] = {};
  std::vector<float> o;
};

// online_softmax + mul_rows for query row i and keys [j0, j0 + kLanes): S, m' = max(m, rowmax S),
// α = exp(m − m'), P = exp(S − m') (0 for keys the row does not see), ℓ = α ℓ + P, O = α O + P V.
void forward_tile(RowState& st, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d, int64_t b,
                  int64_t h, int64_t i, int64_t j0) {
  const int64_t n = visible_keys(d, b, i);
  float s[kLanes];
  float mx = -std::numeric_limits<float>::infinity();
  for (int lane = 0; lane < kLanes; ++lane) {
    const int64_t j = j0 + lane;
    s[lane] = j < n ? d.scale * dot(row_at(q, b, h, d.hs, i), row_at(k, b, h, d.hs, j), d.hs)
                    : -std::numeric_limits<float>::infinity();
    mx = std::max(mx, s[lane]);
  }
  const float mnew = std::max(st.m, mx), alpha = std::exp(st.m - mnew);
  for (float& x : st.o) x *= alpha;
  for (int lane = 0; lane < kLanes; ++lane) {
    const float p = std::exp(s[lane] - mnew);
    st.l[lane] = alpha * st.l[lane] + p;
    if (j0 + lane < n) axpy(st.o.data(), p, row_at(v, b, h, d.hs, j0 + lane), d.hs);
  }
  st.m = mnew;
}

// Block (b, h, query rows [i0, i0 + rows)) of flash_forward_kernel.
void forward_block(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d,
                   int64_t b, int64_t h, int64_t i0, int64_t rows) {
  std::vector<RowState> st(static_cast<size_t>(rows));
  for (RowState& s : st) s.o.assign(static_cast<size_t>(d.hs), 0.f);
  const int64_t kend = key_end(d, b, i0 + rows);  // key tiles from kend on are skipped
  for (int64_t j0 = 0; j0 < kend; j0 += kLanes)
    for (int64_t r = 0; r < rows; ++r) forward_tile(st[r], q, k, v, d, b, h, i0 + r, j0);
  for (int64_t r = 0; r < rows; ++r) {
    float l = 0.f;
    for (float x : st[r].l) l += x;
    float* o = out + (b * d.Tq + i0 + r) * d.C + h * d.hs;
    for (int64_t c = 0; c < d.hs; ++c) o[c] = st[r].o[c] / l;
    L[(b * d.NH + h) * d.Tq + i0 + r] = st[r].m + std::log(l);
  }
}

// P_ij and dS_ij = P_ij (dP_ij − D_i) for query i and key j, 0 when j is not visible to i.
struct Grad {
  float p = 0.f, ds = 0.f;
};
Grad score_grad(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k,
                const Operand& v, const AttnDims& d, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (j >= visible_keys(d, b, i)) return Grad{};
  const int64_t at = (b * d.NH + h) * d.Tq + i;
  const float* dO = g.dout + (b * d.Tq + i) * d.C + h * d.hs;
  const float p = std::exp(d.scale * dot(row_at(q, b, h, d.hs, i), row_at(k, b, h, d.hs, j), d.hs) - L[at]);
  return Grad{p, p * (dot(dO, row_at(v, b, h, d.hs, j), d.hs) - D[at])};
}

// Block (b, h, query rows [i0, i0 + rows)) of dq_kernel: dQ += scale · Σ_tiles dS K.
void dq_block(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k, const Operand& v,
              const AttnDims& d, int64_t b, int64_t h, int64_t i0, int64_t rows) {
  std::vector<float> acc(static_cast<size_t>(rows * d.hs), 0.f);
  const int64_t kend = key_end(d, b, i0 + rows);
  for (int64_t j0 = 0; j0 < kend; j0 += kLanes)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = j0; j < std::min(j0 + kLanes, d.Tk); ++j)
        axpy(&acc[r * d.hs], score_grad(g, L, D, q, k, v, d, b, h, i0 + r, j).ds, row_at(k, b, h, d.hs, j), d.hs);
  for (int64_t r = 0; r < rows; ++r) axpy(g.dq + (b * d.Tq + i0 + r) * d.C + h * d.hs, d.scale, &acc[r * d.hs], d.hs);
}

// Block (b, h, keys [j0, j0 + keys)) of dkdv_kernel: query tiles from query_begin on,
// dV += Σ Pᵀ dO, dK += scale · Σ dSᵀ Q.
void dkdv_block(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k,
                const Operand& v, const AttnDims& d, int64_t b, int64_t h, int64_t j0, int64_t keys) {
  const int64_t ibeg = query_begin(d, b, j0, kLanes);
  if (ibeg >= d.Tq) return;
  std::vector<float> ak(static_cast<size_t>(keys * d.hs), 0.f), av(ak.size(), 0.f);
  for (int64_t i0 = ibeg; i0 < d.Tq; i0 += kLanes)
    for (int64_t c = 0; c < keys; ++c)
      for (int64_t i = i0; i < std::min(i0 + kLanes, d.Tq); ++i) {
        const Grad gr = score_grad(g, L, D, q, k, v, d, b, h, i, j0 + c);
        axpy(&av[c * d.hs], gr.p, g.dout + (b * d.Tq + i) * d.C + h * d.hs, d.hs);
        axpy(&ak[c * d.hs], gr.ds, row_at(q, b, h, d.hs, i), d.hs);
      }
  for (int64_t c = 0; c < keys; ++c) {
    const int64_t off = (b * d.Tk + j0 + c) * d.C + h * d.hs;
    if (g.dk) axpy(g.dk + off, d.scale, &ak[c * d.hs], d.hs);
    if (g.dv) axpy(g.dv + off, 1.f, &av[c * d.hs], d.hs);
  }
}

}  // namespace

void flash_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d) {
  const int64_t br = query_rows(d.hs);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t i0 = 0; i0 < d.Tq; i0 += br) forward_block(out, L, q, k, v, d, b, h, i0, std::min(br, d.Tq - i0));
}

void flash_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d) {
  std::vector<float> D(static_cast<size_t>(d.B * d.NH * d.Tq));  // d_kernel: D = rowsum(dO ⊙ O)
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        const int64_t off = (b * d.Tq + i) * d.C + h * d.hs;
        D[(b * d.NH + h) * d.Tq + i] = dot(g.dout + off, g.out + off, d.hs);
      }
  const int64_t br = query_rows(d.hs);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h) {
      if (g.dq)
        for (int64_t i0 = 0; i0 < d.Tq; i0 += br)
          dq_block(g, L, D.data(), q, k, v, d, b, h, i0, std::min(br, d.Tq - i0));
      if (g.dk || g.dv)
        for (int64_t j0 = 0; j0 < d.Tk; j0 += kKeyRows)
          dkdv_block(g, L, D.data(), q, k, v, d, b, h, j0, std::min<int64_t>(kKeyRows, d.Tk - j0));
    }
}

}  // namespace lowrank::cuda::emu
