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
// q/k/v may be strided views (slices of a fused (B, T, 3C) qkv): every access goes through the
// (batch, row) strides with unit channel stride, and the small products run as tensor::gemm with
// lda = row stride, so nothing is copied. Their .grad buffers are contiguous (B, T, C), so the
// gradients are written with row stride C. Each (b, h) pair is independent and its columns of
// out/dq/dk/dv are disjoint from every other pair's, so pairs run on OpenMP threads without
// locks; a pair's BLAS call then runs single-threaded, and results do not depend on the thread count.
// P (B, NH, Tq, Tk) is saved for backward only when a node is recorded; inference uses scratch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::gemm;

namespace {

// A (B, T, C) operand with unit channel stride: element (b, t, c) is p[b*sb + t*st + c].
struct Operand {
  float* p = nullptr;
  int64_t sb = 0, st = 0;
  const float* head(int64_t b, int64_t h, int64_t hs) const { return p + b * sb + h * hs; }
};

Operand operand(const Tensor& t) {
  // Strides of size-1 dims are arbitrary; give BLAS a valid leading dimension (>= C) for them.
  const int64_t st = t.size(1) > 1 ? t.strides()[1] : t.size(2);
  return Operand{t.data(), t.strides()[0], st};
}

struct AttnDims {
  int64_t B = 0, Tq = 0, Tk = 0, C = 0, NH = 1, hs = 0;
  bool causal = false;
  float scale = 1.f;
  const int32_t* key_len = nullptr;  // (B) valid keys per sequence (right padding), or nullptr: all
  // Query i of sequence b sees keys [0, visible(b, i)).
  int64_t visible(int64_t b, int64_t i) const {
    const int64_t n = causal ? i + (Tk - Tq) + 1 : Tk;
    return key_len ? std::min<int64_t>(n, key_len[b]) : n;
  }
  int64_t work() const { return B * NH * Tq * Tk * hs; }
};

// P (Tq, Tk): each row of S, in place, becomes the softmax over its visible keys (max-subtracted
// so exp never overflows); masked keys get exactly 0.
void masked_softmax_rows(float* P, const AttnDims& d, int64_t b) {
  for (int64_t i = 0; i < d.Tq; ++i) {
    float* row = P + i * d.Tk;
    const int64_t n = d.visible(b, i);
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) sum += (row[j] = std::exp(row[j] - mx));
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    for (int64_t j = n; j < d.Tk; ++j) row[j] = 0.f;
  }
}

// dS (Tq, Tk), in place over dP: dS = P ⊙ (dP − rowsum(dP ⊙ P))
void softmax_backward_rows(float* dS, const float* P, const AttnDims& d) {
  for (int64_t i = 0; i < d.Tq; ++i) {
    float* g = dS + i * d.Tk;
    const float* p = P + i * d.Tk;
    float dot = 0.f;
    for (int64_t j = 0; j < d.Tk; ++j) dot += g[j] * p[j];
    for (int64_t j = 0; j < d.Tk; ++j) g[j] = p[j] * (g[j] - dot);
  }
}

// One (b, h): P (Tq, Tk) = masked softmax(scale · Q Kᵀ); out[b, :, head h] (Tq, hs) = P V.
void attention_forward_head(float* out, float* P, const Operand& q, const Operand& k, const Operand& v,
                            const AttnDims& d, int64_t b, int64_t h) {
  gemm(false, true, d.Tq, d.Tk, d.hs, d.scale, q.head(b, h, d.hs), q.st, k.head(b, h, d.hs), k.st, 0.f, P, d.Tk);
  masked_softmax_rows(P, d, b);
  float* o = out + b * d.Tq * d.C + h * d.hs;
  gemm(false, false, d.Tq, d.hs, d.Tk, 1.f, P, d.Tk, v.head(b, h, d.hs), v.st, 0.f, o, d.C);
}

// out (B, Tq, C); P_all (B, NH, Tq, Tk) to keep the probabilities, or nullptr (per-thread scratch).
void attention_forward(float* out, float* P_all, const Operand& q, const Operand& k, const Operand& v,
                       const AttnDims& d) {
  const int64_t pairs = d.B * d.NH, psize = d.Tq * d.Tk;
#pragma omp parallel if (d.work() > tensor::kParallelGrain)
  {
    std::vector<float> scratch(P_all ? 0 : static_cast<size_t>(psize));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh) {
      float* P = P_all ? P_all + bh * psize : scratch.data();
      attention_forward_head(out, P, q, k, v, d, bh / d.NH, bh % d.NH);
    }
  }
}

// Gradient buffers: contiguous (B, T, C), row stride C; nullptr = that input needs no gradient.
struct AttnGrads {
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
  const float* dout = nullptr;
};

