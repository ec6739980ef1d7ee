// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/attention.cu and
// cuda/cross_entropy.cu, with their contracts:
//   attention: q/k/v are AttnOperands (element (b, t, c) at p[b·sb + t·st + c]); P (B, NH, Tq, Tk)
//   holds the probabilities with exact 0 on masked keys, or is nullptr for inference (a scratch P
//   from the allocator is used and released, like the kernel); causal alignment j <= i + (Tk - Tq),
//   then at most key_len[b] keys (a device int32 array); backward accumulates into contiguous
//   dq/dk/dv, each of which may be nullptr.
//   cross entropy: row weights w, row_scale and dloss are device data; rows with weight (forward) or
//   coefficient (backward) 0 are skipped and their target is never read.
// Straight loops over (b, h, i) rows with double dot products, independent of attention.cu's
// strided-batched GEMM choreography (which only a GPU run checks).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/emulation/tagged.h"
#include "cuda/kernels.h"
#include "cuda/memory.h"

namespace lowrank::cuda {

namespace {

// A host view of one operand, after checking its whole (B, T, C) extent.
struct Rows {
  const float* p;
  int64_t sb, st;
  const float* at(int64_t b, int64_t t, int64_t c0) const { return p + b * sb + t * st + c0; }
};

Rows rows_of(const AttnOperand& o, int64_t B, int64_t T, int64_t C, const char* what) {
  LR_CHECK(o.st >= C, "cuda emulation: ", what, " row stride ", o.st, " < C = ", C,
           " (it is also cuBLAS's leading dimension: pass C for a size-1 T)");
  const int64_t extent = B * T * C == 0 ? 0 : (B - 1) * o.sb + (T - 1) * o.st + C;
  return Rows{emu::arg(o.p, extent, what), o.sb, o.st};
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t c = 0; c < n; ++c) s += double(a[c]) * b[c];
  return s;
}

// Keys [0, visible) are seen by query i of sequence b (>= 1: the op checks key lengths).
int64_t visible_keys(const AttnDims& d, const int32_t* key_len, int64_t b, int64_t i) {
  int64_t n = d.causal ? i + (d.Tk - d.Tq) + 1 : d.Tk;
  if (key_len) n = std::min<int64_t>(n, key_len[b]);
  LR_CHECK(n >= 1 && n <= d.Tk, "cuda emulation: attention query ", i, " of sequence ", b, " sees ", n,
           " keys (causal needs Tq <= Tk, key lengths must be in [1, Tk])");
  return n;
}

// One P row (Tk) of pair (b, h), query i: softmax of scale·q·k over the visible keys, 0 elsewhere.
void probs_row(float* P, const Rows& q, const Rows& k, const AttnDims& d, const int32_t* key_len, int64_t b,
               int64_t h, int64_t i) {
  const int64_t hs = d.C / d.NH, n = visible_keys(d, key_len, b, i);
  const float scale = 1.f / std::sqrt(static_cast<float>(hs));
  for (int64_t j = 0; j < n; ++j) P[j] = scale * static_cast<float>(dot(q.at(b, i, h * hs), k.at(b, j, h * hs), hs));
  const float mx = *std::max_element(P, P + n);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(P[j] - mx);
  const float inv = 1.f / static_cast<float>(sum);
  for (int64_t j = 0; j < d.Tk; ++j) P[j] = j < n ? std::exp(P[j] - mx) * inv : 0.f;
}

}  // namespace

