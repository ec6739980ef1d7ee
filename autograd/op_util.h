#pragma once
// Small helpers shared by the op files: device checks and gradient buffers.
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "tensor/error.h"

namespace lowrank::autograd {

// Throws unless every defined tensor lives on the CPU (CUDA kernels are dispatched in cuda/).
inline void require_cpu(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    LR_CHECK(!t->defined() || t->device() == tensor::Device::CPU, op, ": tensor ", t->shape(),
             " is on ", tensor::device_name(t->device()), "; this op has no kernel for that device");
}

// The output's gradient, or nullptr when nothing flowed into it (the node is off the loss's path).
inline const float* grad_of(const Tensor& out) {
  Tensor g = out.grad();
  return g.defined() ? g.data() : nullptr;
}

// Where to accumulate an input's gradient, or nullptr when that input needs none (frozen weights).
inline float* grad_sink(Tensor& in) {
  return in.defined() && in.requires_grad() ? in.grad_or_zeros().data() : nullptr;
}

// A contiguous version of x whose gradient still reaches x: x itself, or a recorded copy (reshape).
inline Tensor compact(const Tensor& x) { return x.is_contiguous() ? x : reshape(x, x.shape()); }

}  // namespace lowrank::autograd
