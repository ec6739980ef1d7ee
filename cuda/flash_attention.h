#pragma once
// Tile sizes and tile ranges of the fused attention kernels (cuda/flash_attention_fwd.cu and
// cuda/flash_attention_bwd.cu), FlashAttention-2 (Dao, 2023, "FlashAttention-2: Faster Attention with
// Better Parallelism and Work Partitioning"), Algorithms 1 (forward) and 2 (backward). Plain C++ that
// nvcc also compiles (the functions are then __host__ __device__), so that the host reference of the
// same tiling (cuda/emulation/flash_attention.cpp) uses the very same numbers and ranges.
//
// A block has kWarps warps. Forward and dQ: a block owns a tile of query rows, each warp
// rows_per_warp(hs) of them, and streams the keys in tiles of kLanes (lane j of a warp holds key
// column j of the score tile). dK/dV: a block owns kKeyRows key rows, kKeyRowsPerWarp per warp, and
// streams the queries in tiles of kLanes (lane i holds query column i). Shared-memory rows are
// padded by kPad floats: float4 reads stay aligned, and the 32 lanes reading 32 different rows at
// the same column hit distinct banks (row stride ≡ 4 words mod 32).
#include <cstddef>
#include <cstdint>

#include "autograd/attention_kernels.h"

#ifdef __CUDACC__
#define LR_FLASH_FN __host__ __device__ __forceinline__
#define LR_FLASH_CX __host__ __device__ constexpr
#else
#define LR_FLASH_FN inline
#define LR_FLASH_CX constexpr
#endif

namespace lowrank::cuda::flash {

using autograd::detail::AttnDims;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kLanes = 32;  // columns of a score tile: keys (forward, dQ) or queries (dK/dV)
constexpr int kPad = 4;
constexpr int kKeyRowsPerWarp = 8;
constexpr int kKeyRows = kWarps * kKeyRowsPerWarp;  // key rows of a dK/dV block

// The head sizes with a fused kernel; any other takes the cuBLAS path (cuda/attention_cublas.cu).
LR_FLASH_CX bool supported(int64_t hs) { return hs == 32 || hs == 64 || hs == 128; }

// Query rows per warp (forward and dQ): 16, or 8 at hs = 128 to bound the (rows, hs) accumulator
// every warp keeps in registers (rows · hs/32 floats per lane: 32 at hs = 64 and at hs = 128).
LR_FLASH_CX int rows_per_warp(int64_t hs) { return hs == 128 ? 8 : 16; }
LR_FLASH_CX int query_rows(int64_t hs) { return kWarps * rows_per_warp(hs); }  // of a forward/dQ block

// Dynamic shared memory of each kernel, in bytes: row tiles of ld = hs + kPad floats, and one score
// tile per block (rows × kLanes, ld = kLanes + kPad).
constexpr size_t tile_floats(int64_t rows, int64_t hs) { return static_cast<size_t>(rows * (hs + kPad)); }
constexpr size_t score_floats(int64_t rows) { return static_cast<size_t>(rows * (kLanes + kPad)); }
// Q (Br, hs), K and V (kLanes, hs), P (Br, kLanes)
constexpr size_t forward_smem(int64_t hs) {
  return 4 * (tile_floats(query_rows(hs) + 2 * kLanes, hs) + score_floats(query_rows(hs)));
}
// Q and dO (Br, hs), K and V (kLanes, hs), dS (Br, kLanes)
constexpr size_t dq_smem(int64_t hs) {
  return 4 * (tile_floats(2 * query_rows(hs) + 2 * kLanes, hs) + score_floats(query_rows(hs)));
}
// K and V (kKeyRows, hs), Q and dO (kLanes, hs), Pᵀ then dSᵀ (kKeyRows, kLanes)
constexpr size_t dkdv_smem(int64_t hs) {
  return 4 * (tile_floats(2 * kKeyRows + 2 * kLanes, hs) + score_floats(kKeyRows));
}

// Keys [0, visible) are seen by query i of sequence b (AttnDims::visible, callable on the device).
LR_FLASH_FN int64_t visible_keys(const AttnDims& d, int64_t b, int64_t i) {
  const int64_t n = d.causal ? i + (d.Tk - d.Tq) + 1 : d.Tk;
  return d.key_len && d.key_len[b] < n ? d.key_len[b] : n;
}

// The keys a query tile [i0, i1) reads: [0, key_end). visible_keys is non-decreasing in i, so the
// last row sees the most; key tiles from key_end on (causal: above the diagonal; or past
// key_len[b]) are skipped, not computed and masked.
LR_FLASH_FN int64_t key_end(const AttnDims& d, int64_t b, int64_t i1) { return visible_keys(d, b, i1 - 1); }

// The first query tile (tiles of `rows` from 0) with a query that sees key j0, the first key of a
// dK/dV block: causal query i sees j0 iff i >= j0 − (Tk − Tq). Tq when no query sees it (j0 >=
// key_len[b]): such a block adds nothing to dK and dV.
LR_FLASH_FN int64_t query_begin(const AttnDims& d, int64_t b, int64_t j0, int64_t rows) {
  if (d.key_len && j0 >= d.key_len[b]) return d.Tq;
  if (!d.causal) return 0;
  const int64_t i = j0 - (d.Tk - d.Tq);
  return i <= 0 ? 0 : i / rows * rows;
}

}  // namespace lowrank::cuda::flash
