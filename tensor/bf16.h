#pragma once
// bfloat16 buffers for the bf16 precision policy (tensor/precision.h, docs/precision.md): bulk
// conversions, and the bf16 copy of a frozen weight that its storage keeps between GEMMs.
// bfloat16 is float32's upper half: the same 8-bit exponent (range, infinities, NaN, subnormals), 8 bits
// of significand instead of 24, so one rounding costs a relative error of at most 2^-9 ≈ 0.2%.
#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/bf16_round.h"
#include "tensor/tensor.h"

namespace lowrank::tensor {

// round_to_bf16(f), the nearest bfloat16 (ties to even, NaN kept quiet): tensor/bf16_round.h, shared with
// the CUDA kernel that rounds activations.

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
