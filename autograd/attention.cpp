// autograd::attention: scaled dot-product attention over NH heads, q (B, Tq, C), k and v (B, Tk, C),
// out (B, Tq, C). This file holds the op: argument checks, the node, and the dispatch; the CPU
// kernels, and the derivation of forward and backward they implement, are in attention_kernels.cpp.
// On the CPU the node saves only the row log-sum-exp L (B, NH, Tq) and backward recomputes P from it.
// CUDA tensors go to cuda/attention.cu, which has not moved to the recompute scheme: its launchers
// keep P (B, NH, Tq, Tk) itself for backward, so on that device the node saves P instead of L
// (O(B·NH·Tq·Tk) memory, see docs/cuda.md). Key lengths are uploaded into a node-owned buffer.
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/attention_kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"

namespace lowrank::autograd {

namespace {

using detail::AttnDims;
using detail::AttnGrads;
using detail::Operand;
using detail::attention_backward;
using detail::attention_forward;

Operand operand(const Tensor& t) {
  // Strides of size-1 dims are arbitrary; give BLAS a valid leading dimension (>= C) for them.
  const int64_t st = t.size(1) > 1 ? t.strides()[1] : t.size(2);
  return Operand{t.data(), t.strides()[0], st};
}

// The CUDA launchers' view of q/k/v: the same strides. st is also cuBLAS's leading dimension,
// which must be >= C (always true for views of contiguous tensors; checked for odd strides).
cuda::AttnOperand cuda_operand(const Tensor& t, const char* what) {
  const Operand o = operand(t);
  LR_CHECK(o.st >= t.size(2), "attention: ", what, " ", t.shape(), " has row stride ", o.st,
           " < C on cuda (strides ", t.strides(), "); make it contiguous first");
  return cuda::AttnOperand{o.p, o.sb, o.st};
}

// The CUDA launchers' dims: key_len is the node's device buffer (undefined: every key is valid).
cuda::AttnDims cuda_dims(const AttnDims& d, const Tensor& key_len) {
  cuda::AttnDims c;
  c.B = d.B;
  c.Tq = d.Tq;
  c.Tk = d.Tk;
  c.C = d.C;
  c.NH = d.NH;
  c.causal = d.causal;
  c.key_len = key_len.defined() ? ints(key_len) : nullptr;
  return c;
}

struct AttentionOp : Node {
  Tensor q, k, v;  // as given: rows may be strided, channel stride 1; all on one device
  Tensor L;        // CPU: (B, NH, Tq) row log-sum-exp of the scores: P is recomputed from it
  Tensor P;        // CUDA only: (B, NH, Tq, Tk) the probabilities, which cuda/attention.cu keeps
  Tensor out;      // (B, Tq, C) contiguous
  AttnDims dims;   // on CUDA dims.key_len is nullptr: the lengths are in dev_key_len
  std::vector<int32_t> key_len;  // CPU: the host lengths dims.key_len points into
  Tensor dev_key_len;            // CUDA: (B) the lengths uploaded with device_ints(), or undefined
  void backward() override {
    AttnGrads g;
    g.dout = grad_of(out);
    if (!g.dout) return;
    g.dq = grad_sink(q);
    g.dk = grad_sink(k);
    g.dv = grad_sink(v);
    if (q.device() == Device::CUDA) {
      if constexpr (kCudaBuilt)
        cuda::attention_backward(g.dq, g.dk, g.dv, g.dout, P.data(), cuda_operand(q, "q"), cuda_operand(k, "k"),
                                 cuda_operand(v, "v"), cuda_dims(dims, dev_key_len));
    } else {
      attention_backward(g, L.data(), operand(q), operand(k), operand(v), dims);
    }
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
  op_device("attention", {&q, &k, &v});
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

// CUDA: P (B, NH, Tq, Tk) is kept for backward when recording; for inference the launcher uses a
// scratch P. dims.key_len (a host pointer into the caller's vector) is not used on this path.
Tensor attention_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const AttnDims& d,
                      const std::vector<int32_t>& key_lengths, bool rec) {
  Tensor out = Tensor::empty({d.B, d.Tq, d.C}, Device::CUDA);
  Tensor key_len = key_lengths.empty() ? Tensor() : device_ints(key_lengths, Device::CUDA);
  Tensor P = rec ? Tensor::empty({d.B, d.NH, d.Tq, d.Tk}, Device::CUDA) : Tensor();
  if constexpr (kCudaBuilt)
    cuda::attention_forward(out.data(), rec ? P.data() : nullptr, cuda_operand(q, "q"), cuda_operand(k, "k"),
                            cuda_operand(v, "v"), cuda_dims(d, key_len));
  if (rec) {
    auto node = std::make_unique<AttentionOp>();
    node->q = q;
    node->k = k;
    node->v = v;
    node->P = P;
    node->out = out;
    node->dims = d;
    node->dims.key_len = nullptr;
    node->dev_key_len = key_len;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                 const std::vector<int32_t>& key_lengths) {
  const AttnDims d = check_attention(q, k, v, NH, causal, key_lengths);
  const bool rec = needs_grad({&q, &k, &v});
  if (q.device() == Device::CUDA) return attention_cuda(q, k, v, d, key_lengths, rec);
  Tensor out = Tensor::empty({d.B, d.Tq, d.C});
  Tensor L = Tensor::empty({d.B, d.NH, d.Tq});
  attention_forward(out.data(), L.data(), operand(q), operand(k), operand(v), d);
  if (rec) {
    auto node = std::make_unique<AttentionOp>();
    node->q = q;
    node->k = k;
    node->v = v;
    node->L = L;
    node->out = out;
    node->dims = d;
    node->key_len = key_lengths;  // the node owns its copy; dims.key_len points into it
    node->dims.key_len = node->key_len.empty() ? nullptr : node->key_len.data();
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
