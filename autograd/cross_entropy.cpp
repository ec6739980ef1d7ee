// cross_entropy: fused log_softmax + NLL; logits x viewed as (N, V) rows, one target t_i per row.
//   log p_iv = x_iv - lse_i,   lse_i = m_i + log Σ_v exp(x_iv - m_i),   m_i = max_v x_iv
//   w_i = mask_i (1 without a mask) · [t_i != ignore_index],   W = Σ_i w_i
//   q_i = (1-eps)·onehot(t_i) + eps/V   (label smoothing; Σ_v q_iv = 1)
//   ℓ_i = -Σ_v q_iv·log p_iv = lse_i - (1-eps)·x_it - (eps/V)·Σ_v x_iv
//   loss = Σ_i w_i·ℓ_i / W
// Backward: ∂lse_i/∂x_iv = p_iv and Σ_v q_iv = 1, so ∂ℓ_i/∂x_iv = p_iv - q_iv and
//   dlogits_iv += dloss·(w_i/W)·(p_iv - q_iv)
// W == 0 (every row ignored or masked out) gives loss 0 and a zero gradient.
// Memory: the node keeps the logits and lse (N) only; p is recomputed in backward as
// exp(x - lse), never stored as an (N, V) matrix. Rows with w_i = 0 are skipped in both passes.
// Targets, w_i and w_i/W are formed and checked on the host, then put on the logits' device; the
// per-row losses w_i·ℓ_i are reduced by sum's kernel (chunk sums in double, in order: thread-count
// independent) with factor 1/W. On CUDA (cuda/cross_entropy.cu) the loss stays on the device and
// backward reads dloss as a device scalar there: no host round trip per call.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/eigen_core.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace {

// w (N): the row weights w_i, after checking targets, mask and label smoothing against logits of shape
// `ls` (N rows of V); errors name `op`.
std::vector<double> row_weights(const char* op, const Shape& ls, const std::vector<int32_t>& targets,
                                const CrossEntropyOptions& opt, int64_t N, int64_t V) {
  LR_CHECK(static_cast<int64_t>(targets.size()) == N, op, ": ", targets.size(), " targets for logits ", ls, " (", N,
           " rows)");
  LR_CHECK(opt.mask.empty() || static_cast<int64_t>(opt.mask.size()) == N, op, ": mask has ", opt.mask.size(),
           " entries for logits ", ls, " (", N, " rows)");
  const float eps = opt.label_smoothing;
  LR_CHECK(eps >= 0.f && eps < 1.f, op, ": label_smoothing must be in [0, 1), got ", eps);
  std::vector<double> w(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[i];
    const float m = opt.mask.empty() ? 1.f : opt.mask[i];
    LR_CHECK(std::isfinite(m) && m >= 0.f, op, ": mask[", i, "] = ", m, " must be finite and >= 0");
    if (t == opt.ignore_index) continue;  // w_i = 0
    LR_CHECK(t >= 0 && t < V, op, ": target ", t, " at row ", i, " is outside [0, ", V, ") for logits ", ls,
             " (ignore_index is ", opt.ignore_index, ")");
    w[i] = m;
  }
  return w;
}

// w_i / W for every row (all 0 when W == 0), as float: the backward's per-row factor.
std::vector<float> row_scales(const std::vector<double>& w, double W) {
  std::vector<float> r(w.size(), 0.f);
  if (W > 0.0)
    for (size_t i = 0; i < w.size(); ++i) r[i] = static_cast<float>(w[i] / W);
  return r;
}

// A host float vector as an (n) tensor on `dev`.
Tensor upload(const std::vector<float>& v, Device dev) {
  Tensor t = Tensor::from(v, Shape{static_cast<int64_t>(v.size())});
  return dev == Device::CPU ? t : t.to(dev);
}

// Per-row loops as Eigen array expressions: Eigen vectorises max, sum and exp (its pexp, ~1 ulp) for
// the CPU's vector width, where GCC 12 left hand-written lane loops around fast_exp scalar (measured:
// no ymm instruction in this file's forward). Each row is reduced in Eigen's fixed order, on one
// thread, so results do not depend on the thread count.
using RowIn = Eigen::Map<const Eigen::ArrayXf>;

float row_max(const float* x, int64_t V) { return RowIn(x, V).maxCoeff(); }

// Σ_v exp(x_v - m), and Σ_v x_v into sum_x.
float row_sum_exp(const float* x, int64_t V, float m, float& sum_x) {
  const RowIn a(x, V);
  sum_x = a.sum();
  return (a - m).exp().sum();
}

// dx_v += c·(exp(x_v - lse) - q_off)
void row_grad(float* __restrict dx, const float* __restrict x, int64_t V, float lse, float c, float q_off) {
  Eigen::Map<Eigen::ArrayXf> d(dx, V);
  d += c * ((RowIn(x, V) - lse).exp() - q_off);
}

}  // namespace

