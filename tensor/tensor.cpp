#include "tensor/tensor.h"

#include <cstring>

#include "tensor/error.h"

namespace lowrank::tensor {

namespace {

// A strided view padded to 4 dims (leading dims of size 1), for simple nested loops.
struct Strided4 {
  int64_t n[4];
  int64_t s[4];
  float* p;
};

Strided4 pad4(const Tensor& t) {
  Strided4 v{{1, 1, 1, 1}, {0, 0, 0, 0}, t.data()};
  int off = 4 - t.ndim();
  for (int i = 0; i < t.ndim(); ++i) {
    v.n[off + i] = t.shape().d[i];
    v.s[off + i] = t.strides().d[i];
  }
  return v;
}

// Calls f(dst_elem, src_elem) over every logical element of two same-shape CPU tensors.
template <typename F>
void zip_strided(const Tensor& dst, const Tensor& src, const char* op, F f) {
  LR_CHECK(dst.shape() == src.shape(), op, ": shape mismatch ", dst.shape(), " vs ", src.shape());
  LR_CHECK(dst.device() == Device::CPU && src.device() == Device::CPU, op, ": CPU tensors only here");
  if (dst.is_contiguous() && src.is_contiguous()) {
    float* d = dst.data();
    const float* s = src.data();
    const int64_t n = dst.numel();
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) f(d[i], s[i]);
    return;
  }
  // Strided views (slices of the fused qkv, transposes): rows split across threads; each thread
  // owns whole rows of dst, so the result does not depend on the thread count.
  Strided4 a = pad4(dst), b = pad4(src);
  const int64_t n = dst.numel();
#pragma omp parallel for collapse(3) if (n > (1 << 16)) schedule(static)
  for (int64_t i0 = 0; i0 < a.n[0]; ++i0)
    for (int64_t i1 = 0; i1 < a.n[1]; ++i1)
      for (int64_t i2 = 0; i2 < a.n[2]; ++i2) {
        float* pa = a.p + i0 * a.s[0] + i1 * a.s[1] + i2 * a.s[2];
        const float* pb = b.p + i0 * b.s[0] + i1 * b.s[1] + i2 * b.s[2];
        for (int64_t i3 = 0; i3 < a.n[3]; ++i3) f(pa[i3 * a.s[3]], pb[i3 * b.s[3]]);
      }
}

}  // namespace

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
  if (device == Device::Meta) return empty(shape, device);
  Tensor t = empty(shape, Device::CPU);
  t.fill_(value);  // threaded for large tensors: gradient buffers are zero-filled every step
  return device == Device::CPU ? t : t.to(device);
}

Tensor Tensor::from(const std::vector<float>& values, const Shape& shape) {
  LR_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from: ", values.size(),
           " values for shape ", shape);
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
  Tensor c = device() == Device::CPU ? contiguous() : to(Device::CPU);
  return std::vector<float>(c.data(), c.data() + c.numel());
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
  if (device() != Device::CPU) {
    LR_CHECK(is_contiguous(), "clone: strided copies on ", device_name(device()), " are not supported, shape ", shape_);
    Tensor t = empty(shape_, device());
    copy_floats(t.data(), device(), data(), device(), static_cast<size_t>(numel()));
    return t;
  }
  Tensor t = empty(shape_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  LR_CHECK(is_contiguous(), "to(", device_name(device), "): make the tensor contiguous first, shape ", shape_);
  Tensor t = empty(shape_, device);
  copy_floats(t.data(), device, data(), this->device(), static_cast<size_t>(numel()));
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

// ---- in-place ----

void Tensor::copy_(const Tensor& src) {
  zip_strided(*this, src, "copy_", [](float& d, float s) { d = s; });
}

void Tensor::add_(const Tensor& src, float alpha) {
  zip_strided(*this, src, "add_", [alpha](float& d, float s) { d += alpha * s; });
}

void Tensor::fill_(float v) {
  zip_strided(*this, *this, "fill_", [v](float& d, float) { d = v; });
}

// ---- autograd state ----

bool Tensor::requires_grad() const { return slot_ && slot_->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  LR_CHECK(slot_, "requires_grad_: undefined tensor");
  slot_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return slot_ ? slot_->grad : Tensor(); }

Tensor& Tensor::grad_or_zeros() {
  LR_CHECK(slot_, "grad: undefined tensor");
  if (!slot_->grad.defined()) slot_->grad = zeros(shape_, device());
  return slot_->grad;
}

void Tensor::set_grad(const Tensor& g) {
  LR_CHECK(g.shape() == shape_, "set_grad: gradient shape ", g.shape(), " does not match tensor ", shape_);
  LR_CHECK(slot_, "set_grad: undefined tensor");
  slot_->grad = g.contiguous();  // ops write gradients as compact row-major buffers
}

void Tensor::zero_grad() {
  if (slot_ && slot_->grad.defined()) slot_->grad.fill_(0.f);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor" << t.shape() << " " << device_name(t.device()) << " [";
  std::vector<float> v = t.to_vector();
  for (size_t i = 0; i < v.size() && i < 8; ++i) os << (i ? ", " : "") << v[i];
  return os << (v.size() > 8 ? ", ...]" : "]");
}

void copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel) {
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, numel * sizeof(float));
    return;
  }
  cuda_copy_floats(dst, dst_dev, src, src_dev, numel);
}

}  // namespace lowrank::tensor
