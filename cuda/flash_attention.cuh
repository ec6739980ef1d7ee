#pragma once
// Device building blocks of the fused attention kernels (cuda/flash_attention_fwd.cu, _bwd.cu):
// tile loads into shared memory and the two warp-level products every step of FlashAttention-2
// (Dao, 2023) is made of. Tile sizes and ranges: cuda/flash_attention.h.
//
// Layout in a warp: the warp owns RW rows of a tile (queries, or keys in dK/dV) and lane l owns
// column l of the (RW, kLanes) score tile and the output channels l, l + 32, ... of its rows:
//   dot_rows:  s[r]    = Σ_d A[r][d] · B[l][d]          (S = Q Kᵀ, dP = dO Vᵀ, and their transposes)
//   mul_rows:  acc[r][c] += Σ_j P[r][j] · X[j][l + 32c]  (O += P V, dQ += dS K, dV += Pᵀ dO, dK += dSᵀ Q)
// A[r] and P[r] are the same address for every lane (a broadcast read), B[l] and X[j][l + 32c]
// are distinct banks: no shared-memory bank conflicts in either product.
#include <cstdint>

#include "autograd/attention_kernels.h"
#include "cuda/common.cuh"
#include "cuda/flash_attention.h"

namespace lowrank::cuda::flash {

using autograd::detail::Operand;

constexpr int kLdp = kLanes + kPad;  // row stride of a score tile in shared memory

// Row t of head (b, h) of an operand (B, T, C): rows strided by o.st, channels contiguous.
__device__ __forceinline__ const float* row_at(const Operand& o, int64_t b, int64_t h, int64_t hs, int64_t t) {
  return o.p + b * o.sb + t * o.st + h * hs;
}

// dst (rows, HS) in shared memory (row stride HS + kPad) = src rows [0, valid) (row stride ld
// floats), zeros below: rows past the end of the sequence must not bring NaN into 0 · x.
template <int HS>
__device__ __forceinline__ void load_rows(float* dst, const float* src, int64_t ld, int rows, int valid) {
  for (int e = threadIdx.x; e < rows * HS; e += kThreads) {
    const int r = e / HS, c = e % HS;
    dst[r * (HS + kPad) + c] = r < valid ? src[r * ld + c] : 0.f;
  }
}

// s[r] = Σ_d A[r][d] · B[lane][d], d < HS: the warp's RW rows of A against row `lane` of B.
template <int HS, int RW>
__device__ __forceinline__ void dot_rows(float (&s)[RW], const float* A, const float* B) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < RW; ++r) s[r] = 0.f;
#pragma unroll 4
  for (int d = 0; d < HS; d += 4) {
    const float4 b = *reinterpret_cast<const float4*>(B + lane * (HS + kPad) + d);
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      const float4 a = *reinterpret_cast<const float4*>(A + r * (HS + kPad) + d);
      s[r] = fmaf(a.x, b.x, fmaf(a.y, b.y, fmaf(a.z, b.z, fmaf(a.w, b.w, s[r]))));
    }
  }
}

// acc[r][c] += Σ_j P[r][j] · X[j][lane + 32c], j < kLanes: the warp's RW rows of a score tile P
// (row stride kLdp) times a row tile X (kLanes rows, row stride HS + kPad).
template <int HS, int RW>
__device__ __forceinline__ void mul_rows(float (&acc)[RW][HS / 32], const float* P, const float* X) {
  constexpr int NC = HS / 32;
  const int lane = threadIdx.x & 31;
#pragma unroll 2
  for (int j = 0; j < kLanes; j += 4) {
    float x[4][NC];
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int c = 0; c < NC; ++c) x[u][c] = X[(j + u) * (HS + kPad) + lane + 32 * c];
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      const float4 p = *reinterpret_cast<const float4*>(P + r * kLdp + j);
#pragma unroll
      for (int c = 0; c < NC; ++c)
        acc[r][c] = fmaf(p.w, x[3][c], fmaf(p.z, x[2][c], fmaf(p.y, x[1][c], fmaf(p.x, x[0][c], acc[r][c]))));
    }
  }
}

// Block x of a grid over (b, h, tile) with `tiles` row tiles per pair. reverse: the last tile first
// (causal forward/dQ: the last query tiles read the most keys, so they start first).
struct BlockTile {
  int64_t b, h, tile;
};
__device__ __forceinline__ BlockTile block_tile(int64_t NH, int64_t tiles, bool reverse) {
  const int64_t x = blockIdx.x, t = x % tiles, bh = x / tiles;
  return BlockTile{bh / NH, bh % NH, reverse ? tiles - 1 - t : t};
}

// The dynamic shared memory a kernel needs: above the default 48 KiB it must be asked for (once
// per kernel and device; cheap, so done at every launch).
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace lowrank::cuda::flash
