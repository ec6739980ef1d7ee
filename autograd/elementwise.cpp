// add / sub / mul with row broadcast, and scale.
// b has a's shape or a suffix of it: viewed as a (outer, inner) and b (inner), b repeats over rows.
//   y = a + b:  da += dy,      db += Σ_rows dy
//   y = a - b:  da += dy,      db -= Σ_rows dy
//   y = a * b:  da += dy * b,  db += Σ_rows dy * a
//   y = s * x:  dx += s * dy
// Column sums give each thread a block of columns, so results do not depend on scheduling.
// CUDA tensors run the launchers of the same names (cuda/elementwise.cu) on the same (outer, inner).
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace {

enum class Kind { Add, Sub, Mul };
const char* kind_name(Kind k) { return k == Kind::Add ? "add" : k == Kind::Sub ? "sub" : "mul"; }

// inner = b.numel() when b's shape is a suffix of a's; throws otherwise.
int64_t broadcast_inner(const Tensor& a, const Tensor& b, const char* op) {
  bool ok = b.ndim() <= a.ndim();
  for (int i = 1; ok && i <= b.ndim(); ++i) ok = a.size(-i) == b.size(-i);
  LR_CHECK(ok, op, ": cannot broadcast ", b.shape(), " onto ", a.shape(), " (b must equal a trailing part of a)");
  return b.numel();
}

// y (outer, inner) = a op b
void binary_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner, Kind k) {
#pragma omp parallel for schedule(static) if (outer * inner > kParallelGrain)
  for (int64_t r = 0; r < outer; ++r) {
    const float* ar = a + r * inner;
    float* yr = y + r * inner;
    if (k == Kind::Add) for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] + b[j];
    if (k == Kind::Sub) for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] - b[j];
    if (k == Kind::Mul) for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] * b[j];
  }
}

void binary_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer,
                     int64_t inner, Kind k) {
  // LAB 1 begin: binary_backward (da, db of add, sub and mul with row broadcast)
  const int64_t n = outer * inner;
  if (da) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) da[i] += k == Kind::Mul ? dy[i] * b[i % inner] : dy[i];
  }
  if (db) {
    const float sign = k == Kind::Sub ? -1.f : 1.f;
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t j = 0; j < inner; ++j) {
      float acc = 0.f;
      for (int64_t r = 0; r < outer; ++r) acc += dy[r * inner + j] * (k == Kind::Mul ? a[r * inner + j] : 1.f);
      db[j] += sign * acc;
    }
  }
  // LAB 1 end
}

// The device versions of binary_forward / binary_backward: one launcher per kind.
void binary_forward_cuda(float* y, const float* a, const float* b, int64_t outer, int64_t inner, Kind k) {
  if constexpr (kCudaBuilt) {
    if (k == Kind::Add) cuda::add_forward(y, a, b, outer, inner);
    if (k == Kind::Sub) cuda::sub_forward(y, a, b, outer, inner);
    if (k == Kind::Mul) cuda::mul_forward(y, a, b, outer, inner);
  }
}

void binary_backward_cuda(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer,
                          int64_t inner, Kind k) {
  if constexpr (kCudaBuilt) {
    if (k == Kind::Add) cuda::add_backward(da, db, dy, outer, inner);
    if (k == Kind::Sub) cuda::sub_backward(da, db, dy, outer, inner);
    if (k == Kind::Mul) cuda::mul_backward(da, db, dy, a, b, outer, inner);
  }
}

struct BinaryOp : Node {
  Tensor a, b, out;  // contiguous, on one device
  int64_t outer = 0, inner = 0;
  Kind kind = Kind::Add;
  void backward() override {
    const float* dy = grad_of(out);
    if (!dy) return;
    float *da = grad_sink(a), *db = grad_sink(b);
    if (out.device() == Device::CUDA) {
      binary_backward_cuda(da, db, dy, a.data(), b.data(), outer, inner, kind);
    } else {
      binary_backward(da, db, dy, a.data(), b.data(), outer, inner, kind);
    }
  }
  const char* name() const override { return kind_name(kind); }
};

Tensor binary(const Tensor& a_in, const Tensor& b_in, Kind kind) {
  const char* op = kind_name(kind);
  const Device dev = op_device(op, {&a_in, &b_in});
  const int64_t inner = broadcast_inner(a_in, b_in, op);
  Tensor a = compact(a_in), b = compact(b_in);
  Tensor out = Tensor::empty(a.shape(), dev);
  const int64_t outer = inner ? a.numel() / inner : 0;
  if (dev == Device::CUDA) {
    binary_forward_cuda(out.data(), a.data(), b.data(), outer, inner, kind);
  } else {
    binary_forward(out.data(), a.data(), b.data(), outer, inner, kind);
  }
  if (needs_grad({&a, &b})) {
    auto node = std::make_unique<BinaryOp>();
    node->a = a;
    node->b = b;
    node->out = out;
    node->outer = outer;
    node->inner = inner;
    node->kind = kind;
    record(std::move(node), out);
  }
  return out;
}

struct ScaleOp : Node {
  Tensor x, out;
  float s = 1.f;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    const int64_t n = out.numel();
    if (out.device() == Device::CUDA) {
      if constexpr (kCudaBuilt) cuda::scale_backward(dx, dy, s, n);
      return;
    }
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dx[i] += s * dy[i];
  }
  const char* name() const override { return "scale"; }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, Kind::Add); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, Kind::Sub); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, Kind::Mul); }

Tensor scale(const Tensor& x_in, float s) {
  const Device dev = op_device("scale", {&x_in});
  Tensor x = compact(x_in);
  Tensor out = Tensor::empty(x.shape(), dev);
  const float* xp = x.data();
  float* y = out.data();
  const int64_t n = x.numel();
  if (dev == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::scale_forward(y, xp, s, n);
  } else {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) y[i] = s * xp[i];
  }
  if (needs_grad({&x})) {
    auto node = std::make_unique<ScaleOp>();
    node->x = x;
    node->out = out;
    node->s = s;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
