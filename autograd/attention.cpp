// autograd::attention: scaled dot-product attention over NH heads, q (B, Tq, C), k and v (B, Tk, C),
// out (B, Tq, C). This file holds the op: argument checks, the node, and the dispatch; the CPU
// kernels, and the derivation of forward and backward they implement, are in attention_kernels.cpp,
// and cuda/attention.cu implements the same scheme on the device with the same arguments. The node
// saves only the row log-sum-exp L (B, NH, Tq) (and keeps the output, whose gradient it reads, which
// the CUDA flash kernels also use) and backward recomputes P from L, never keeping P (B, NH, Tq, Tk). Key lengths are copied into a node-owned buffer on the tensors' device.
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/attention_kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"

namespace lowrank::autograd {

namespace {

using detail::AttnDims;
using detail::AttnGrads;
using detail::Operand;

// The kernels' view of q/k/v: (batch, row) strides with unit channel stride. Strides of size-1 dims
// are arbitrary; give BLAS a valid leading dimension (>= C) for them.
Operand operand(const Tensor& t) {
  const int64_t st = t.size(1) > 1 ? t.strides()[1] : t.size(2);
  return Operand{t.data(), t.strides()[0], st};
}

// Under the bf16 policy the CPU kernels multiply their tiles in bf16 with fp32 accumulation, softmax and
// L in fp32 (attention_bf16.cpp), as PyTorch's CPU autocast runs scaled_dot_product_attention; elsewhere
// (fp32 policy, no bf16 GEMM on this machine) the fp32 kernels, unchanged. Forward and backward each ask.
bool in_bf16(Device dev) {
  return dev == Device::CPU && tensor::precision() == tensor::Precision::bf16 && tensor::bf16_gemm_available();
}

struct AttentionOp : Node {
  Tensor q, k, v;  // as given: rows may be strided, channel stride 1; all on one device
  Tensor L;        // (B, NH, Tq) row log-sum-exp of the scores: backward recomputes P from it
  Tensor out;      // (B, Tq, C) contiguous
  Tensor key_len;  // (B) int32 valid keys per sequence (device_ints), or undefined: every key
  AttnDims dims;   // dims.key_len points into key_len
  void backward() override {
    AttnGrads g;
    g.dout = grad_of(out);
    if (!g.dout) return;
    g.dq = grad_sink(q);
    g.dk = grad_sink(k);
    g.dv = grad_sink(v);
    g.out = out.data();  // the CUDA flash backward's D = rowsum(dO ⊙ O)
    run(q.device(), in_bf16(q.device()) ? detail::attention_backward_bf16 : detail::attention_backward,
        cuda::attention_backward, g, L.data(), operand(q), operand(k), operand(v), dims);
  }
  const char* name() const override { return "attention"; }
};

// Unit channel stride, and a row stride >= C: it is the GEMMs' leading dimension (cuBLAS requires it).
void check_operand_strides(const Tensor& t, const char* what) {
  LR_CHECK(t.size(2) <= 1 || t.strides()[2] == 1, "attention: ", what, " ", t.shape(),
           " must have stride 1 in its last dim (rows may be strided), got strides ", t.strides(),
           "; make it contiguous first");
  LR_CHECK(operand(t).st >= t.size(2), "attention: ", what, " ", t.shape(), " has row stride ", operand(t).st,
           " < C (strides ", t.strides(), "); make it contiguous first");
}

AttnDims check_attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                         const std::vector<int32_t>& key_lengths) {
  op_device("attention", {&q, &k, &v});
  LR_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3, "attention: q, k, v must be (B, T, C), got q ", q.shape(),
           " k ", k.shape(), " v ", v.shape());
  LR_CHECK(k.shape() == v.shape(), "attention: k ", k.shape(), " and v ", v.shape(), " must have the same shape");
  LR_CHECK(q.size(0) == k.size(0) && q.size(2) == k.size(2), "attention: q ", q.shape(), " and k ", k.shape(),
           " must have the same B and C");
  LR_CHECK(NH > 0 && q.size(2) % NH == 0, "attention: C = ", q.size(2), " of q ", q.shape(),
           " is not divisible by NH = ", NH);
  LR_CHECK(!causal || q.size(1) <= k.size(1), "attention: causal needs Tq <= Tk (queries are the last Tq positions)",
           ", got q ", q.shape(), " and k ", k.shape());
  LR_CHECK(k.size(1) > 0 || q.size(1) == 0, "attention: no keys to attend to, k ", k.shape());
  LR_CHECK(key_lengths.empty() || static_cast<int64_t>(key_lengths.size()) == q.size(0),
           "attention: ", key_lengths.size(), " key lengths for batch ", q.size(0));
  for (int32_t n : key_lengths)
    LR_CHECK(n >= 1 && n <= k.size(1), "attention: key length ", n, " outside [1, ", k.size(1), "] for k ", k.shape());
  check_operand_strides(q, "q");
  check_operand_strides(k, "k");
  check_operand_strides(v, "v");
  AttnDims d;
  d.B = q.size(0);
  d.Tq = q.size(1);
  d.Tk = k.size(1);
  d.C = q.size(2);
  d.NH = NH;
  d.hs = d.C / NH;
  d.causal = causal;
  d.scale = 1.f / std::sqrt(static_cast<float>(d.hs));
  return d;  // d.key_len is set by the caller, to the lengths on the tensors' device
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                 const std::vector<int32_t>& key_lengths) {
  AttnDims d = check_attention(q, k, v, NH, causal, key_lengths);
  const Device dev = q.device();
  Tensor key_len = key_lengths.empty() ? Tensor() : device_ints(key_lengths, dev);
  d.key_len = key_len.defined() ? ints(key_len) : nullptr;
  Tensor out = Tensor::empty({d.B, d.Tq, d.C}, dev);
  Tensor L = Tensor::empty({d.B, d.NH, d.Tq}, dev);
  run(dev, in_bf16(dev) ? detail::attention_forward_bf16 : detail::attention_forward, cuda::attention_forward,
      out.data(), L.data(), operand(q), operand(k), operand(v), d);
  if (needs_grad({&q, &k, &v})) {
    auto node = std::make_unique<AttentionOp>();
    node->q = q;
    node->k = k;
    node->v = v;
    node->L = L;
    node->out = out;
    node->key_len = key_len;  // the node owns the lengths dims.key_len points into
    node->dims = d;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
