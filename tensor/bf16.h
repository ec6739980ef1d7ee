#pragma once
// bfloat16 buffers for the bf16 precision policy (tensor/precision.h, docs/precision.md): bulk
// conversions, and the bf16 copy of a frozen weight that its storage keeps between GEMMs.
// bfloat16 is float32's upper half: the same 8-bit exponent (range, infinities, NaN, subnormals), 8 bits
// of significand instead of 24, so one rounding costs a relative error of at most 2^-9 ≈ 0.2%.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

#ifdef __CUDACC__
#define LR_BF16_FN __host__ __device__ __forceinline__
#else
#define LR_BF16_FN inline
#endif

namespace lowrank::tensor {

// The bfloat16 nearest to f, ties to the even one: adding 0x7fff plus the kept half's lowest bit carries
// into the kept half exactly when the dropped half is above the midpoint, or at it with an odd kept half.
// A NaN keeps its sign and upper payload and is made quiet (a payload only in the dropped bits would
// otherwise round to inf). Inline and branch-free so conversion loops vectorise. nvcc compiles it too
// (cuda/gemm.cu includes this header): the CUDA kernel that rounds activations calls this very function,
// so a value rounds to the same bits on either device.
LR_BF16_FN uint16_t round_to_bf16(float f) {
#ifdef __CUDA_ARCH__
  const uint32_t bits = __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
#endif
  const uint32_t lsb = (bits >> 16) & 1u;
  const auto rounded = static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16);
  const auto quiet_nan = static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return (bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
}

// dst[i] = round_to_bf16(src[i]) for i < n: infinities stay, a finite value past the largest bf16 rounds
// to ±inf as IEEE rounding does, subnormals round within bf16's subnormals (no flush to zero).
void to_bf16(uint16_t* dst, const float* src, int64_t n);
// A (rows, cols) with leading dimension ld into rows·cols contiguous bf16 values.
void to_bf16_rows(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld);
void from_bf16(float* dst, const uint16_t* src, int64_t n);  // exact

// The bf16 copy of a contiguous CPU tensor's elements, in its order.
struct Bf16Copy {
  std::vector<uint16_t> values;
  int64_t offset = 0, numel = 0;  // the view of the storage it was made from
  uint64_t version = 0;           // the storage's write count then
};

// w's bf16 copy: made on the first call and kept by w's storage (Storage::derived), which drops it at
// the next write (copy_, add_, fill_, mark_written: merge, unmerge, loading, requires_grad_(true)), so
// the copy always matches w's current values. One copy per storage: a call with another view of the same
// storage replaces it. Thread-safe. w: contiguous, on the CPU.
std::shared_ptr<const Bf16Copy> bf16_copy(const Tensor& w);
// Conversions into a cached bf16 copy in this process (for tests): bf16_copy's, and those of its CUDA twin
// (autograd::device_bf16_copy), which calls count_bf16_copy().
int64_t bf16_copies_made();
void count_bf16_copy();

}  // namespace lowrank::tensor

#undef LR_BF16_FN