// One (b, h), accumulating into dq/dk/dv: dV += Pᵀ dO; dS from dP = dO Vᵀ; dQ += scale·dS K;
// dK += scale·dSᵀ Q. dS (Tq, Tk) is the caller's scratch.
void attention_backward_head(const AttnGrads& g, float* dS, const float* P, const Operand& q, const Operand& k,
                             const Operand& v, const AttnDims& d, int64_t b, int64_t h) {
  const int64_t qoff = b * d.Tq * d.C + h * d.hs, koff = b * d.Tk * d.C + h * d.hs;
  const float* dO = g.dout + qoff;
  if (g.dv) gemm(true, false, d.Tk, d.hs, d.Tq, 1.f, P, d.Tk, dO, d.C, 1.f, g.dv + koff, d.C);
  if (!g.dq && !g.dk) return;
  gemm(false, true, d.Tq, d.Tk, d.hs, 1.f, dO, d.C, v.head(b, h, d.hs), v.st, 0.f, dS, d.Tk);
  softmax_backward_rows(dS, P, d);
  if (g.dq) gemm(false, false, d.Tq, d.hs, d.Tk, d.scale, dS, d.Tk, k.head(b, h, d.hs), k.st, 1.f, g.dq + qoff, d.C);
  if (g.dk) gemm(true, false, d.Tk, d.hs, d.Tq, d.scale, dS, d.Tk, q.head(b, h, d.hs), q.st, 1.f, g.dk + koff, d.C);
}

void attention_backward(const AttnGrads& g, const float* P_all, const Operand& q, const Operand& k,
                        const Operand& v, const AttnDims& d) {
  const int64_t pairs = d.B * d.NH, psize = d.Tq * d.Tk;
#pragma omp parallel if (d.work() > tensor::kParallelGrain)
  {
    std::vector<float> dS(static_cast<size_t>(psize));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh)
      attention_backward_head(g, dS.data(), P_all + bh * psize, q, k, v, d, bh / d.NH, bh % d.NH);
  }
}

struct AttentionOp : Node {
  Tensor q, k, v;  // as given: rows may be strided, channel stride 1
  Tensor P;        // (B, NH, Tq, Tk) softmax probabilities, 0 where masked
  Tensor out;      // (B, Tq, C) contiguous
  AttnDims dims;
  std::vector<int32_t> key_len;
  void backward() override {
    AttnGrads g;
    g.dout = grad_of(out);
    if (!g.dout) return;
    g.dq = grad_sink(q);
    g.dk = grad_sink(k);
    g.dv = grad_sink(v);
    attention_backward(g, P.data(), operand(q), operand(k), operand(v), dims);
  }
  const char* name() const override { return "attention"; }
};

void check_unit_channel_stride(const Tensor& t, const char* what) {
  LR_CHECK(t.size(2) <= 1 || t.strides()[2] == 1, "attention: ", what, " ", t.shape(),
           " must have stride 1 in its last dim (rows may be strided), got strides ", t.strides(),
           "; make it contiguous first");
}

AttnDims check_attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                         const std::vector<int32_t>& key_lengths) {
  require_cpu("attention", {&q, &k, &v});
  LR_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3, "attention: q, k, v must be (B, T, C), got q ",
           q.shape(), " k ", k.shape(), " v ", v.shape());
  LR_CHECK(k.shape() == v.shape(), "attention: k ", k.shape(), " and v ", v.shape(), " must have the same shape");
  LR_CHECK(q.size(0) == k.size(0) && q.size(2) == k.size(2), "attention: q ", q.shape(), " and k ", k.shape(),
           " must have the same B and C");
  LR_CHECK(NH > 0 && q.size(2) % NH == 0, "attention: C = ", q.size(2), " of q ", q.shape(),
           " is not divisible by NH = ", NH);
  LR_CHECK(!causal || q.size(1) <= k.size(1), "attention: causal needs Tq <= Tk (queries are the last Tq positions)",
           ", got q ", q.shape(), " and k ", k.shape());
  LR_CHECK(k.size(1) > 0 || q.size(1) == 0, "attention: no keys to attend to, k ", k.shape());
  LR_CHECK(key_lengths.empty() || static_cast<int64_t>(key_lengths.size()) == q.size(0), "attention: ",
           key_lengths.size(), " key lengths for batch ", q.size(0));
  for (int32_t n : key_lengths)
    LR_CHECK(n >= 1 && n <= k.size(1), "attention: key length ", n, " outside [1, ", k.size(1), "] for k ", k.shape());
  check_unit_channel_stride(q, "q");
  check_unit_channel_stride(k, "k");
  check_unit_channel_stride(v, "v");
  AttnDims d;
  d.B = q.size(0);
  d.Tq = q.size(1);
  d.Tk = k.size(1);
  d.C = q.size(2);
  d.NH = NH;
  d.hs = d.C / NH;
  d.causal = causal;
  d.scale = 1.f / std::sqrt(static_cast<float>(d.hs));
  d.key_len = key_lengths.empty() ? nullptr : key_lengths.data();
  return d;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                 const std::vector<int32_t>& key_lengths) {
  const AttnDims d = check_attention(q, k, v, NH, causal, key_lengths);
  Tensor out = Tensor::empty({d.B, d.Tq, d.C});
  const bool rec = needs_grad({&q, &k, &v});
  Tensor P = rec ? Tensor::empty({d.B, d.NH, d.Tq, d.Tk}) : Tensor();
  attention_forward(out.data(), rec ? P.data() : nullptr, operand(q), operand(k), operand(v), d);
  if (rec) {
    auto node = std::make_unique<AttentionOp>();
    node->q = q;
    node->k = k;
    node->v = v;
    node->P = P;
    node->out = out;
    node->dims = d;
    node->key_len = key_lengths;  // the node owns its copy; dims.key_len points into it
    node->dims.key_len = node->key_len.empty() ? nullptr : node->key_len.data();
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
