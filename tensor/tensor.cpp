#include "tensor/tensor.h"

#include <cstring>

#include "cuda/kernels.h"
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

// The checks zip_strided makes, for the paths that leave the CPU: same shape, and real data.
void check_pair(const Tensor& dst, const Tensor& src, const char* op) {
  LR_CHECK(dst.shape() == src.shape(), op, ": shape mismatch ", dst.shape(), " vs ", src.shape());
  LR_CHECK(dst.device() != Device::Meta && src.device() != Device::Meta, op, ": a meta tensor has no data (",
           device_name(dst.device()), " ", dst.shape(), " and ", device_name(src.device()), " ", src.shape(), ")");
}

// dst = src (add = false) or dst += alpha·src on the device, for two CUDA tensors of one shape.
// Contiguous pairs take the plain launchers (no index math); views go through the strided ones.
void cuda_zip(const Tensor& dst, const Tensor& src, bool add, float alpha) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const bool flat = dst.is_contiguous() && src.is_contiguous();
  if (!add && flat) return copy_floats(dst.data(), Device::CUDA, src.data(), Device::CUDA, static_cast<size_t>(n));
  if constexpr (kCudaBuilt) {
    const int64_t* ds = dst.strides().d.data();
    const int64_t* ss = src.strides().d.data();
    const int64_t* sizes = dst.shape().d.data();
    if (!add) cuda::copy_strided(dst.data(), ds, src.data(), ss, sizes, dst.ndim());
    else if (flat) cuda::scale_backward(dst.data(), src.data(), alpha, n);  // dst += alpha·src
    else cuda::axpy_strided(dst.data(), ds, src.data(), ss, sizes, dst.ndim(), alpha);
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
  Tensor t = empty(shape, device);
  // Threaded for large CPU tensors, a kernel on CUDA: gradient buffers are zero-filled every step.
  if (device != Device::Meta) t.fill_(value);
  return t;
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
  LR_CHECK(device != Device::Meta && this->device() != Device::Meta, "to(", device_name(device), "): tensor ",
           shape_, " on ", device_name(this->device()), ": a meta tensor has no data to move");
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

// ---- in-place ----

void Tensor::copy_(const Tensor& src) {
  if (device() == Device::CPU && src.device() == Device::CPU)
    return zip_strided(*this, src, "copy_", [](float& d, float s) { d = s; });
  check_pair(*this, src, "copy_");
  if (device() == src.device()) return cuda_zip(*this, src, false, 0.f);
  if (numel() == 0) return;
  // Across devices the transfer moves one compact block: a strided source is compacted on its own
  // device first, a strided destination receives a compact copy on its device and scatters it there.
  Tensor s = src.contiguous();
  if (!is_contiguous()) return copy_(s.to(device()));
  copy_floats(data(), device(), s.data(), s.device(), static_cast<size_t>(numel()));
}

void Tensor::add_(const Tensor& src, float alpha) {
  if (device() == Device::CPU && src.device() == Device::CPU)
    return zip_strided(*this, src, "add_", [alpha](float& d, float s) { d += alpha * s; });
  check_pair(*this, src, "add_");
  LR_CHECK(device() == src.device(), "add_: tensors on different devices (", device_name(device()), " ", shape_,
           " += ", device_name(src.device()), " ", src.shape(), "); move one with .to()");
  cuda_zip(*this, src, true, alpha);
}

void Tensor::fill_(float v) {
  if (device() == Device::CPU) return zip_strided(*this, *this, "fill_", [v](float& d, float) { d = v; });
  LR_CHECK(device() != Device::Meta, "fill_: meta tensor ", shape_, " has no data");
  if (numel() == 0) return;
  if (is_contiguous()) {
    if constexpr (kCudaBuilt) cuda::fill(data(), v, numel());
    return;
  }
  // A strided view: every element copies one device scalar holding v (source strides 0).
  if constexpr (kCudaBuilt) {
    const Tensor one = full(Shape{1}, v, device());
    const int64_t zero[kMaxDims] = {0, 0, 0, 0};
    cuda::copy_strided(data(), strides_.d.data(), one.data(), zero, shape_.d.data(), ndim());
  }
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
  LR_CHECK(g.device() == device(), "set_grad: gradient on ", device_name(g.device()), " for a tensor ", shape_,
           " on ", device_name(device()), " (the optimizer reads both on one device)");
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
  if (head_only) copy_floats(v.data(), Device::CPU, t.data(), Device::CUDA, v.size());
  else v = t.to_vector();
  for (size_t i = 0; i < v.size() && i < 8; ++i) os << (i ? ", " : "") << v[i];
  return os << (v.size() > 8 ? ", ...]" : "]");
}

void copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel) {
  if (numel == 0) return;  // empty tensors may have no buffer at all
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, numel * sizeof(float));
    return;
  }
  cuda_copy_floats(dst, dst_dev, src, src_dev, numel);
}

}  // namespace lowrank::tensor
