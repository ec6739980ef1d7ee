// add / sub / mul with row broadcast, and scale.
// b has a's shape or a suffix of it: viewed as a (outer, inner) and b (inner), b repeats over rows.
//   y = a + b:  da += dy,      db += Σ_rows dy
//   y = a - b:  da += dy,      db -= Σ_rows dy
//   y = a * b:  da += dy * b,  db += Σ_rows dy * a
//   y = s * x:  dx += s * dy
// Column sums give each thread a block of columns, so results do not depend on scheduling.
// CUDA tensors run the launchers of the same names (cuda/elementwise.cu) on the same (outer, inner).
#include "autograd/kernels.h"
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
    if (k == Kind::Add)
      for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] + b[j];
    if (k == Kind::Sub)
      for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] - b[j];
    if (k == Kind::Mul)
      for (int64_t j = 0; j < inner; ++j) yr[j] = ar[j] * b[j];
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

}  // namespace

namespace cpu {

// The CPU kernels under the launchers' names and arguments (cuda/kernels.h).
void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward(y, a, b, outer, inner, Kind::Add);
}
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward(y, a, b, outer, inner, Kind::Sub);
}
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward(y, a, b, outer, inner, Kind::Mul);
}
void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward(da, db, dy, nullptr, nullptr, outer, inner, Kind::Add);
}
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward(da, db, dy, nullptr, nullptr, outer, inner, Kind::Sub);
}
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_backward(da, db, dy, a, b, outer, inner, Kind::Mul);
}

// y (n) = s · x
void scale_forward(float* y, const float* x, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = s * x[i];
}

// dx (n) += s · dy
void scale_backward(float* dx, const float* dy, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += s * dy[i];
}

}  // namespace cpu

namespace {

// y = a op b on dev
void run_binary_forward(Device dev, Kind k, float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  if (k == Kind::Add) run(dev, cpu::add_forward, cuda::add_forward, y, a, b, outer, inner);
  if (k == Kind::Sub) run(dev, cpu::sub_forward, cuda::sub_forward, y, a, b, outer, inner);
  if (k == Kind::Mul) run(dev, cpu::mul_forward, cuda::mul_forward, y, a, b, outer, inner);
}

// da, db of y = a op b on dev (either may be nullptr)
void run_binary_backward(Device dev, Kind k, float* da, float* db, const float* dy, const float* a, const float* b,
                         int64_t outer, int64_t inner) {
  if (k == Kind::Add) run(dev, cpu::add_backward, cuda::add_backward, da, db, dy, outer, inner);
  if (k == Kind::Sub) run(dev, cpu::sub_backward, cuda::sub_backward, da, db, dy, outer, inner);
  if (k == Kind::Mul) run(dev, cpu::mul_backward, cuda::mul_backward, da, db, dy, a, b, outer, inner);
}

struct BinaryOp : Node {
  Tensor a, b, out;  // contiguous, on one device
  int64_t outer = 0, inner = 0;
  Kind kind = Kind::Add;
  void backward() override {
    const float* dy = grad_of(out);
    if (!dy) return;
    float *da = grad_sink(a), *db = grad_sink(b);
    run_binary_backward(out.device(), kind, da, db, dy, a.data(), b.data(), outer, inner);
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
  run_binary_forward(dev, kind, out.data(), a.data(), b.data(), outer, inner);
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
    run(out.device(), cpu::scale_backward, cuda::scale_backward, dx, dy, s, out.numel());
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
  run(dev, cpu::scale_forward, cuda::scale_forward, out.data(), x.data(), s, x.numel());
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
