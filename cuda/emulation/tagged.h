#pragma once
// Host emulation of the CUDA backend (LOWRANK_CUDA_EMULATION, docs/cuda.md "Host emulation"):
// CI has no GPU, so this build replaces cuda/*.cu with plain host loops behind the same
// lowrank::cuda symbols. It checks the DISPATCH (every CUDA branch of the ops, tensors, optimizer
// and models, and the arguments they hand to the launchers), never the real kernels.
//
// Tagged pointers. An emulated "device" pointer is a host pointer plus kDeviceTag = 2^47. On x86-64
// user addresses are below 2^47, so a tagged pointer is non-canonical: any HOST dereference of a
// device pointer faults at once (SIGSEGV), as it would crash or read garbage with a real GPU. The
// emulated launchers untag their arguments through arg()/opt_arg(), which also check that the
// pointer is a device pointer and that the range the launcher touches lies inside one live device
// allocation (out-of-bounds launch arguments are an error here, silent corruption on a GPU).
#include <cstddef>
#include <cstdint>

#include "tensor/error.h"

namespace lowrank::cuda::emu {

constexpr uintptr_t kDeviceTag = uintptr_t(1) << 47;

inline bool is_device(const void* p) { return (reinterpret_cast<uintptr_t>(p) & kDeviceTag) != 0; }

template <typename T>
T* tag(T* host) {
  return host ? reinterpret_cast<T*>(reinterpret_cast<uintptr_t>(host) + kDeviceTag) : nullptr;
}

template <typename T>
T* untag(T* dev) {
  return dev ? reinterpret_cast<T*>(reinterpret_cast<uintptr_t>(dev) - kDeviceTag) : nullptr;
}

// Throws unless [p, p + bytes) lies inside one live device allocation (memory.cpp keeps the list).
void check_extent(const void* p, size_t bytes, const char* what);

// The host view of a required device argument of which a launcher touches `count` elements of T
// from p on. count == 0 touches nothing: p may then be anything (an empty tensor has no buffer).
template <typename T>
T* arg(T* p, int64_t count, const char* what) {
  if (count <= 0) return is_device(p) ? untag(p) : p;
  LR_CHECK(p != nullptr, "cuda emulation: ", what, " is nullptr but ", count, " elements are accessed");
  LR_CHECK(is_device(p), "cuda emulation: ", what, " = ", static_cast<const void*>(p),
           " is a HOST pointer passed to a device launcher");
  check_extent(p, static_cast<size_t>(count) * sizeof(T), what);
  return untag(p);
}

// The same for an argument that may be nullptr (gradients nobody needs, an optional bias).
template <typename T>
T* opt_arg(T* p, int64_t count, const char* what) {
  return p ? arg(p, count, what) : nullptr;
}

// Elements spanned by a row-major (rows, cols) matrix with leading dimension ld (0 when empty).
inline int64_t matrix_extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols;
}

// The same for `batch` such matrices `stride` elements apart.
inline int64_t batch_extent(int64_t batch, int64_t stride, int64_t rows, int64_t cols, int64_t ld) {
  const int64_t one = matrix_extent(rows, cols, ld);
  return batch <= 0 || one == 0 ? 0 : (batch - 1) * stride + one;
}

}  // namespace lowrank::cuda::emu
