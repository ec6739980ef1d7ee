// Elementwise activations (CPU reference: autograd/activations.cpp):
//   gelu: y = ½x(1 + tanh u),  u = k(x + a·x³),  k = √(2/π),  a = 0.044715
//         dx += dy · [½(1 + tanh u) + ½x(1 - tanh²u)·k(1 + 3a·x²)]
//   relu: y = max(x, 0);       dx += dy · [x > 0]   (the kink at 0 gets gradient 0)
//   tanh: y = tanh x;          dx += dy · (1 - y²)  (from the saved output)
//   reciprocal: y = 1 / x;     dx += -dy · y²       (from the saved output)
// Plain grid-stride loops. tanhf (not the fast __tanhf intrinsic, and no --use_fast_math) keeps
// the results within a couple of ulps of the CPU's std::tanh.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

using detail::blocks_for;
using detail::kThreads;

enum class Act { Gelu, Relu, Tanh, Reciprocal };

constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluA = 0.044715f;

template <Act A>
__global__ void act_forward_kernel(float* y, const float* x, int64_t n) {
  LR_GRID_STRIDE(i, n) {
    const float v = x[i];
    if (A == Act::Gelu) y[i] = 0.5f * v * (1.f + tanhf(kGeluK * (v + kGeluA * v * v * v)));
    if (A == Act::Relu) y[i] = v > 0.f ? v : 0.f;
    if (A == Act::Tanh) y[i] = tanhf(v);
    if (A == Act::Reciprocal) y[i] = 1.f / v;
  }
}

// in = x for gelu and relu, y (the saved output) for tanh and reciprocal
template <Act A>
__global__ void act_backward_kernel(float* dx, const float* dy, const float* in, int64_t n) {
  LR_GRID_STRIDE(i, n) {
    const float v = in[i];
    if (A == Act::Gelu) {
      const float t = tanhf(kGeluK * (v + kGeluA * v * v * v));
      const float du = kGeluK * (1.f + 3.f * kGeluA * v * v);
      dx[i] += dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
    }
    if (A == Act::Relu) dx[i] += v > 0.f ? dy[i] : 0.f;
    if (A == Act::Tanh) dx[i] += dy[i] * (1.f - v * v);
    if (A == Act::Reciprocal) dx[i] -= dy[i] * v * v;
  }
}

template <Act A>
void forward(float* y, const float* x, int64_t n) {
  if (n == 0) return;
  act_forward_kernel<A><<<blocks_for(n), kThreads, 0, stream()>>>(y, x, n);
  LR_CUDA_LAUNCHED();
}

template <Act A>
void backward(float* dx, const float* dy, const float* in, int64_t n) {
  if (n == 0) return;
  act_backward_kernel<A><<<blocks_for(n), kThreads, 0, stream()>>>(dx, dy, in, n);
  LR_CUDA_LAUNCHED();
}

}  // namespace

void gelu_forward(float* y, const float* x, int64_t n) { forward<Act::Gelu>(y, x, n); }
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) { backward<Act::Gelu>(dx, dy, x, n); }
void relu_forward(float* y, const float* x, int64_t n) { forward<Act::Relu>(y, x, n); }
void relu_backward(float* dx, const float* dy, const float* x, int64_t n) { backward<Act::Relu>(dx, dy, x, n); }
void tanh_forward(float* y, const float* x, int64_t n) { forward<Act::Tanh>(y, x, n); }
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) { backward<Act::Tanh>(dx, dy, y, n); }
void reciprocal_forward(float* y, const float* x, int64_t n) { forward<Act::Reciprocal>(y, x, n); }
void reciprocal_backward(float* dx, const float* dy, const float* y, int64_t n) {
  backward<Act::Reciprocal>(dx, dy, y, n);
}

}  // namespace lowrank::cuda
