// add / sub / mul with row broadcast, and scale (CPU reference: autograd/elementwise.cpp).
// a is viewed as (outer, inner) and b (inner) repeats over the rows:
//   y = a + b:  da += dy,      db += Σ_rows dy
//   y = a - b:  da += dy,      db -= Σ_rows dy
//   y = a * b:  da += dy * b,  db += Σ_rows dy * a
//   y = s * x:  dx += s * dy
// Elementwise parts are grid-stride loops. db is a column sum (detail::column_sum): a block per 32
// columns, a fixed reduction tree, accumulated in double, so it is reproducible without atomics.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace lowrank::cuda {

namespace {

using detail::blocks_for;
using detail::kThreads;

enum class Kind { Add, Sub, Mul };

template <Kind K>
__global__ void binary_forward_kernel(float* y, const float* a, const float* b, int64_t n, int64_t inner) {
  LR_GRID_STRIDE(i, n) {
    const float bv = b[i % inner];
    if (K == Kind::Add) y[i] = a[i] + bv;
    if (K == Kind::Sub) y[i] = a[i] - bv;
    if (K == Kind::Mul) y[i] = a[i] * bv;
  }
}

// da (n) += dy (·b[i % inner] for mul)
template <Kind K>
__global__ void binary_backward_a_kernel(float* da, const float* dy, const float* b, int64_t n, int64_t inner) {
  LR_GRID_STRIDE(i, n) da[i] += K == Kind::Mul ? dy[i] * b[i % inner] : dy[i];
}

// db (inner) += sign · Σ_rows dy (·a for mul)
template <Kind K>
__global__ void binary_backward_b_kernel(float* db, const float* dy, const float* a, int64_t outer, int64_t inner) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const bool valid = col < inner;
  const double s = detail::column_sum(
      [=](int64_t r, int64_t c) {
        const int64_t i = r * inner + c;
        return K == Kind::Mul ? dy[i] * a[i] : dy[i];
      },
      outer, col, valid);
  if (threadIdx.y == 0 && valid) db[col] += static_cast<float>(K == Kind::Sub ? -s : s);
}

template <Kind K>
void binary_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  binary_forward_kernel<K><<<blocks_for(n), kThreads, 0, stream()>>>(y, a, b, n, inner);
  LR_CUDA_LAUNCHED();
}

template <Kind K>
void binary_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer,
                     int64_t inner) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  if (da) {
    binary_backward_a_kernel<K><<<blocks_for(n), kThreads, 0, stream()>>>(da, dy, b, n, inner);
    LR_CUDA_LAUNCHED();
  }
  if (db) {
    const dim3 threads(32, detail::kColLanes);
    const unsigned blocks = static_cast<unsigned>((inner + 31) / 32);
    binary_backward_b_kernel<K><<<blocks, threads, 0, stream()>>>(db, dy, a, outer, inner);
    LR_CUDA_LAUNCHED();
  }
}

__global__ void scale_kernel(float* y, const float* x, float s, int64_t n, bool accumulate) {
  LR_GRID_STRIDE(i, n) y[i] = accumulate ? y[i] + s * x[i] : s * x[i];
}

void scale_launch(float* y, const float* x, float s, int64_t n, bool accumulate) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, x, s, n, accumulate);
  LR_CUDA_LAUNCHED();
}

}  // namespace

void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Add>(y, a, b, outer, inner);
}
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Sub>(y, a, b, outer, inner);
}
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_forward<Kind::Mul>(y, a, b, outer, inner);
}

void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward<Kind::Add>(da, db, dy, nullptr, nullptr, outer, inner);
}
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner) {
  binary_backward<Kind::Sub>(da, db, dy, nullptr, nullptr, outer, inner);
}
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer, int64_t inner) {
  binary_backward<Kind::Mul>(da, db, dy, a, b, outer, inner);
}

void scale_forward(float* y, const float* x, float s, int64_t n) { scale_launch(y, x, s, n, false); }
void scale_backward(float* dx, const float* dy, float s, int64_t n) { scale_launch(dx, dy, s, n, true); }

}  // namespace lowrank::cuda
