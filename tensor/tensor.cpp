#include "tensor/tensor.h"

#include <cstring>

#include "tensor/error.h"

namespace lowrank::tensor {

// ---- factories ----

Tensor Tensor::empty(const Shape& shape, Device device) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(shape.numel()), device);
  t.slot_ = std::make_shared<GradSlot>();
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  // Threaded for large CPU tensors, a kernel on CUDA: gradient buffers are zero-filled every step.
  if (device != Device::Meta) t.fill_(value);
  return t;
}

Tensor Tensor::from(const std::vector<float>& values, const Shape& shape) {
  LR_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from: ", values.size(), " values for shape ",
           shape);
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, float std, float mean) {
  Tensor t = empty(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = mean + std * rng.normal();
  return t;
}

Tensor Tensor::uniform(const Shape& shape, Rng& rng, float lo, float hi) {
  Tensor t = empty(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(lo, hi);
  return t;
}

// ---- metadata and access ----

Device Tensor::device() const { return storage_ ? storage_->device() : Device::CPU; }

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_.d[i] != 1 && strides_.d[i] != expect) return false;
    expect *= shape_.d[i];
  }
  return true;
}

float* Tensor::data() const {
  LR_CHECK(defined(), "Tensor::data: undefined tensor");
  LR_CHECK(device() != Device::Meta, "Tensor::data: meta tensor ", shape_, " has no data");
  return storage_->data() + offset_;
}

float Tensor::item() const {
  LR_CHECK(numel() == 1, "Tensor::item: needs 1 element, shape is ", shape_);
  return to_vector()[0];
}

float Tensor::at(std::initializer_list<int64_t> idx) const {
  LR_CHECK(static_cast<int>(idx.size()) == ndim(), "Tensor::at: ", idx.size(), " indices for shape ", shape_);
  LR_CHECK(device() == Device::CPU, "Tensor::at: CPU tensors only");
  int64_t off = 0;
  int i = 0;
  for (int64_t v : idx) {
    LR_CHECK(v >= 0 && v < shape_.d[i], "Tensor::at: index ", v, " out of range in dim ", i, " of ", shape_);
    off += v * strides_.d[i++];
  }
  return data()[off];
}

void Tensor::set(std::initializer_list<int64_t> idx, float v) {
  LR_CHECK(static_cast<int>(idx.size()) == ndim(), "Tensor::set: ", idx.size(), " indices for shape ", shape_);
  LR_CHECK(device() == Device::CPU, "Tensor::set: CPU tensors only");
  int64_t off = 0;
  int i = 0;
  for (int64_t x : idx) {
    LR_CHECK(x >= 0 && x < shape_.d[i], "Tensor::set: index ", x, " out of range in dim ", i, " of ", shape_);
    off += x * strides_.d[i++];
  }
  data()[off] = v;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = contiguous();  // compacted on its own device, then one transfer straight into the vector
  if (device() == Device::CPU) return std::vector<float>(c.data(), c.data() + c.numel());
  std::vector<float> out(static_cast<size_t>(c.numel()));
  copy_floats(out.data(), Device::CPU, c.data(), c.device(), out.size());
  return out;
}

// ---- views ----

Tensor Tensor::view(const Shape& shape) const {
  LR_CHECK(shape.numel() == numel(), "view: cannot view ", shape_, " as ", shape);
  LR_CHECK(is_contiguous(), "view: tensor of shape ", shape_, " is not contiguous (use reshape)");
  Tensor t = detach();
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  Tensor t = detach();
  int a = shape_.wrap(d0), b = shape_.wrap(d1);
  std::swap(t.shape_.d[a], t.shape_.d[b]);
  std::swap(t.strides_.d[a], t.strides_.d[b]);
  return t;
}

Tensor Tensor::permute(std::initializer_list<int> dims) const {
  LR_CHECK(static_cast<int>(dims.size()) == ndim(), "permute: ", dims.size(), " dims for shape ", shape_);
  Tensor t = detach();
  bool seen[kMaxDims] = {false, false, false, false};
  int i = 0;
  for (int d : dims) {
    int s = shape_.wrap(d);
    LR_CHECK(!seen[s], "permute: dim ", d, " repeated for shape ", shape_);
    seen[s] = true;
    t.shape_.d[i] = shape_.d[s];
    t.strides_.d[i] = strides_.d[s];
    ++i;
  }
  return t;
}

