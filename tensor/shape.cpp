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

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= d[i];
  return n;
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
  int64_t acc = 1;
  for (int i = s.ndim - 1; i >= 0; --i) {
    st.d[i] = acc;
    acc *= s.d[i];
  }
  return st;
}

}  // namespace lowrank::tensor
