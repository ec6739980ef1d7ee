// IEEE binary16 and bfloat16 <-> float32, the dtypes safetensors files hold (tensor/safetensors.h).
#include <cstdint>
#include <cstring>

#include "tensor/bf16.h"
#include "tensor/safetensors.h"

namespace lowrank::tensor {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // +-0
    } else {
      // Subnormal: mant * 2^-24. Normalise so the leading 1 moves into the implicit bit.
      int e = -14;  // exponent of a half subnormal's scale 2^-14 * (mant / 1024)
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
      }
      mant &= 0x3ffu;
      bits = sign | (static_cast<uint32_t>(e + 127) << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf (mant 0) or NaN (payload kept, stays non-zero)
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bfloat16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_bfloat16(float f) { return round_to_bf16(f); }  // tensor/bf16.h: the one rounding

}  // namespace lowrank::tensor
