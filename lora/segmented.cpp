#include "lora/segmented.h"

#include <cstring>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "tensor/error.h"
#include "tensor/gemm.h"

namespace lowrank::lora {

namespace cpu {

void lora_segmented_forward(float* y, const float* x, const int32_t* row_slot, int64_t N, int64_t T, int64_t in,
                            int64_t out, const SegmentDelta* deltas, int64_t n_slots) {
  std::vector<float> xa, h, ya;  // gathered rows (M, in), x_a Aᵀ (M, R), its update (M, out)
  std::vector<int64_t> rows;
  for (int64_t a = 0; a < n_slots; ++a) {
    const SegmentDelta& d = deltas[a];
    if (!d.A) continue;
    rows.clear();
    for (int64_t n = 0; n < N; ++n)
      if (row_slot[n] == a) rows.push_back(n);
    if (rows.empty()) continue;
    const int64_t M = static_cast<int64_t>(rows.size()) * T;
    const bool run = rows.back() - rows.front() + 1 == static_cast<int64_t>(rows.size());  // consecutive
    const float* xs = x + rows.front() * T * in;
    if (!run) {  // gather: row i of the block is batch row rows[i]
      xa.resize(static_cast<size_t>(M * in));
      for (size_t i = 0; i < rows.size(); ++i)
        std::memcpy(xa.data() + static_cast<int64_t>(i) * T * in, x + rows[i] * T * in, sizeof(float) * T * in);
      xs = xa.data();
    }
    h.resize(static_cast<size_t>(M * d.R));
    tensor::gemm(false, true, M, d.R, in, 1.f, xs, in, d.A, in, 0.f, h.data(), d.R);  // (M, in)·(R, in)ᵀ
    if (run) {  // straight into y's block: y_a += scale · h Bᵀ
      tensor::gemm(false, true, M, out, d.R, d.scale, h.data(), d.R, d.B, d.R, 1.f, y + rows.front() * T * out, out);
      continue;
    }
    ya.resize(static_cast<size_t>(M * out));
    tensor::gemm(false, true, M, out, d.R, d.scale, h.data(), d.R, d.B, d.R, 0.f, ya.data(), out);
    for (size_t i = 0; i < rows.size(); ++i) {  // scatter-add back to the rows
      float* yr = y + rows[i] * T * out;
      const float* src = ya.data() + static_cast<int64_t>(i) * T * out;
      for (int64_t j = 0; j < T * out; ++j) yr[j] += src[j];
    }
  }
}

}  // namespace cpu

namespace {

// On a device: two GEMMs (cuBLAS, through tensor::gemm_batched) per run of consecutive rows that share
// an adapter, straight on x's and y's rows; scattered rows of one adapter cost a pair of GEMMs each.
void segmented_runs(Device dev, float* y, const float* x, const std::vector<int32_t>& rows, int64_t T, int64_t in,
                    int64_t out, const std::vector<cpu::SegmentDelta>& d) {
  for (size_t n = 0; n < rows.size();) {
    size_t e = n + 1;
    while (e < rows.size() && rows[e] == rows[n]) ++e;
    const int32_t s = rows[n];
    if (s >= 0 && d[static_cast<size_t>(s)].A) {
      const cpu::SegmentDelta& a = d[static_cast<size_t>(s)];
      const int64_t M = static_cast<int64_t>(e - n) * T, first = static_cast<int64_t>(n) * T;
      Tensor h = Tensor::empty({M, a.R}, dev);  // (M, R) = x_run Aᵀ
      tensor::gemm_batched(dev, false, true, M, a.R, in, 1.f, x + first * in, in, 0, a.A, in, 0, 0.f, h.data(), a.R, 0,
                           1);
      tensor::gemm_batched(dev, false, true, M, out, a.R, a.scale, h.data(), a.R, 0, a.B, a.R, 0, 1.f, y + first * out,
                           out, 0, 1);
    }
    n = e;
  }
}

nn::Linear meta_linear(const nn::Linear& base) {  // its shape on the meta device: no storage allocated
  Rng unused(0);
  return nn::Linear(base.in_features(), base.out_features(), false, nn::Init{unused, Device::Meta});
}
}  // namespace

std::unique_ptr<nn::Linear> shared_linear(const nn::Linear& base) {
  auto m = std::make_unique<nn::Linear>(meta_linear(base));
  m->weight = base.weight;
  m->bias = base.bias;
  return m;
}

SegmentedLinear::SegmentedLinear(const nn::Linear& base, std::shared_ptr<SlotTable> t,
                                 std::shared_ptr<const SetStatus> s)
    : nn::Linear(meta_linear(base)), table(std::move(t)), status(std::move(s)) {
  weight = base.weight;  // shared with the base: merging into one merges into both
  bias = base.bias;
}

Tensor SegmentedLinear::forward(const Tensor& x, const nn::Context& ctx) {
  Tensor y = autograd::linear(x, weight, bias);
  if (!ctx.row_adapters) return y;
  const std::vector<int32_t>& rows = *ctx.row_adapters;
  const int64_t N = static_cast<int64_t>(rows.size()), in = in_features(), out = out_features();
  LR_CHECK(!autograd::grad_enabled(), "adapter rows: inference only (run under autograd::NoGradGuard)");
  LR_CHECK(status->active.empty(), "adapter rows: adapter '", status->active,
           "' is merged (activate(\"\") before a mixed batch)");
  LR_CHECK(N > 0 && x.numel() % (N * in) == 0, "adapter rows: ", N, " row adapters for input ", x.shape());
  const int64_t n_slots = static_cast<int64_t>(table->deltas.size());
  for (int64_t n = 0; n < N; ++n) {
    const int32_t s = rows[static_cast<size_t>(n)];
    LR_CHECK(s == -1 || (s >= 0 && s < static_cast<int32_t>(status->loaded.size()) && status->loaded[s]),
             "adapter rows: row ", n, " names slot ", s, ", which holds no adapter");
    LR_CHECK(s == -1 || !status->embedding[s], "adapter rows: row ", n, " uses slot ", s,
             ", an adapter of the token embedding (wte): served merged only (activate it)");
  }
  std::vector<cpu::SegmentDelta> d(static_cast<size_t>(n_slots));
  for (int64_t a = 0; a < n_slots; ++a) {
    const ModuleDelta& m = table->deltas[static_cast<size_t>(a)];
    if (m.A.defined()) d[static_cast<size_t>(a)] = {m.A.data(), m.B.data(), m.A.size(0), m.scale};
  }
  Tensor xc = x.contiguous();
  const int64_t T = x.numel() / (N * in);
  if (x.device() == Device::CPU)
    cpu::lora_segmented_forward(y.data(), xc.data(), rows.data(), N, T, in, out, d.data(), n_slots);
  else
    segmented_runs(x.device(), y.data(), xc.data(), rows, T, in, out, d);
  return y;
}

}  // namespace lowrank::lora
