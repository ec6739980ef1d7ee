#pragma once
// Small helpers shared by the op files: the device an op runs on, gradient buffers, int uploads.
//
// Device dispatch (docs/cuda.md): an op finds the one device of its inputs with op_device(),
// allocates outputs there, and calls the CPU kernel (autograd/kernels.h) or the cuda:: launcher of the
// same name and arguments (cuda/kernels.h) on raw pointers, in one line (tensor/dispatch.h):
//   run(dev, cpu::gelu_forward, cuda::gelu_forward, y, x, n);
#include <cstring>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "cuda/kernels.h"
#include "tensor/dispatch.h"
#include "tensor/error.h"

namespace lowrank::autograd {

using tensor::Device;
using tensor::run;

// The device shared by every defined input; throws naming the op when they differ or one is Meta.
inline Device op_device(const char* op, std::initializer_list<const Tensor*> ts) {
  Device dev = Device::CPU;
  bool first = true;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    LR_CHECK(t->device() != Device::Meta, op, ": tensor ", t->shape(), " is on the meta device (shapes only)");
    LR_CHECK(first || t->device() == dev, op, ": inputs on different devices (", tensor::device_name(dev), " and ",
             tensor::device_name(t->device()), " for ", t->shape(), "); move them with .to()");
    dev = t->device();
    first = false;
  }
  return dev;
}

// The output's gradient, or nullptr when nothing flowed into it (the node is off the loss's path).
inline const float* grad_of(const Tensor& out) {
  Tensor g = out.grad();
  return g.defined() ? g.data() : nullptr;
}

// Where to accumulate an input's gradient, or nullptr when that input needs none (frozen weights).
// The buffer is allocated on the input's device.
inline float* grad_sink(Tensor& in) { return in.defined() && in.requires_grad() ? in.grad_or_zeros().data() : nullptr; }

// Where a GEMM puts an input's gradient, and with which beta: 1 adds onto the gradient already there (the
// tape's rule: backward accumulates), 0 overwrites a buffer allocated just now, which then needs no zero
// fill of its own (a pass over every activation gradient of a step). p is nullptr when `in` needs no
// gradient. Take a sink right before its GEMM: a second sink on the same tensor is not fresh.
struct GemmSink {
  float* p = nullptr;
  float beta = 1.f;
};
inline GemmSink gemm_sink(Tensor& in) {
  if (!in.defined() || !in.requires_grad()) return {};
  bool fresh = false;
  float* p = in.grad_or_empty(fresh).data();
  return {p, fresh ? 0.f : 1.f};
}

// A contiguous version of x whose gradient still reaches x: x itself, or a recorded copy (reshape).
inline Tensor compact(const Tensor& x) { return x.is_contiguous() ? x : reshape(x, x.shape()); }

// Integer side inputs (embedding ids, targets, key lengths) for a launcher: the int32 values are
// stored bit for bit in a float32 tensor on `dev` (storage is float-only; both are 4 bytes), so the
// buffer lives exactly as long as the Node that holds it. Read them back with ints().
inline Tensor device_ints(const std::vector<int32_t>& v, Device dev) {
  static_assert(sizeof(float) == sizeof(int32_t), "int32 ids are stored in float32 slots");
  Tensor host = Tensor::empty(Shape{static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(host.data(), v.data(), v.size() * sizeof(int32_t));
  return dev == Device::CPU ? host : host.to(dev);
}
inline const int32_t* ints(const Tensor& t) { return reinterpret_cast<const int32_t*>(t.data()); }

// What both cross-entropy ops (cross_entropy.cpp, linear_cross_entropy.cpp) form on the host from the
// targets and options, checked against logits of shape `logits_shape` (N rows of V; errors name `op`),
// then put on `dev`: targets (N) as device ints, w_i (N), w_i / W (N, all 0 when W == 0) and W = Σ w_i.
// Defined in cross_entropy.cpp.
struct CrossEntropyRows {
  Tensor targets, weights, scales;
  double W = 0.0;
};
CrossEntropyRows cross_entropy_rows(const char* op, const Shape& logits_shape, const std::vector<int32_t>& targets,
                                    const CrossEntropyOptions& opt, int64_t N, int64_t V, Device dev);

}  // namespace lowrank::autograd
