// Tensor's in-place writes (copy_, add_, fill_) and copy_floats, the one host/device transfer that
// to(), to_vector() and printing go through (tensor.cpp). CPU pairs run as loops over strided views
// here; CUDA pairs go to the device hooks that tensor/storage.h declares and cuda/tensor_hooks.cpp
// implements (tensor/ never includes cuda/), transfers to cuda_copy_floats.
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
  const int64_t* ds = dst.strides().d.data();
  const int64_t* ss = src.strides().d.data();
  const int64_t* sizes = dst.shape().d.data();
  if (!add)
    cuda_copy_strided(dst.data(), ds, src.data(), ss, sizes, dst.ndim());
  else if (flat)
    cuda_axpy_floats(dst.data(), src.data(), alpha, n);
  else
    cuda_axpy_strided(dst.data(), ds, src.data(), ss, sizes, dst.ndim(), alpha);
}

}  // namespace

// ---- in-place ----

void Tensor::copy_(const Tensor& src) {
  mark_written();
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
  mark_written();
  if (device() == Device::CPU && src.device() == Device::CPU)
    return zip_strided(*this, src, "add_", [alpha](float& d, float s) { d += alpha * s; });
  check_pair(*this, src, "add_");
  LR_CHECK(device() == src.device(), "add_: tensors on different devices (", device_name(device()), " ", shape_,
           " += ", device_name(src.device()), " ", src.shape(), "); move one with .to()");
  cuda_zip(*this, src, true, alpha);
}

void Tensor::fill_(float v) {
  mark_written();
  if (device() == Device::CPU) return zip_strided(*this, *this, "fill_", [v](float& d, float) { d = v; });
  LR_CHECK(device() != Device::Meta, "fill_: meta tensor ", shape_, " has no data");
  if (numel() == 0) return;
  if (is_contiguous()) return cuda_fill_floats(data(), v, numel());
  // A strided view: every element copies one device scalar holding v (source strides 0).
  const Tensor one = full(Shape{1}, v, device());
  const int64_t zero[kMaxDims] = {0, 0, 0, 0};
  cuda_copy_strided(data(), strides_.d.data(), one.data(), zero, shape_.d.data(), ndim());
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