#pragma once
// The one rounding of fp32 to bfloat16 of the bf16 precision policy (docs/precision.md), shared by the
// CPU conversions (tensor/bf16.h) and the CUDA kernel that rounds activations (cuda/gemm.cu): both
// compilers build it from this text, so a value rounds to the same bits on either device.
// Compiled by both the host compiler and nvcc: under __CUDACC__ the function is __host__ __device__.
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define LR_BF16_FN __host__ __device__ __forceinline__
#else
#define LR_BF16_FN inline
#endif

namespace lowrank::tensor {

// The bfloat16 nearest to f, ties to the even one: adding 0x7fff plus the kept half's lowest bit carries
// into the kept half exactly when the dropped half is above the midpoint, or at it with an odd kept half.
// A NaN keeps its sign and upper payload and is made quiet (a payload only in the dropped bits would
// otherwise round to inf). Branch-free so conversion loops vectorise.
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

}  // namespace lowrank::tensor

#undef LR_BF16_FN
