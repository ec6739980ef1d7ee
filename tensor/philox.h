#pragma once
// Philox-4x32-10: a counter-based random number generator (Salmon, Moraes, Dror & Shaw, "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011; the constants and round structure of their Random123
// library, whose known-answer vectors tests/test_dropout_rng.cpp checks). It is a stateless bijection
// of a 128-bit counter under a 64-bit key: element i of a stream needs no state from element i-1, so
// the same function fills a buffer in any order, on any number of threads, on the host or on a GPU,
// and gives the same bits. That is what lets dropout draw its mask on the device (cuda/dropout.cu)
// and still drop exactly the units the CPU op drops (autograd/dropout.cpp).
//
// Compiled by both the host compiler and nvcc: under __CUDACC__ the functions are __host__ __device__.
// Only 32x32->64 multiplies, xors and adds: no intrinsics, so the two compilations agree bit for bit.
#include <cstdint>

#ifdef __CUDACC__
#define LR_PHILOX_FN __host__ __device__ __forceinline__
#else
#define LR_PHILOX_FN inline
#endif

namespace lowrank::tensor::philox {

struct U32x4 {
  uint32_t v[4];
};

// Multipliers and Weyl key increments of Philox-4x32 (Salmon et al. 2011, Table 2; Random123's
// PHILOX_M4x32_0/1 and PHILOX_W32_0/1, the latter the golden ratio and sqrt(3) - 1 in 0.32 fixed point).
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// One round: two 32x32->64 products, their high halves xored with the other words and the key.
LR_PHILOX_FN U32x4 philox_round(U32x4 c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kM0) * c.v[0];
  const uint64_t p1 = static_cast<uint64_t>(kM1) * c.v[2];
  U32x4 r;
  r.v[0] = static_cast<uint32_t>(p1 >> 32) ^ c.v[1] ^ k0;
  r.v[1] = static_cast<uint32_t>(p1);
  r.v[2] = static_cast<uint32_t>(p0 >> 32) ^ c.v[3] ^ k1;
  r.v[3] = static_cast<uint32_t>(p0);
  return r;
}

// Philox-4x32-10 of counter c under key (k0, k1): ten rounds, the key bumped between rounds.
LR_PHILOX_FN U32x4 philox4x32_10(U32x4 c, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    c = philox_round(c, k0, k1);
  }
  return c;
}

// A uniform float in [0, 1) from the top 24 bits (a float's mantissa): exact, never rounds up to 1.
LR_PHILOX_FN float to_unit_float(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.f / 16777216.f); }

// The four uniforms of group g = i / 4 of the stream `key`: elements 4g .. 4g+3 take lanes 0 .. 3.
// The counter is (g lo, g hi, 0, 0), so a stream has 2^66 elements before it repeats.
LR_PHILOX_FN void uniform4(uint64_t key, uint64_t group, float out[4]) {
  const U32x4 c{{static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), 0u, 0u}};
  const U32x4 r = philox4x32_10(c, static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
  for (int l = 0; l < 4; ++l) out[l] = to_unit_float(r.v[l]);
}

// ---- dropout, shared by the CPU op, the CUDA kernel and its host emulation --------------------
// mask_i = u_i >= p ? 1/(1-p) : 0 with u_i lane i % 4 of group i / 4 of the stream `key`;  y_i = x_i · mask_i.

// Elements [4g, min(4g + 4, n)) of mask (n) and y (n) from x (n); scale = 1/(1-p), computed once by
// the caller so that every compilation multiplies by the same float.
LR_PHILOX_FN void dropout_group(float* y, float* mask, const float* x, int64_t n, uint64_t group, uint64_t key, float p,
                                float scale) {
  float u[4];
  uniform4(key, group, u);
  const int64_t base = static_cast<int64_t>(group) * 4;
  for (int l = 0; l < 4 && base + l < n; ++l) {
    const float m = u[l] >= p ? scale : 0.f;
    mask[base + l] = m;
    y[base + l] = x[base + l] * m;
  }
}

// Groups covering n elements.
LR_PHILOX_FN int64_t dropout_groups(int64_t n) { return (n + 3) / 4; }

}  // namespace lowrank::tensor::philox

#undef LR_PHILOX_FN
