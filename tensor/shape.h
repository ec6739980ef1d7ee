#pragma once
// Shape and strides of a tensor of up to 4 dimensions (B, T, C) style, row-major.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

namespace lowrank::tensor {

constexpr int kMaxDims = 4;

struct Shape {
  int ndim = 0;
  std::array<int64_t, kMaxDims> d{};

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  // Negative dims count from the end: s[-1] is the last dimension.
  int64_t operator[](int i) const { return d[wrap(i)]; }
  int64_t& operator[](int i) { return d[wrap(i)]; }
  int wrap(int i) const;  // maps -1 -> ndim-1, throws when out of range

  int64_t numel() const;
  int64_t rows() const { return ndim == 0 ? 1 : numel() / d[ndim - 1]; }  // product of all but the last dim
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "(2, 3, 4)"
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

// Row-major strides for a shape (in elements).
Shape contiguous_strides(const Shape& s);

}  // namespace lowrank::tensor
