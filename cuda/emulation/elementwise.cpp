// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/elementwise.cu,
// activations.cu, dropout.cu and reduce.cu, with their contracts: forward launchers overwrite,
// backward launchers ACCUMULATE, a nullptr gradient is skipped, the column sums of the broadcast
// operand and the sums of sum/sumsq are formed in double like the kernels, and sum_backward reads
// dy as a device scalar. Plain loops: written to be read, not to be fast.
#include <cmath>

#include "cuda/emulation/tagged.h"
#include "cuda/kernels.h"
#include "tensor/philox.h"

namespace lowrank::cuda {

namespace {

enum class Kind { Add, Sub, Mul };

template <Kind K>
void binary_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  float* yh = emu::arg(y, n, "binary forward y");
  const float* ah = emu::arg(a, n, "binary forward a");
  const float* bh = emu::arg(b, inner, "binary forward b");
  for (int64_t i = 0; i < n; ++i) {
    const float bv = bh[i % inner];
    yh[i] = K == Kind::Add ? ah[i] + bv : K == Kind::Sub ? ah[i] - bv : ah[i] * bv;
  }
}

// da (outer, inner) += dy (·b for mul);  db (inner) += ±Σ_rows dy (·a for mul), summed in double.
template <Kind K>
void binary_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer,
                     int64_t inner) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  const float* g = emu::arg(dy, n, "binary backward dy");
  if (float* dah = emu::opt_arg(da, n, "binary backward da")) {
    const float* bh = K == Kind::Mul ? emu::arg(b, inner, "mul backward b") : nullptr;
    for (int64_t i = 0; i < n; ++i) dah[i] += K == Kind::Mul ? g[i] * bh[i % inner] : g[i];
  }
  if (float* dbh = emu::opt_arg(db, inner, "binary backward db")) {
    const float* ah = K == Kind::Mul ? emu::arg(a, n, "mul backward a") : nullptr;
    for (int64_t c = 0; c < inner; ++c) {
      double s = 0.0;
      for (int64_t r = 0; r < outer; ++r) s += K == Kind::Mul ? g[r * inner + c] * ah[r * inner + c] : g[r * inner + c];
      dbh[c] += static_cast<float>(K == Kind::Sub ? -s : s);
    }
  }
}

// y = f(x) elementwise (forward) or dx += f(dy, in) (backward), n elements.
template <typename F>
void unary(float* y, const float* x, int64_t n, const char* op, F f) {
  if (n == 0) return;
  float* yh = emu::arg(y, n, op);
  const float* xh = emu::arg(x, n, op);
  for (int64_t i = 0; i < n; ++i) yh[i] = f(xh[i]);
}

template <typename F>
void unary_backward(float* dx, const float* dy, const float* in, int64_t n, const char* op, F f) {
  if (n == 0) return;
  float* dxh = emu::arg(dx, n, op);
  const float* g = emu::arg(dy, n, op);
  const float* v = emu::arg(in, n, op);
  for (int64_t i = 0; i < n; ++i) dxh[i] += f(g[i], v[i]);
}

constexpr float kGeluK = 0.7978845608028654f;  // √(2/π), as activations.cu
constexpr float kGeluA = 0.044715f;

float gelu(float v) { return 0.5f * v * (1.f + std::tanh(kGeluK * (v + kGeluA * v * v * v))); }

float gelu_grad(float g, float v) {
  const float t = std::tanh(kGeluK * (v + kGeluA * v * v * v));
  const float du = kGeluK * (1.f + 3.f * kGeluA * v * v);
  return g * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
}

// out[0] = factor · Σ x (or Σ x²), terms and sum in double like reduce.cu's partials.
template <bool Square>
void sum_launch(float* out, const float* x, int64_t n, float factor) {
  float* o = emu::arg(out, 1, "sum out");  // n == 0 still writes 0, like the kernel
  const float* xh = emu::arg(x, n, "sum x");
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = xh[i];
    acc += Square ? v * v : v;
  }
  o[0] = static_cast<float>(acc * factor);
}

}  // namespace

void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Add>(y, a, b, outer, inner);
}
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Sub>(y, a, b, outer, inner);
}
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Mul>(y, a, b, outer, inner);
}
void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward<Kind::Add>(da, db, dy, nullptr, nullptr, outer, inner);
}
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward<Kind::Sub>(da, db, dy, nullptr, nullptr, outer, inner);
}
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer,
                  int64_t inner) {
  binary_backward<Kind::Mul>(da, db, dy, a, b, outer, inner);
}

void scale_forward(float* y, const float* x, float s, int64_t n) {
  unary(y, x, n, "scale_forward", [s](float v) { return s * v; });
}
void scale_backward(float* dx, const float* dy, float s, int64_t n) {
  unary_backward(dx, dy, dy, n, "scale_backward", [s](float g, float) { return s * g; });
}

void gelu_forward(float* y, const float* x, int64_t n) { unary(y, x, n, "gelu_forward", gelu); }
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  unary_backward(dx, dy, x, n, "gelu_backward", gelu_grad);
}
void relu_forward(float* y, const float* x, int64_t n) {
  unary(y, x, n, "relu_forward", [](float v) { return v > 0.f ? v : 0.f; });
}
void relu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  unary_backward(dx, dy, x, n, "relu_backward", [](float g, float v) { return v > 0.f ? g : 0.f; });
}
void tanh_forward(float* y, const float* x, int64_t n) {
  unary(y, x, n, "tanh_forward", [](float v) { return std::tanh(v); });
}
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  unary_backward(dx, dy, y, n, "tanh_backward", [](float g, float v) { return g * (1.f - v * v); });
}

// Dropout: forward writes the mask (0 or 1/(1-p)) and y from the call's key through the function
// the kernel and the CPU op call (tensor/philox.h), one group of 4 elements at a time.
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key) {
  if (n == 0) return;
  float* yh = emu::arg(y, n, "dropout_forward y");
  float* mh = emu::arg(mask, n, "dropout_forward mask");
  const float* xh = emu::arg(x, n, "dropout_forward x");
  const float scale = 1.f / (1.f - p);
  for (int64_t g = 0; g < tensor::philox::dropout_groups(n); ++g)
    tensor::philox::dropout_group(yh, mh, xh, n, static_cast<uint64_t>(g), key, p, scale);
}
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  unary_backward(dx, dy, mask, n, "dropout_backward", [](float g, float m) { return g * m; });
}

void sum_forward(float* out, const float* x, int64_t n, float factor) { sum_launch<false>(out, x, n, factor); }
void sumsq_forward(float* out, const float* x, int64_t n) { sum_launch<true>(out, x, n, 1.f); }

void sum_backward(float* dx, const float* dy, int64_t n, float factor) {
  if (n == 0) return;
  const float g = emu::arg(dy, 1, "sum_backward dy")[0] * factor;  // the device scalar, read "on the device"
  float* dxh = emu::arg(dx, n, "sum_backward dx");
  for (int64_t i = 0; i < n; ++i) dxh[i] += g;
}

}  // namespace lowrank::cuda
