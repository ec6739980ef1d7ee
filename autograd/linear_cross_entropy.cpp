// linear_cross_entropy: the LM head and its loss in one op, loss = cross_entropy(h wᵀ, targets, opt) for
// hidden rows h (N, C) and the head w (V, C) (GPT-2's tied head: wte), without ever holding the (N, V)
// logits or their gradient (200 MB each for GPT-2 at B·T = 1024).
//   z = h wᵀ (N, V);  w_i, W, q_i, ℓ_i as in cross_entropy.cpp;  loss = Σ_i w_i·ℓ_i / W
// Gradient: cross_entropy.cpp gives dz_iv = dloss·(w_i/W)·(p_iv - q_iv), p_i = softmax(z_i), and the
// product (matmul.cpp) gives dh = dz·w (N, C) and dw = dzᵀ·h (V, C). All three are linear in dloss:
//   dh = dloss·G_h,  dw = dloss·G_w,  with G_h, G_w the gradients at dloss = 1 (dz₁ = (w_i/W)(p - q)).
// So the forward runs the rows in chunks of R and, when a gradient is wanted, finishes each chunk's
// gradient while its logits are at hand:
//   z_c (R, V) = h_c wᵀ            one GEMM into a reused scratch buffer
//   lse_c, w_i·ℓ_i                 cross_entropy's forward kernel
//   dz_c (R, V) = dz₁ rows          cross_entropy's backward kernel (dloss = 1) into a second buffer
//   G_h[c] = dz_c·w,  G_w += dz_cᵀ·h_c   two GEMMs, the chunks in order
// and the backward only scales: dh += dloss·G_h, dw += dloss·G_w. This is the gradient-in-forward scheme
// of Liger Kernel's fused linear cross-entropy (Hsu et al. 2024, arXiv:2410.10989, section 3.2). Recomputing
// z in backward instead (keeping only lse) would add a third N·V·C GEMM, the largest product of a small
// GPT's step; here the FLOPs are the unfused pair's.
// Memory: 2·R·V floats of scratch (R·V without a gradient), G_h (N, C), and G_w (V, C) only when w needs a
// gradient (the size of w's own .grad), against 2·N·V for the unfused pair's z and dz.
// Chunk size: each chunk's GEMMs pack all of w again (OpenBLAS packs its operands per call), so small
// chunks cost time. Measured (bench_head, docs/benchmarks.md: N = 240 rows, C = 192, V = 50257, w frozen,
// 1 thread, Zen 4; forward + backward): unfused 117 ms; R = 16: 285, 64: 151, 128: 128, 256: 117 ms.
// The default R fills kHeadChunkFloats (64 MiB) of logits: 333 rows at GPT-2's V, one chunk for an E2E
// batch's ~240 loss rows, 25 for GPT-2's B·T = 8192 (2 × 64 MiB instead of 2 × 1.6 GB).
// Every kernel is an existing one (GEMM, cross_entropy's row kernels, mul's backward for the scaling), so
// CUDA tensors run on the existing launchers and dloss stays a device scalar there. Chunks run in order
// and each GEMM is the thread-count-independent tensor::gemm: results do not depend on the thread count.
// The two products by w, z_c = h_c wᵀ and G_h = dz_c·w, go through weight_gemm (autograd/weight_gemm.h):
// bf16 under the bf16 policy when w is frozen (the tied head of a LoRA run), the logits still fp32.
#include <algorithm>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "autograd/weight_gemm.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::gemm_batched;
using tensor::kParallelGrain;

