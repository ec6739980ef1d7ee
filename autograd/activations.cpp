// Elementwise activations: gelu (GPT-2's tanh approximation), relu, tanh, and reciprocal (DoRA's m / ‖V‖).
//   gelu: y = ½x(1 + tanh u),  u = k(x + a·x³),  k = √(2/π),  a = 0.044715  (tanh u by Eigen's vectorised tanh)
//         dx += dy · [½(1 + tanh u) + ½x(1 - tanh²u)·k(1 + 3a·x²)]
//   relu: y = max(x, 0);       dx += dy · [x > 0]   (the kink at 0 gets gradient 0)
//   tanh: y = tanh x;          dx += dy · (1 - y²)  (from the saved output, no second tanh)
//   reciprocal: y = 1 / x;     dx += -dy · y²       (from the saved output)
// Every element is independent, so the loops split over elements with a static schedule.
// CUDA tensors run cuda/activations.cu (tanhf there, Eigen's tanh here: the tests allow 1e-5 relative).
#include <algorithm>
#include <cmath>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/eigen_core.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace cpu {

namespace {

constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluA = 0.044715f;

// GELU runs as Eigen array expressions over blocks of kBlock elements (threads split the blocks):
// Eigen vectorises tanh (its ptanh) for the CPU's vector width, where GCC 12 left the
// `omp parallel for simd` loop around fast_tanh scalar (docs/benchmarks.md, "Vectorisation").
// relu and tanh keep plain loops (one branch-free expression each).
constexpr int64_t kBlock = 4096;
using ArrIn = Eigen::Map<const Eigen::ArrayXf>;
using ArrOut = Eigen::Map<Eigen::ArrayXf>;

void gelu_block_forward(float* y, const float* x, int64_t n) {  // y (n) = gelu(x (n))
  const ArrIn v(x, n);
  ArrOut(y, n) = 0.5f * v * (1.f + (kGeluK * (v + kGeluA * v.cube())).tanh());
}

void gelu_block_backward(float* dx, const float* dy, const float* x, int64_t n) {  // dx (n) += dy · gelu'(x)
  const ArrIn v(x, n);
  const Eigen::ArrayXf t = (kGeluK * (v + kGeluA * v.cube())).tanh();
  const Eigen::ArrayXf du = kGeluK * (1.f + 3.f * kGeluA * v.square());
  ArrOut(dx, n) += ArrIn(dy, n) * (0.5f * (1.f + t) + 0.5f * v * (1.f - t.square()) * du);
}

}  // namespace

void gelu_forward(float* y, const float* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b)
    gelu_block_forward(y + b * kBlock, x + b * kBlock, std::min(kBlock, n - b * kBlock));
}

void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b)
    gelu_block_backward(dx + b * kBlock, dy + b * kBlock, x + b * kBlock, std::min(kBlock, n - b * kBlock));
}

void relu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_backward(float* dx, const float* dy, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.f ? dy[i] : 0.f;
}

void tanh_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {  // from the saved output y
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * (1.f - y[i] * y[i]);
}

void reciprocal_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / x[i];
}

void reciprocal_backward(float* dx, const float* dy, const float* y, int64_t n) {  // from the saved output y
  // LAB 9 begin: reciprocal_backward (the magnitude's 1 / ‖V‖)
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] -= dy[i] * y[i] * y[i];
  // LAB 9 end
}

}  // namespace cpu

namespace {

enum class Act { Gelu, Relu, Tanh, Reciprocal };
const char* act_name(Act a) {
  return a == Act::Gelu ? "gelu" : a == Act::Relu ? "relu" : a == Act::Tanh ? "tanh" : "reciprocal";
}

// y (n) = act(x (n)) on dev
void act_forward(Device dev, Act act, float* y, const float* x, int64_t n) {
  if (act == Act::Gelu) run(dev, cpu::gelu_forward, cuda::gelu_forward, y, x, n);
  if (act == Act::Relu) run(dev, cpu::relu_forward, cuda::relu_forward, y, x, n);
  if (act == Act::Tanh) run(dev, cpu::tanh_forward, cuda::tanh_forward, y, x, n);
  if (act == Act::Reciprocal) run(dev, cpu::reciprocal_forward, cuda::reciprocal_forward, y, x, n);
}

// dx (n) += dy (n) · act'(x) on dev; x is the input (gelu, relu), y the output (tanh, reciprocal).
void act_backward(Device dev, Act act, float* dx, const float* dy, const float* x, const float* y, int64_t n) {
  if (act == Act::Gelu) run(dev, cpu::gelu_backward, cuda::gelu_backward, dx, dy, x, n);
  if (act == Act::Relu) run(dev, cpu::relu_backward, cuda::relu_backward, dx, dy, x, n);
  if (act == Act::Tanh) run(dev, cpu::tanh_backward, cuda::tanh_backward, dx, dy, y, n);
  if (act == Act::Reciprocal) run(dev, cpu::reciprocal_backward, cuda::reciprocal_backward, dx, dy, y, n);
}

struct ActivationOp : Node {
  Tensor x, out;  // x contiguous; gelu and relu read x, tanh and reciprocal read out
  Act act = Act::Gelu;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    act_backward(out.device(), act, dx, dy, x.data(), out.data(), x.numel());
  }
  const char* name() const override { return act_name(act); }
};

Tensor activation(const Tensor& x_in, Act act) {
  const Device dev = op_device(act_name(act), {&x_in});
  Tensor x = compact(x_in);
  Tensor out = Tensor::empty(x.shape(), dev);
  act_forward(dev, act, out.data(), x.data(), x.numel());
  if (needs_grad({&x})) {
    auto node = std::make_unique<ActivationOp>();
    node->x = x;
    node->out = out;
    node->act = act;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace

Tensor gelu(const Tensor& x) { return activation(x, Act::Gelu); }
Tensor relu(const Tensor& x) { return activation(x, Act::Relu); }
Tensor tanh(const Tensor& x) { return activation(x, Act::Tanh); }
Tensor reciprocal(const Tensor& x) { return activation(x, Act::Reciprocal); }

}  // namespace lowrank::autograd