namespace cpu {

// lse (N) and row_loss (N) = w_i·ℓ_i from x (N, V); rows with w_i == 0 are skipped (lse and loss 0).
void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float eps) {
  // LAB 3 begin: cross_entropy_forward (log-sum-exp, smoothed loss)
#pragma omp parallel for schedule(static) if (N * V > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    lse[n] = 0.f;
    row_loss[n] = 0.f;
    if (w[n] == 0.f) continue;
    const float* xr = x + n * V;
    const float m = row_max(xr, V);
    float sum_x = 0.f;
    const float s = row_sum_exp(xr, V, m, sum_x);
    const double l = static_cast<double>(m) + std::log(static_cast<double>(s));
    lse[n] = static_cast<float>(l);
    const double loss = l - (1.0 - eps) * xr[targets[n]] - (eps / static_cast<double>(V)) * sum_x;
    row_loss[n] = static_cast<float>(w[n] * loss);
  }
  // LAB 3 end
}

// dx (N, V) += c_i·(p_iv - q_iv) with p = exp(x - lse) and c_i = dloss[0]·row_scale_i, row_scale_i = w_i/W
// (0: row skipped).
void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets, const float* row_scale,
                            const float* dloss, int64_t N, int64_t V, float eps) {
  // LAB 3 begin: cross_entropy_backward (p - q per kept row)
  const float q_off = eps / static_cast<float>(V);  // q_iv off the target
#pragma omp parallel for schedule(static) if (N * V > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float c = dloss[0] * row_scale[n];
    if (c == 0.f) continue;
    const float* xr = x + n * V;
    float* dxr = dx + n * V;
    row_grad(dxr, xr, V, lse[n], c, q_off);
    dxr[targets[n]] -= c * (1.f - eps);
  }
  // LAB 3 end
}

}  // namespace cpu

namespace {

struct CrossEntropyOp : Node {
  Tensor logits, out;  // logits contiguous (N, V) rows; out shape (); all on one device
  Tensor lse;          // (N) logsumexp per row (0 on skipped rows)
  Tensor targets;      // (N) int32 targets (device_ints)
  Tensor row_scale;    // (N) w_i / W
  int64_t N = 0, V = 0;
  float eps = 0.f;
  void backward() override {
    const float* dy = grad_of(out);  // on CUDA a device scalar: read by the kernel, not here
    float* dx = grad_sink(logits);
    if (!dy || !dx) return;
    run(logits.device(), cpu::cross_entropy_backward, cuda::cross_entropy_backward, dx, logits.data(), lse.data(),
        ints(targets), row_scale.data(), dy, N, V, eps);
  }
  const char* name() const override { return "cross_entropy"; }
};

}  // namespace

// Targets, row weights and scales of either cross-entropy op (autograd/op_util.h), on `dev`.
CrossEntropyRows cross_entropy_rows(const char* op, const Shape& logits_shape, const std::vector<int32_t>& targets,
                                    const CrossEntropyOptions& opt, int64_t N, int64_t V, Device dev) {
  const std::vector<double> w = row_weights(op, logits_shape, targets, opt, N, V);
  CrossEntropyRows r;
  for (double wi : w) r.W += wi;
  r.targets = device_ints(targets, dev);
  r.weights = upload(std::vector<float>(w.begin(), w.end()), dev);  // exact: w_i are the mask's floats
  r.scales = upload(row_scales(w, r.W), dev);
  return r;
}

Tensor cross_entropy(const Tensor& logits_in, const std::vector<int32_t>& targets, const CrossEntropyOptions& opt) {
  const Device dev = op_device("cross_entropy", {&logits_in});
  LR_CHECK(logits_in.ndim() >= 1 && logits_in.size(-1) > 0, "cross_entropy: logits ", logits_in.shape(),
           " need a non-empty last dim V");
  const int64_t V = logits_in.size(-1), N = logits_in.numel() / V;
  const CrossEntropyRows r = cross_entropy_rows("cross_entropy", logits_in.shape(), targets, opt, N, V, dev);
  Tensor logits = compact(logits_in);
  Tensor lse = Tensor::empty({N}, dev), row_loss = Tensor::empty({N}, dev);
  run(dev, cpu::cross_entropy_forward, cuda::cross_entropy_forward, row_loss.data(), lse.data(), logits.data(),
      ints(r.targets), r.weights.data(), N, V, opt.label_smoothing);
  Tensor out = Tensor::zeros(Shape(), dev);  // W == 0: loss 0
  if (r.W > 0.0)
    run(dev, cpu::sum_forward, cuda::sum_forward, out.data(), row_loss.data(), N, static_cast<float>(1.0 / r.W));
  if (needs_grad({&logits})) {
    auto node = std::make_unique<CrossEntropyOp>();
    node->logits = logits;
    node->out = out;
    node->lse = lse;
    node->targets = r.targets;
    node->row_scale = r.scales;
    node->N = N;
    node->V = V;
    node->eps = opt.label_smoothing;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