namespace {

// dx (n) += s[0]·g (n): backward's scaling by dloss s, a device scalar on CUDA (never read on the host).
void scaled_add(float* dx, const float* g, const float* s, int64_t n) {
  const float c = s[0];
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += c * g[i];
}
void cuda_scaled_add(float* dx, const float* g, const float* s, int64_t n) {  // mul's da += dy·b[0]
  cuda::mul_backward(dx, nullptr, g, g, s, n, 1);
}

// One forward's operands and results, raw pointers on one device.
struct HeadRows {
  const float* h = nullptr;                           // (N, C)
  const Tensor* w = nullptr;                          // (V, C), contiguous
  const int32_t* targets = nullptr;                   // (N)
  const float *weights = nullptr, *scales = nullptr;  // (N) w_i and w_i / W
  float *row_loss = nullptr, *lse = nullptr;          // (N)
  float *gh = nullptr, *gw = nullptr;  // (N, C) written, (V, C) zeroed then accumulated; nullptr: not wanted
  int64_t N = 0, C = 0, V = 0, R = 0;
  float eps = 0.f;
};

// The rows in chunks of R: logits, row losses and lse, and (when gh or gw is wanted) dz₁ and its GEMMs.
void head_chunks(Device dev, const HeadRows& a) {
  const int64_t R = std::min(a.R, a.N), C = a.C, V = a.V;
  if (R == 0) return;
  Tensor z = Tensor::empty({R, V}, dev);  // (R, V) logits of the chunk, reused
  const bool grad = a.gh || a.gw;
  Tensor dz = grad ? Tensor::empty({R, V}, dev) : Tensor();  // (R, V) their gradient at dloss = 1
  const Tensor one = Tensor::full(Shape(), 1.f, dev);
  for (int64_t r0 = 0; r0 < a.N; r0 += R) {
    const int64_t n = std::min(R, a.N - r0);
    const float* hc = a.h + r0 * C;  // (n, C)
    // z (n, V) = h_c (n, C) · wᵀ
    weight_gemm(dev, true, n, V, C, hc, C, *a.w, C, 0.f, z.data(), V);
    run(dev, cpu::cross_entropy_forward, cuda::cross_entropy_forward, a.row_loss + r0, a.lse + r0, z.data(),
        a.targets + r0, a.weights + r0, n, V, a.eps);
    if (!grad) continue;
    dz.fill_(0.f);  // the kernel accumulates, and skips rows with w_i = 0
    run(dev, cpu::cross_entropy_backward, cuda::cross_entropy_backward, dz.data(), z.data(), a.lse + r0, a.targets + r0,
        a.scales + r0, one.data(), n, V, a.eps);
    if (a.gh)  // G_h rows (n, C) = dz (n, V) · w (V, C)
      weight_gemm(dev, false, n, C, V, dz.data(), V, *a.w, C, 0.f, a.gh + r0 * C, C);
    if (a.gw)  // G_w (V, C) += dzᵀ (V, n) · h_c (n, C)
      gemm_batched(dev, true, false, V, C, n, 1.f, dz.data(), V, 0, hc, C, 0, 1.f, a.gw, C, 0, 1);
  }
}

struct LinearCrossEntropyOp : Node {
  Tensor h, w, out;  // h contiguous (N, C) rows, w contiguous (V, C), out shape (); all on one device
  Tensor gh, gw;     // (N, C), (V, C): the loss's gradients at dloss = 1 (undefined where not needed)
  void backward() override {
    const float* dy = grad_of(out);  // on CUDA a device scalar: read by the kernel, not here
    if (!dy) return;
    const Device dev = out.device();
    float* dh = grad_sink(h);
    if (dh && gh.defined()) run(dev, scaled_add, cuda_scaled_add, dh, gh.data(), dy, gh.numel());
    float* dw = grad_sink(w);
    if (dw && gw.defined()) run(dev, scaled_add, cuda_scaled_add, dw, gw.data(), dy, gw.numel());
  }
  const char* name() const override { return "linear_cross_entropy"; }
};

}  // namespace

Tensor linear_cross_entropy(const Tensor& h_in, const Tensor& w_in, const std::vector<int32_t>& targets,
                            const CrossEntropyOptions& opt, int64_t chunk_rows) {
  const char* op = "linear_cross_entropy";
  const Device dev = op_device(op, {&h_in, &w_in});
  LR_CHECK(h_in.ndim() >= 2 && h_in.size(-1) > 0, op, ": h ", h_in.shape(), " must be (..., C) with C > 0");
  LR_CHECK(w_in.ndim() == 2 && w_in.size(0) > 0, op, ": w ", w_in.shape(), " must be (V, C) with V > 0");
  LR_CHECK(h_in.size(-1) == w_in.size(1), op, ": h ", h_in.shape(), " and w ", w_in.shape(), " differ in C (",
           h_in.size(-1), " vs ", w_in.size(1), ")");
  LR_CHECK(chunk_rows >= 0, op, ": chunk_rows must be >= 0 (0: automatic), got ", chunk_rows);
  const int64_t C = h_in.size(-1), V = w_in.size(0), N = h_in.numel() / C;
  if (chunk_rows == 0) chunk_rows = std::max<int64_t>(1, kHeadChunkFloats / V);
  Shape logits_shape = h_in.shape();  // (..., V): what the unfused head would have produced
  logits_shape[-1] = V;
  const CrossEntropyRows r = cross_entropy_rows(op, logits_shape, targets, opt, N, V, dev);
  Tensor h = compact(h_in), w = compact(w_in);
  const bool record_node = needs_grad({&h, &w});
  Tensor lse = Tensor::empty({N}, dev), row_loss = Tensor::empty({N}, dev);
  Tensor gh = record_node && h.requires_grad() ? Tensor::empty({N, C}, dev) : Tensor();
  Tensor gw = record_node && w.requires_grad() ? Tensor::zeros({V, C}, dev) : Tensor();  // accumulated
  HeadRows a;
  a.h = h.data();
  a.w = &w;
  a.targets = ints(r.targets);
  a.weights = r.weights.data();
  a.scales = r.scales.data();
  a.row_loss = row_loss.data();
  a.lse = lse.data();
  a.gh = gh.defined() ? gh.data() : nullptr;
  a.gw = gw.defined() ? gw.data() : nullptr;
  a.N = N, a.C = C, a.V = V, a.R = chunk_rows, a.eps = opt.label_smoothing;
  head_chunks(dev, a);
  Tensor out = Tensor::zeros(Shape(), dev);  // W == 0: loss 0 (and zero gradients: every scale is 0)
  if (r.W > 0.0)
    run(dev, cpu::sum_forward, cuda::sum_forward, out.data(), row_loss.data(), N, static_cast<float>(1.0 / r.W));
  if (record_node) {
    auto node = std::make_unique<LinearCrossEntropyOp>();
    node->h = h;
    node->w = w;
    node->out = out;
    node->gh = gh;
    node->gw = gw;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
