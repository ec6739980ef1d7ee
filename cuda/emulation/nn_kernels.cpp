// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/softmax.cu,
// layernorm.cu, weight_norm.cu, embedding.cu, attention.cu, cross_entropy.cu and adamw.cu. Each launcher checks its
// pointers (device pointers, ranges inside one live device allocation, ids and targets in range),
// then runs the CPU reference kernel of the same name and arguments (autograd/kernels.h,
// autograd/attention_kernels.h, optim/adamw.h) on the untagged pointers. Attention follows
// cuda/attention.cu's choice: head sizes with a fused kernel run its host reference
// (flash_attention.cpp, the kernels' tiling), the others the CPU kernels (the cuBLAS path's scheme).
#include <algorithm>

#include "autograd/attention_kernels.h"
#include "autograd/kernels.h"
#include "cuda/emulation/flash_attention.h"
#include "cuda/emulation/tagged.h"
#include "cuda/flash_attention.h"
#include "cuda/kernels.h"
#include "optim/adamw.h"

namespace lowrank::cuda {

namespace cpu = autograd::cpu;
using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;
using emu::arg;
using emu::opt_arg;

void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log) {
  cpu::softmax_forward(arg(y, N * C, "softmax y"), arg(x, N * C, "softmax x"), N, C, log);
}
void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log) {
  cpu::softmax_backward(arg(dx, N * C, "softmax_backward dx"), arg(dy, N * C, "softmax_backward dy"),
                        arg(y, N * C, "softmax_backward y"), N, C, log);
}

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t N,
                       int64_t C, float eps) {
  cpu::layernorm_forward(arg(y, N * C, "layernorm y"), arg(mean, N, "layernorm mean"), arg(rstd, N, "layernorm rstd"),
                         arg(x, N * C, "layernorm x"), arg(w, C, "layernorm w"), opt_arg(b, C, "layernorm b"), N, C,
                         eps);
}
void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C) {
  cpu::layernorm_backward_dx(arg(dx, N * C, "layernorm_backward_dx dx"), arg(dy, N * C, "layernorm_backward_dx dy"),
                             arg(x, N * C, "layernorm_backward_dx x"), arg(w, C, "layernorm_backward_dx w"),
                             arg(mean, N, "layernorm_backward_dx mean"), arg(rstd, N, "layernorm_backward_dx rstd"), N,
                             C);
}
void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C) {
  cpu::layernorm_backward_params(opt_arg(dw, C, "layernorm_backward dw"), opt_arg(db, C, "layernorm_backward db"),
                                 arg(dy, N * C, "layernorm_backward dy"), arg(x, N * C, "layernorm_backward x"),
                                 arg(mean, N, "layernorm_backward mean"), arg(rstd, N, "layernorm_backward rstd"), N,
                                 C);
}

void weight_norm_forward(float* n, const float* w, int64_t N, int64_t C) {
  cpu::weight_norm_forward(arg(n, N, "weight_norm n"), arg(w, N * C, "weight_norm w"), N, C);
}
void weight_norm_backward(float* dw, const float* dn, const float* w, const float* n, int64_t N, int64_t C) {
  cpu::weight_norm_backward(arg(dw, N * C, "weight_norm_backward dw"), arg(dn, N, "weight_norm_backward dn"),
                            arg(w, N * C, "weight_norm_backward w"), arg(n, N, "weight_norm_backward n"), N, C);
}

namespace {

// The ids, checked >= 0; returns the rows of weight they reach (max id + 1), for its extent.
int64_t rows_reached(const int32_t* ids, int64_t N, const char* op) {
  int64_t rows = 0;
  for (int64_t n = 0; n < N; ++n) {
    LR_CHECK(ids[n] >= 0, "cuda emulation: ", op, ": id ", ids[n], " at row ", n, " is negative");
    rows = std::max<int64_t>(rows, ids[n] + 1);
  }
  return rows;
}

// The host view of an attention operand (B, T, C) and the elements it spans.
Operand host_operand(const Operand& o, int64_t B, int64_t T, int64_t C, const char* what) {
  const int64_t n = B == 0 || T == 0 || C == 0 ? 0 : (B - 1) * o.sb + (T - 1) * o.st + C;
  return Operand{arg(o.p, n, what), o.sb, o.st};
}

AttnDims host_dims(const AttnDims& d) {
  AttnDims h = d;
  h.key_len = opt_arg(d.key_len, d.B, "attention key_len");
  return h;
}

}  // namespace

void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C) {
  const int32_t* idh = arg(ids, N, "embedding ids");
  cpu::embedding_forward(arg(y, N * C, "embedding y"), arg(weight, rows_reached(idh, N, "embedding") * C, "weight"),
                         idh, N, C);
}
void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C) {
  const int32_t* idh = arg(ids, N, "embedding_backward ids");
  cpu::embedding_backward(arg(dweight, rows_reached(idh, N, "embedding_backward") * C, "embedding_backward dweight"),
                          arg(dy, N * C, "embedding_backward dy"), idh, N, C);
}

void attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d) {
  auto run = flash::supported(d.hs) ? emu::flash_attention_forward : autograd::detail::attention_forward;
  run(arg(out, d.B * d.Tq * d.C, "attention out"), arg(L, d.B * d.NH * d.Tq, "attention L"),
      host_operand(q, d.B, d.Tq, d.C, "attention q"), host_operand(k, d.B, d.Tk, d.C, "attention k"),
      host_operand(v, d.B, d.Tk, d.C, "attention v"), host_dims(d));
}
void attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                        const AttnDims& d) {
  AttnGrads h;
  h.dq = opt_arg(g.dq, d.B * d.Tq * d.C, "attention_backward dq");
  h.dk = opt_arg(g.dk, d.B * d.Tk * d.C, "attention_backward dk");
  h.dv = opt_arg(g.dv, d.B * d.Tk * d.C, "attention_backward dv");
  h.dout = arg(g.dout, d.B * d.Tq * d.C, "attention_backward dout");
  h.out = opt_arg(g.out, d.B * d.Tq * d.C, "attention_backward out");
  auto run = flash::supported(d.hs) && h.out ? emu::flash_attention_backward : autograd::detail::attention_backward;
  run(h, arg(L, d.B * d.NH * d.Tq, "attention_backward L"), host_operand(q, d.B, d.Tq, d.C, "attention_backward q"),
      host_operand(k, d.B, d.Tk, d.C, "attention_backward k"), host_operand(v, d.B, d.Tk, d.C, "attention_backward v"),
      host_dims(d));
}

void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float eps) {
  const int32_t* th = arg(targets, N, "cross_entropy targets");
  const float* wh = arg(w, N, "cross_entropy w");
  for (int64_t n = 0; n < N; ++n)  // a row of weight 0 may hold ignore_index: never read
    LR_CHECK(wh[n] == 0.f || (th[n] >= 0 && th[n] < V), "cuda emulation: cross_entropy target ", th[n], " at row ", n,
             " outside [0, ", V, ") on a row with weight ", wh[n]);
  cpu::cross_entropy_forward(arg(row_loss, N, "cross_entropy row_loss"), arg(lse, N, "cross_entropy lse"),
                             arg(x, N * V, "cross_entropy x"), th, wh, N, V, eps);
}
void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets, const float* row_scale,
                            const float* dloss, int64_t N, int64_t V, float eps) {
  const int32_t* th = arg(targets, N, "cross_entropy_backward targets");
  const float* rs = arg(row_scale, N, "cross_entropy_backward row_scale");
  for (int64_t n = 0; n < N; ++n)
    LR_CHECK(rs[n] == 0.f || (th[n] >= 0 && th[n] < V), "cuda emulation: cross_entropy target ", th[n], " at row ", n,
             " outside [0, ", V, ")");
  cpu::cross_entropy_backward(arg(dx, N * V, "cross_entropy_backward dx"), arg(x, N * V, "cross_entropy_backward x"),
                              arg(lse, N, "cross_entropy_backward lse"), th, rs,
                              arg(dloss, 1, "cross_entropy_backward dloss"), N, V, eps);
}

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled) {
  optim::cpu::adamw_update(arg(p, n, "adamw p"), arg(m, n, "adamw m"), arg(v, n, "adamw v"), arg(g, n, "adamw g"), n,
                           lr, beta1, beta2, eps, wd, c1, c2, decoupled);
}

// The entries are read from the emulated device as a GPU reads them; each tensor's chunks must follow
// the previous tensor's (what the kernel's binary search relies on), then the CPU update runs per tensor.
void adamw_multi_update(const AdamWEntry* entries, int64_t count, int64_t chunks, float lr, float beta1, float beta2,
                        float eps, float c1, float c2, bool decoupled) {
  const AdamWEntry* e = arg(entries, count, "adamw_multi entries");
  int64_t next = 0;
  for (int64_t i = 0; i < count; ++i) {
    const AdamWEntry& t = e[i];
    LR_CHECK(t.first_chunk == next, "cuda::adamw_multi_update: entry ", i, " starts at chunk ", t.first_chunk,
             ", expected ", next);
    next += (t.n + kAdamWChunk - 1) / kAdamWChunk;
    optim::cpu::adamw_update(arg(t.p, t.n, "adamw p"), arg(t.m, t.n, "adamw m"), arg(t.v, t.n, "adamw v"),
                             arg(t.g, t.n, "adamw g"), t.n, lr * t.lr_scale, beta1, beta2, eps, t.wd, c1, c2,
                             decoupled);
  }
  LR_CHECK(next == chunks, "cuda::adamw_multi_update: the entries cover ", next, " chunks, the launch ", chunks);
}

}  // namespace lowrank::cuda