Tensor Tensor::narrow(int dim, int64_t start, int64_t len) const {
  int d = shape_.wrap(dim);
  LR_CHECK(start >= 0 && len >= 0 && start + len <= shape_.d[d], "narrow: [", start, ", ", start + len,
           ") out of range for dim ", dim, " of ", shape_);
  Tensor t = detach();
  t.offset_ += start * strides_.d[d];
  t.shape_.d[d] = len;
  return t;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, device());
  t.copy_(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  LR_CHECK(device != Device::Meta && this->device() != Device::Meta, "to(", device_name(device), "): tensor ", shape_,
           " on ", device_name(this->device()), ": a meta tensor has no data to move");
  Tensor src = contiguous();  // a transfer moves one compact block: views are compacted where they live
  Tensor t = empty(shape_, device);
  copy_floats(t.data(), device, src.data(), src.device(), static_cast<size_t>(numel()));
  return t;
}

Tensor Tensor::detach() const {
  Tensor t;
  t.storage_ = storage_;
  t.offset_ = offset_;
  t.shape_ = shape_;
  t.strides_ = strides_;
  t.slot_ = std::make_shared<GradSlot>();
  return t;
}

// ---- autograd state ----

bool Tensor::requires_grad() const { return slot_ && slot_->requires_grad; }

// A tensor that becomes trainable is written from then on by the optimizer through raw pointers, which
// do not count as writes: its storage forgets what was derived from it now (a bf16 copy made while it was
// frozen, tensor/bf16.h), so that copy cannot outlive the training; frozen again, it gets a fresh one.
Tensor& Tensor::requires_grad_(bool on) {
  LR_CHECK(slot_, "requires_grad_: undefined tensor");
  if (on && !slot_->requires_grad) mark_written();
  slot_->requires_grad = on;
  return *this;
}

uint64_t Tensor::version() const { return storage_ ? storage_->version() : 0; }

void Tensor::mark_written() const {
  if (storage_) storage_->bump_version();
}

Tensor Tensor::grad() const { return slot_ ? slot_->grad : Tensor(); }

Tensor& Tensor::grad_or_zeros() {
  LR_CHECK(slot_, "grad: undefined tensor");
  if (!slot_->grad.defined()) slot_->grad = zeros(shape_, device());
  return slot_->grad;
}

Tensor& Tensor::grad_or_empty(bool& fresh) {
  LR_CHECK(slot_, "grad: undefined tensor");
  fresh = !slot_->grad.defined();
  if (fresh) slot_->grad = empty(shape_, device());
  return slot_->grad;
}

void Tensor::set_grad(const Tensor& g) {
  LR_CHECK(g.shape() == shape_, "set_grad: gradient shape ", g.shape(), " does not match tensor ", shape_);
  LR_CHECK(slot_, "set_grad: undefined tensor");
  LR_CHECK(g.device() == device(), "set_grad: gradient on ", device_name(g.device()), " for a tensor ", shape_, " on ",
           device_name(device()), " (the optimizer reads both on one device)");
  slot_->grad = g.contiguous();  // ops write gradients as compact row-major buffers
}

void Tensor::zero_grad() {
  if (slot_ && slot_->grad.defined()) slot_->grad.fill_(0.f);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor" << t.shape() << " " << device_name(t.device()) << " [";
  if (t.device() == Device::Meta) return os << "no data]";
  // Only 8 values are shown: a compact device tensor downloads just those (plus one to know "...").
  const bool head_only = t.device() == Device::CUDA && t.is_contiguous() && t.numel() > 9;
  std::vector<float> v(head_only ? 9 : 0);
  if (head_only)
    copy_floats(v.data(), Device::CPU, t.data(), Device::CUDA, v.size());
  else
    v = t.to_vector();
  for (size_t i = 0; i < v.size() && i < 8; ++i) os << (i ? ", " : "") << v[i];
  return os << (v.size() > 8 ? ", ...]" : "]");
}

}  // namespace lowrank::tensor
