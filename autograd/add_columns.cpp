// add_columns: y (..., W) plus scaled parts written into disjoint column ranges:
//   out[..., o_j : o_j + w_j] = y[..., o_j : o_j + w_j] + s · part_j     part_j (..., w_j)
//   out = y everywhere else
// Backward (out is linear in y and in each part):
//   dy += dout,   dpart_j += s · dout[..., o_j : o_j + w_j]
// Why an op of its own: LoRA on GPT-2's fused c_attn adds scale·(x Aᵀ)Bᵀ to the q and v thirds of
// the (N, 3C) output. Built from zeros (for k) + concat + scale + add it costs four (N, 3C) tensors
// and their gradients per layer (340 MB of a GPT-2 step at T = 1024); here it is one.
// On CUDA the same steps are Tensor-level ops on column views (copy_, add_ with alpha, both strided),
// so no launcher of its own is needed: one pass per part instead of one fused pass, same memory.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace {

struct ColumnPart {
  float* p;  // (N, w) contiguous
  int64_t off, w;
};

// out (N, W) = y, then out[:, off:off+w] += s · part for every part.
void add_columns_forward(float* out, const float* y, const std::vector<ColumnPart>& parts, int64_t N, int64_t W,
                         float s) {
#pragma omp parallel for schedule(static) if (N * W > tensor::kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    float* o = out + n * W;
    std::copy(y + n * W, y + (n + 1) * W, o);
    for (const ColumnPart& c : parts) {
      const float* pr = c.p + n * c.w;
      for (int64_t j = 0; j < c.w; ++j) o[c.off + j] += s * pr[j];
    }
  }
}

// dpart (N, w) += s · dout[:, off:off+w]
void add_columns_backward(float* dpart, const float* dout, const ColumnPart& c, int64_t N, int64_t W, float s) {
#pragma omp parallel for schedule(static) if (N * c.w > tensor::kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < c.w; ++j) dpart[n * c.w + j] += s * dout[n * W + c.off + j];
}

// The device forward: out (N, W) = y, then out[:, off:off+w] += s · part (a strided column view).
void add_columns_forward_cuda(Tensor& out, const Tensor& y, const std::vector<Tensor>& parts,
                              const std::vector<int64_t>& offsets, int64_t N, int64_t W, float s) {
  out.copy_(y);
  Tensor rows = out.view({N, W});
  for (size_t j = 0; j < parts.size(); ++j) {
    const int64_t w = parts[j].size(-1);
    rows.narrow(1, offsets[j], w).add_(parts[j].view({N, w}), s);
  }
}

struct AddColumnsOp : Node {
  Tensor y, out;
  std::vector<Tensor> parts;
  std::vector<int64_t> offsets;
  int64_t N = 0, W = 0;
  float s = 1.f;
  // dy += dout;  dpart_j (N, w) += s · dout[:, off:off+w] through a strided view of dout (out's gradient).
  void backward_cuda() {
    if (grad_sink(y)) y.grad().view({N, W}).add_(out.grad().view({N, W}), 1.f);
    Tensor drows = out.grad().view({N, W});
    for (size_t j = 0; j < parts.size(); ++j) {
      if (!parts[j].requires_grad()) continue;
      const int64_t w = parts[j].size(-1);
      parts[j].grad_or_zeros().view({N, w}).add_(drows.narrow(1, offsets[j], w), s);
    }
  }
  void backward() override {
    const float* dout = grad_of(out);
    if (!dout) return;
    if (out.device() == Device::CUDA) return backward_cuda();
    if (float* dy = grad_sink(y)) {
#pragma omp parallel for schedule(static) if (N * W > tensor::kParallelGrain)
      for (int64_t i = 0; i < N * W; ++i) dy[i] += dout[i];
    }
    for (size_t j = 0; j < parts.size(); ++j)
      if (float* dp = grad_sink(parts[j]))
        add_columns_backward(dp, dout, ColumnPart{nullptr, offsets[j], parts[j].size(-1)}, N, W, s);
  }
  const char* name() const override { return "add_columns"; }
};

// Parts must match y in every dim but the last and fit in disjoint column ranges of y.
void check_add_columns(const Tensor& y, const std::vector<Tensor>& parts, const std::vector<int64_t>& offsets) {
  LR_CHECK(parts.size() == offsets.size(), "add_columns: ", parts.size(), " parts but ", offsets.size(), " offsets");
  LR_CHECK(y.ndim() >= 1, "add_columns: y must have at least 1 dim, got ", y.shape());
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (size_t j = 0; j < parts.size(); ++j) {
    const Tensor& p = parts[j];
    LR_CHECK(p.ndim() == y.ndim(), "add_columns: part ", j, " ", p.shape(), " and y ", y.shape(), " differ in rank");
    for (int d = 0; d + 1 < y.ndim(); ++d)
      LR_CHECK(p.size(d) == y.size(d), "add_columns: part ", j, " ", p.shape(), " does not match y ", y.shape(),
               " in dim ", d);
    LR_CHECK(offsets[j] >= 0 && offsets[j] + p.size(-1) <= y.size(-1), "add_columns: part ", j, " ", p.shape(),
             " at column ", offsets[j], " does not fit in y ", y.shape());
    ranges.push_back({offsets[j], offsets[j] + p.size(-1)});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t j = 1; j < ranges.size(); ++j)
    LR_CHECK(ranges[j].first >= ranges[j - 1].second, "add_columns: column ranges [", ranges[j - 1].first, ", ",
             ranges[j - 1].second, ") and [", ranges[j].first, ", ", ranges[j].second, ") overlap");
}

}  // namespace

Tensor add_columns(const Tensor& y_in, const std::vector<Tensor>& parts_in, const std::vector<int64_t>& offsets,
                   float s) {
  const Device dev = op_device("add_columns", {&y_in});
  for (const Tensor& p : parts_in) op_device("add_columns", {&y_in, &p});
  check_add_columns(y_in, parts_in, offsets);
  Tensor y = compact(y_in);
  std::vector<Tensor> parts;
  std::vector<ColumnPart> cols;
  for (size_t j = 0; j < parts_in.size(); ++j) {
    parts.push_back(compact(parts_in[j]));
    cols.push_back({parts.back().data(), offsets[j], parts.back().size(-1)});
  }
  const int64_t W = y.size(-1), N = W > 0 ? y.numel() / W : 0;
  Tensor out = Tensor::empty(y.shape(), dev);
  if (dev == Device::CUDA) {
    add_columns_forward_cuda(out, y, parts, offsets, N, W, s);
  } else {
    add_columns_forward(out.data(), y.data(), cols, N, W, s);
  }
  bool rec = needs_grad({&y});
  for (const Tensor& p : parts) rec = rec || needs_grad({&p});
  if (rec) {
    auto node = std::make_unique<AddColumnsOp>();
    node->y = y;
    node->out = out;
    node->parts = parts;
    node->offsets = offsets;
    node->N = N;
    node->W = W;
    node->s = s;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