void attention_forward(float* out, float* P, const AttnOperand& q, const AttnOperand& k, const AttnOperand& v,
                       const AttnDims& d) {
  const int64_t hs = d.C / d.NH, rows = d.B * d.NH * d.Tq;
  if (rows == 0 || hs == 0) return;
  const Rows qh = rows_of(q, d.B, d.Tq, d.C, "attention q"), kh = rows_of(k, d.B, d.Tk, d.C, "attention k");
  const Rows vh = rows_of(v, d.B, d.Tk, d.C, "attention v");
  float* o = emu::arg(out, d.B * d.Tq * d.C, "attention_forward out");
  const int32_t* key_len = emu::opt_arg(d.key_len, d.B, "attention key_len");
  const size_t pbytes = sizeof(float) * static_cast<size_t>(rows * d.Tk);
  float* Pdev = P ? P : static_cast<float*>(alloc(pbytes));  // inference: scratch, as the kernel
  float* Ph = emu::arg(Pdev, rows * d.Tk, "attention_forward P");
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        float* prow = Ph + ((b * d.NH + h) * d.Tq + i) * d.Tk;
        probs_row(prow, qh, kh, d, key_len, b, h, i);
        float* orow = o + (b * d.Tq + i) * d.C + h * hs;
        for (int64_t c = 0; c < hs; ++c) {
          double s = 0.0;
          for (int64_t j = 0; j < d.Tk; ++j) s += double(prow[j]) * vh.at(b, j, h * hs)[c];
          orow[c] = static_cast<float>(s);
        }
      }
  if (!P) release(Pdev, pbytes);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* P, const AttnOperand& q,
                        const AttnOperand& k, const AttnOperand& v, const AttnDims& d) {
  const int64_t hs = d.C / d.NH, rows = d.B * d.NH * d.Tq;
  if (rows == 0 || hs == 0) return;
  const float scale = 1.f / std::sqrt(static_cast<float>(hs));
  const Rows qh = rows_of(q, d.B, d.Tq, d.C, "attention q"), kh = rows_of(k, d.B, d.Tk, d.C, "attention k");
  const Rows vh = rows_of(v, d.B, d.Tk, d.C, "attention v");
  const float* gO = emu::arg(dout, d.B * d.Tq * d.C, "attention_backward dout");
  const float* Ph = emu::arg(P, rows * d.Tk, "attention_backward P");
  float* dqh = emu::opt_arg(dq, d.B * d.Tq * d.C, "attention_backward dq");
  float* dkh = emu::opt_arg(dk, d.B * d.Tk * d.C, "attention_backward dk");
  float* dvh = emu::opt_arg(dv, d.B * d.Tk * d.C, "attention_backward dv");
  std::vector<float> dS(static_cast<size_t>(d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        const float* prow = Ph + ((b * d.NH + h) * d.Tq + i) * d.Tk;
        const float* go = gO + (b * d.Tq + i) * d.C + h * hs;
        for (int64_t j = 0; dvh && j < d.Tk; ++j)  // dV += Pᵀ dO
          for (int64_t c = 0; c < hs; ++c) dvh[(b * d.Tk + j) * d.C + h * hs + c] += prow[j] * go[c];
        if (!dqh && !dkh) continue;
        double rowdot = 0.0;  // dS = P ⊙ (dP − rowsum(dP ⊙ P)), dP = dO Vᵀ
        for (int64_t j = 0; j < d.Tk; ++j) {
          dS[j] = static_cast<float>(dot(go, vh.at(b, j, h * hs), hs));
          rowdot += double(dS[j]) * prow[j];
        }
        for (int64_t j = 0; j < d.Tk; ++j) dS[j] = prow[j] * (dS[j] - static_cast<float>(rowdot));
        for (int64_t j = 0; j < d.Tk; ++j)  // dQ += scale·dS K;  dK += scale·dSᵀ Q
          for (int64_t c = 0; c < hs; ++c) {
            if (dqh) dqh[(b * d.Tq + i) * d.C + h * hs + c] += scale * dS[j] * kh.at(b, j, h * hs)[c];
            if (dkh) dkh[(b * d.Tk + j) * d.C + h * hs + c] += scale * dS[j] * qh.at(b, i, h * hs)[c];
          }
      }
}

void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float eps) {
  if (N == 0 || V == 0) return;
  float* rl = emu::arg(row_loss, N, "cross_entropy_forward row_loss");
  float* lh = emu::arg(lse, N, "cross_entropy_forward lse");
  const float* xh = emu::arg(x, N * V, "cross_entropy_forward x");
  const int32_t* th = emu::arg(targets, N, "cross_entropy_forward targets");
  const float* wh = emu::arg(w, N, "cross_entropy_forward w");
  for (int64_t n = 0; n < N; ++n) {
    lh[n] = rl[n] = 0.f;
    if (wh[n] == 0.f) continue;  // its target may be ignore_index: never read
    LR_CHECK(th[n] >= 0 && th[n] < V, "cuda emulation: cross_entropy target ", th[n], " at row ", n,
             " outside [0, ", V, ") on a row with weight ", wh[n]);
    const float* xr = xh + n * V;
    const float m = *std::max_element(xr, xr + V);
    double s = 0.0, sum_x = 0.0;
    for (int64_t j = 0; j < V; ++j) {
      s += std::exp(xr[j] - m);
      sum_x += xr[j];
    }
    const double l = m + std::log(s);
    lh[n] = static_cast<float>(l);
    rl[n] = static_cast<float>(wh[n] * (l - (1.0 - eps) * xr[th[n]] - (eps / static_cast<double>(V)) * sum_x));
  }
}

void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets,
                            const float* row_scale, const float* dloss, int64_t N, int64_t V, float eps) {
  if (N == 0 || V == 0) return;
  float* dxh = emu::arg(dx, N * V, "cross_entropy_backward dx");
  const float* xh = emu::arg(x, N * V, "cross_entropy_backward x");
  const float* lh = emu::arg(lse, N, "cross_entropy_backward lse");
  const int32_t* th = emu::arg(targets, N, "cross_entropy_backward targets");
  const float* rs = emu::arg(row_scale, N, "cross_entropy_backward row_scale");
  const float dl = emu::arg(dloss, 1, "cross_entropy_backward dloss")[0];  // a device scalar
  const float q_off = eps / static_cast<float>(V);
  for (int64_t n = 0; n < N; ++n) {
    const float c = dl * rs[n];
    if (c == 0.f) continue;
    const int32_t t = th[n];
    LR_CHECK(t >= 0 && t < V, "cuda emulation: cross_entropy target ", t, " at row ", n, " outside [0, ", V, ")");
    for (int64_t j = 0; j < V; ++j) {
      float g = dxh[n * V + j] + c * (std::exp(xh[n * V + j] - lh[n]) - q_off);
      if (j == t) g -= c * (1.f - eps);  // the kernel's two steps, in its order
      dxh[n * V + j] = g;
    }
  }
}

}  // namespace lowrank::cuda
