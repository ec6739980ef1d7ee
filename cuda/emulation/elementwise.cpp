// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/elementwise.cu,
// activations.cu, dropout.cu and reduce.cu. Each launcher checks that its pointers are device
// pointers and that the range it touches lies inside one live device allocation, then runs the CPU
// reference kernel of the same name and arguments (autograd/kernels.h) on the untagged pointers: the
// emulation checks the dispatch and the launch arguments, the CPU kernels carry the math.
#include "autograd/kernels.h"
#include "cuda/emulation/tagged.h"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace cpu = autograd::cpu;
using emu::arg;
using emu::opt_arg;

void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  cpu::add_forward(arg(y, outer * inner, "add y"), arg(a, outer * inner, "add a"), arg(b, inner, "add b"), outer,
                   inner);
}
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  cpu::sub_forward(arg(y, outer * inner, "sub y"), arg(a, outer * inner, "sub a"), arg(b, inner, "sub b"), outer,
                   inner);
}
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  cpu::mul_forward(arg(y, outer * inner, "mul y"), arg(a, outer * inner, "mul a"), arg(b, inner, "mul b"), outer,
                   inner);
}
void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  cpu::add_backward(opt_arg(da, outer * inner, "add_backward da"), opt_arg(db, inner, "add_backward db"),
                    arg(dy, outer * inner, "add_backward dy"), outer, inner);
}
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  cpu::sub_backward(opt_arg(da, outer * inner, "sub_backward da"), opt_arg(db, inner, "sub_backward db"),
                    arg(dy, outer * inner, "sub_backward dy"), outer, inner);
}
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer, int64_t inner) {
  cpu::mul_backward(opt_arg(da, outer * inner, "mul_backward da"), opt_arg(db, inner, "mul_backward db"),
                    arg(dy, outer * inner, "mul_backward dy"), arg(a, outer * inner, "mul_backward a"),
                    arg(b, inner, "mul_backward b"), outer, inner);
}
void scale_forward(float* y, const float* x, float s, int64_t n) {
  cpu::scale_forward(arg(y, n, "scale y"), arg(x, n, "scale x"), s, n);
}
void scale_backward(float* dx, const float* dy, float s, int64_t n) {
  cpu::scale_backward(arg(dx, n, "scale_backward dx"), arg(dy, n, "scale_backward dy"), s, n);
}

void gelu_forward(float* y, const float* x, int64_t n) {
  cpu::gelu_forward(arg(y, n, "gelu y"), arg(x, n, "gelu x"), n);
}
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  cpu::gelu_backward(arg(dx, n, "gelu_backward dx"), arg(dy, n, "gelu_backward dy"), arg(x, n, "gelu_backward x"), n);
}
void relu_forward(float* y, const float* x, int64_t n) {
  cpu::relu_forward(arg(y, n, "relu y"), arg(x, n, "relu x"), n);
}
void relu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  cpu::relu_backward(arg(dx, n, "relu_backward dx"), arg(dy, n, "relu_backward dy"), arg(x, n, "relu_backward x"), n);
}
void tanh_forward(float* y, const float* x, int64_t n) {
  cpu::tanh_forward(arg(y, n, "tanh y"), arg(x, n, "tanh x"), n);
}
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  cpu::tanh_backward(arg(dx, n, "tanh_backward dx"), arg(dy, n, "tanh_backward dy"), arg(y, n, "tanh_backward y"), n);
}
void reciprocal_forward(float* y, const float* x, int64_t n) {
  cpu::reciprocal_forward(arg(y, n, "reciprocal y"), arg(x, n, "reciprocal x"), n);
}
void reciprocal_backward(float* dx, const float* dy, const float* y, int64_t n) {
  cpu::reciprocal_backward(arg(dx, n, "reciprocal_backward dx"), arg(dy, n, "reciprocal_backward dy"),
                           arg(y, n, "reciprocal_backward y"), n);
}

void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key) {
  cpu::dropout_forward(arg(y, n, "dropout y"), arg(mask, n, "dropout mask"), arg(x, n, "dropout x"), n, p, key);
}
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  cpu::dropout_backward(arg(dx, n, "dropout_backward dx"), arg(dy, n, "dropout_backward dy"),
                        arg(mask, n, "dropout_backward mask"), n);
}

// dy is a device scalar: read there by the launcher, as by the kernel.
void sum_forward(float* out, const float* x, int64_t n, float factor) {
  cpu::sum_forward(arg(out, 1, "sum out"), arg(x, n, "sum x"), n, factor);
}
void sum_backward(float* dx, const float* dy, int64_t n, float factor) {
  cpu::sum_backward(arg(dx, n, "sum_backward dx"), arg(dy, 1, "sum_backward dy"), n, factor);
}

// out[0] = Σ x² with squares and sum in double, as reduce.cu's partials (the CPU sum clip_grad_norm uses).
void sumsq_forward(float* out, const float* x, int64_t n) {
  arg(out, 1, "sumsq out")[0] = static_cast<float>(cpu::sumsq(arg(x, n, "sumsq x"), n));
}

}  // namespace lowrank::cuda
