#include "tensor/shape.h"

#include "tensor/error.h"

namespace lowrank::tensor {

Shape::Shape(std::initializer_list<int64_t> dims) {
  LR_CHECK(dims.size() <= kMaxDims, "Shape: at most ", kMaxDims, " dims, got ", dims.size());
  for (int64_t v : dims) {
    LR_CHECK(v >= 0, "Shape: negative dimension ", v);
    d[ndim++] = v;
  }
}

int Shape::wrap(int i) const {
  int j = i < 0 ? i + ndim : i;
  LR_CHECK(j >= 0 && j < ndim, "Shape: dim ", i, " out of range for ", str());
  return j;
}

namespace {
[[noreturn]] void overflow(const Shape& s) {
  throw Error(cat("Shape: ", s.str(), ": the product of its dims overflows int64 (more than 2^63 elements)"));
}
}  // namespace

// The product of the non-zero dims is checked even when a dim is 0, so that contiguous_strides' partial
// products also fit: shapes like (2^62, 4, 0) are refused rather than wrapped around.
int64_t Shape::numel() const {
  int64_t n = 1;
  bool zero = false;
  for (int i = 0; i < ndim; ++i) {
    if (d[i] == 0)
      zero = true;
    else if (__builtin_mul_overflow(n, d[i], &n))
      overflow(*this);
  }
  return zero ? 0 : n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (d[i] != o.d[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + (ndim == 1 ? ",)" : ")");
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

Shape contiguous_strides(const Shape& s) {
  Shape st;
  st.ndim = s.ndim;
  s.numel();  // throws on overflow: then no partial product below overflows either
  int64_t acc = 1;
  for (int i = s.ndim - 1; i >= 0; --i) {
    st.d[i] = acc;
    acc *= s.d[i];
  }
  return st;
}

}  // namespace lowrank::tensor
