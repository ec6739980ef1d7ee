// Views and joins. A view op returns a handle over the same storage (no copy) with a fresh
// autograd slot; its backward applies the same view to x's gradient buffer and adds dy into it:
//   transpose/permute/slice:  view(dx) += dy
//   reshape:                  dx (as out's shape) += dy   (copies in forward only if x is strided)
//   concat:                   dx_i += dy[slice i]
// Everything here is Tensor-level (view, contiguous, copy_, add_ on strided views), so the same code
// runs on CPU and CUDA tensors: the device only has to be the same for every input.
#include <numeric>

#include "autograd/op_util.h"
#include "autograd/ops.h"

namespace lowrank::autograd {

namespace {

// Holds x and out plus a function that maps x-shaped tensors to out-shaped views.
template <typename ViewFn>
struct ViewOp : Node {
  Tensor x, out;
  ViewFn view;
  const char* op = "view";
  ViewOp(Tensor x_, Tensor out_, ViewFn v, const char* name) : x(x_), out(out_), view(v), op(name) {}
  void backward() override {
    Tensor dy = out.grad();
    if (!dy.defined() || !x.requires_grad()) return;
    view(x.grad_or_zeros()).add_(dy);
  }
  const char* name() const override { return op; }
};

template <typename ViewFn>
Tensor make_view(const Tensor& x, ViewFn view, const char* name) {
  Tensor out = view(x);  // raw view: shares storage, no autograd slot
  if (needs_grad({&x})) record(std::make_unique<ViewOp<ViewFn>>(x, out, view, name), out);
  return out;
}

struct ConcatOp : Node {
  std::vector<Tensor> xs;
  Tensor out;
  int dim = 0;
  void backward() override {
    Tensor dy = out.grad();
    if (!dy.defined()) return;
    int64_t off = 0;
    for (Tensor& x : xs) {
      const int64_t len = x.size(dim);
      if (x.requires_grad()) x.grad_or_zeros().add_(dy.narrow(dim, off, len));
      off += len;
    }
  }
  const char* name() const override { return "concat"; }
};

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  LR_CHECK(shape.numel() == x.numel(), "reshape: cannot reshape ", x.shape(), " to ", shape);
  op_device("reshape", {&x});  // any device with data (meta tensors have nothing to copy)
  // Forward: a view when x is contiguous, else a compact copy. Backward: x's gradient buffer is
  // always contiguous, so the same function views it as `shape` without a copy.
  return make_view(
      x, [shape](const Tensor& t) { return t.contiguous().view(shape); }, "reshape");
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  return make_view(
      x, [d0, d1](const Tensor& t) { return t.transpose(d0, d1); }, "transpose");
}

Tensor permute(const Tensor& x, std::initializer_list<int> dims) {
  LR_CHECK(static_cast<int>(dims.size()) == x.ndim(), "permute: ", dims.size(), " dims for shape ", x.shape());
  std::array<int, tensor::kMaxDims> p{0, 1, 2, 3};
  std::copy(dims.begin(), dims.end(), p.begin());
  const int n = x.ndim();
  return make_view(
      x,
      [p, n](const Tensor& t) {
        if (n == 2) return t.permute({p[0], p[1]});
        if (n == 3) return t.permute({p[0], p[1], p[2]});
        return t.permute({p[0], p[1], p[2], p[3]});
      },
      "permute");
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t len) {
  x.narrow(dim, start, len);  // validates before anything is recorded
  return make_view(
      x, [dim, start, len](const Tensor& t) { return t.narrow(dim, start, len); }, "slice");
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  LR_CHECK(!xs.empty(), "concat: no tensors");
  const Tensor& first = xs[0];
  const int d = first.shape().wrap(dim);
  Shape s = first.shape();
  s[d] = 0;
  const Device dev = op_device("concat", {&first});
  for (const Tensor& x : xs) {
    op_device("concat", {&first, &x});
    bool ok = x.ndim() == first.ndim();
    for (int i = 0; ok && i < x.ndim(); ++i) ok = i == d || x.size(i) == first.size(i);
    LR_CHECK(ok, "concat: shapes ", first.shape(), " and ", x.shape(), " differ outside dim ", dim);
    s[d] += x.size(d);
  }
  Tensor out = Tensor::empty(s, dev);
  int64_t off = 0;
  for (const Tensor& x : xs) {
    out.narrow(d, off, x.size(d)).copy_(x);
    off += x.size(d);
  }
  bool grad = false;
  for (const Tensor& x : xs) grad = grad || needs_grad({&x});
  if (grad) {
    auto node = std::make_unique<ConcatOp>();
    node->xs = xs;
    node->out = out;
    node->dim = d;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
