// Elementwise activations: gelu (GPT-2's tanh approximation), relu, tanh.
//   gelu: y = ½x(1 + tanh u),  u = k(x + a·x³),  k = √(2/π),  a = 0.044715  (tanh u via tensor::fast_tanh)
//         dx += dy · [½(1 + tanh u) + ½x(1 - tanh²u)·k(1 + 3a·x²)]
//   relu: y = max(x, 0);       dx += dy · [x > 0]   (the kink at 0 gets gradient 0)
//   tanh: y = tanh x;          dx += dy · (1 - y²)  (from the saved output, no second tanh)
// Every element is independent, so the loops split over elements with a static schedule.
// CUDA tensors run cuda/activations.cu (tanhf there, fast_tanh here: the tests allow 1e-5 relative).
#include <cmath>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"
#include "tensor/vecmath.h"

namespace lowrank::autograd {

using tensor::kParallelGrain;

namespace {

enum class Act { Gelu, Relu, Tanh };
const char* act_name(Act a) { return a == Act::Gelu ? "gelu" : a == Act::Relu ? "relu" : "tanh"; }

constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluA = 0.044715f;

// One loop per activation: a branch on `act` inside the loop (or a libm call such as std::tanh
// next to fast_tanh) keeps GCC from vectorising it, which made GELU 4x slower than the memory
// bandwidth allows.
// y (n) = act(x (n))
void act_forward(float* y, const float* x, int64_t n, Act act) {
  if (act == Act::Gelu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.f + tensor::fast_tanh(kGeluK * (v + kGeluA * v * v * v)));
    }
  } else if (act == Act::Relu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
  } else {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
  }
}

// dx (n) += dy (n) · act'(x); x is the input (gelu, relu), y the output (tanh).
void act_backward(float* dx, const float* dy, const float* x, const float* y, int64_t n, Act act) {
  if (act == Act::Gelu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      const float t = tensor::fast_tanh(kGeluK * (v + kGeluA * v * v * v));
      const float du = kGeluK * (1.f + 3.f * kGeluA * v * v);
      dx[i] += dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
    }
  } else if (act == Act::Relu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.f ? dy[i] : 0.f;
  } else {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * (1.f - y[i] * y[i]);
  }
}

// The device versions of act_forward / act_backward, same arguments.
void act_forward_cuda(float* y, const float* x, int64_t n, Act act) {
  if constexpr (kCudaBuilt) {
    if (act == Act::Gelu) cuda::gelu_forward(y, x, n);
    if (act == Act::Relu) cuda::relu_forward(y, x, n);
    if (act == Act::Tanh) cuda::tanh_forward(y, x, n);
  }
}

void act_backward_cuda(float* dx, const float* dy, const float* x, const float* y, int64_t n, Act act) {
  if constexpr (kCudaBuilt) {
    if (act == Act::Gelu) cuda::gelu_backward(dx, dy, x, n);
    if (act == Act::Relu) cuda::relu_backward(dx, dy, x, n);
    if (act == Act::Tanh) cuda::tanh_backward(dx, dy, y, n);
  }
}

struct ActivationOp : Node {
  Tensor x, out;  // x contiguous; gelu and relu read x, tanh reads out
  Act act = Act::Gelu;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    if (!dy || !dx) return;
    if (out.device() == Device::CUDA) {
      act_backward_cuda(dx, dy, x.data(), out.data(), x.numel(), act);
    } else {
      act_backward(dx, dy, x.data(), out.data(), x.numel(), act);
    }
  }
  const char* name() const override { return act_name(act); }
};

Tensor activation(const Tensor& x_in, Act act) {
  const Device dev = op_device(act_name(act), {&x_in});
  Tensor x = compact(x_in);
  Tensor out = Tensor::empty(x.shape(), dev);
  if (dev == Device::CUDA) {
    act_forward_cuda(out.data(), x.data(), x.numel(), act);
  } else {
    act_forward(out.data(), x.data(), x.numel(), act);
  }
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

}  // namespace lowrank::autograd
