#pragma once
// Tensor: a cheap handle (shape, strides, offset) over shared float32 storage on a device.
// Copying a Tensor copies the handle, never the data; clone()/contiguous()/to() copy explicitly.
// Autograd state (requires_grad, .grad) lives in a GradSlot made with the handle and shared by
// its copies; raw views made here (view/transpose/permute/narrow/detach) get a fresh slot, so
// gradients do not flow through them: the recorded versions of those views are in autograd/ops.h.
#include <initializer_list>
#include <memory>
#include <ostream>
#include <vector>

#include "tensor/random.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace lowrank::tensor {

struct GradSlot;

class Tensor {
 public:
  Tensor() = default;

  // ---- factories (contiguous, fresh storage) ----
  static Tensor empty(const Shape& shape, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from(const std::vector<float>& values, const Shape& shape);
  static Tensor randn(const Shape& shape, Rng& rng, float std = 1.f, float mean = 0.f);
  static Tensor uniform(const Shape& shape, Rng& rng, float lo, float hi);

  // ---- metadata ----
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return shape_.ndim; }
  int64_t size(int dim) const { return shape_[dim]; }
  int64_t numel() const { return shape_.numel(); }
  Device device() const;
  bool is_contiguous() const;
  bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }

  // ---- element access (CPU) ----
  float* data() const;  // first element; shallow handle, so const handles still point at mutable data
  float item() const;   // the single value of a 1-element tensor
  float at(std::initializer_list<int64_t> idx) const;
  void set(std::initializer_list<int64_t> idx, float v);
  std::vector<float> to_vector() const;  // row-major copy of the logical elements

  // ---- raw views and copies (not recorded on the tape) ----
  Tensor view(const Shape& shape) const;  // same data, new shape; needs a contiguous tensor
  Tensor transpose(int d0, int d1) const;
  Tensor permute(std::initializer_list<int> dims) const;
  Tensor narrow(int dim, int64_t start, int64_t len) const;
  Tensor contiguous() const;  // *this if already contiguous, else a compact copy
  Tensor clone() const;       // always a fresh compact copy, without autograd state
  Tensor to(Device device) const;
  Tensor detach() const;  // same data, no autograd state

  // ---- in-place (any strides, same shape); each counts as a write of the storage (below) ----
  void copy_(const Tensor& src);
  void add_(const Tensor& src, float alpha = 1.f);  // this += alpha * src
  void fill_(float v);

  // ---- writes: the storage's version counter (tensor/storage.h) ----
  uint64_t version() const;   // writes of the storage so far (0 when undefined)
  void mark_written() const;  // after writing a parameter's values through data(): drops derived copies
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // ---- autograd state ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;      // undefined Tensor when nothing was accumulated yet
  Tensor& grad_or_zeros();  // the gradient buffer, allocated as zeros on first use
  // The gradient buffer for a writer that can overwrite it: on first use allocated uninitialised and
  // `fresh` set (the caller must then write every element, e.g. a GEMM with beta = 0), else the
  // existing buffer to add into (`fresh` false).
  Tensor& grad_or_empty(bool& fresh);
  void set_grad(const Tensor& g);
  void zero_grad();                                     // zero the buffer if it exists (keeps the allocation)
  const GradSlot* slot() const { return slot_.get(); }  // identity of this tensor for autograd

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  Shape strides_;
  std::shared_ptr<GradSlot> slot_;
};

struct GradSlot {
  bool requires_grad = false;
  Tensor grad;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Copies between any two devices (CPU<->CUDA hooks live in cuda/ when built with it).
void copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel);

}  // namespace lowrank::tensor

namespace lowrank {
using tensor::Device;
using tensor::Rng;
using tensor::Shape;
using tensor::Tensor;
}  // namespace lowrank
