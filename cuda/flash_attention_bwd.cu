// Fused attention backward: FlashAttention-2 (Dao, 2023), Algorithm 2, in fp32 on CUDA cores.
// From the forward's L (B, NH, Tq) and output O, for one (b, h):
//   P  = exp(scale · Q Kᵀ − L)  over the visible keys, 0 elsewhere (the forward's P, recomputed)
//   dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ⊙ (dP − D),   dQ = scale · dS K,   dK = scale · dSᵀ Q
// with D_i = rowsum(dP ⊙ P)_i = Σ_j P_ij (dO_i · V_j) = dO_i · O_i (O = P V): one dot product per
// row instead of a pass over the keys (Algorithm 2, line 4). Masked P = 0 gives dS = 0.
// Three kernels, all accumulating (+=) into the gradient buffers, no atomics:
//   d_kernel     D (B, NH, Tq), a warp per row, into scratch;
//   dq_kernel    the forward's blocking (a block per query tile, key tiles streamed, the causal
//                upper triangle skipped) with dQ in registers: S, P, dP, dS per key tile, dQ += dS K;
//   dkdv_kernel  Algorithm 2's blocking (a block per tile of kKeyRows keys, query tiles streamed
//                from the first query that sees the block's first key), dK and dV in registers.
// Algorithm 2 adds dQ from the dK/dV loop with atomics; the separate dQ pass recomputes S and dP
// once more (7 instead of 5 tile products) and keeps every sum in a fixed order, so backward is
// bitwise reproducible like the rest of the backend (docs/cuda.md, "Determinism").
#include <cmath>

#include "cuda/attention_paths.h"
#include "cuda/flash_attention.cuh"

namespace lowrank::cuda::flash {

using autograd::detail::AttnGrads;

namespace {

// D (B, NH, Tq) = rowsum(dO ⊙ O) per head: warp r handles row r of D (b, h, i).
__global__ void d_kernel(float* D, const float* dout, const float* out, AttnDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t rows = d.B * d.NH * d.Tq, warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < rows; r += warps) {
    const int64_t i = r % d.Tq, h = (r / d.Tq) % d.NH, b = r / (d.Tq * d.NH);
    const int64_t off = (b * d.Tq + i) * d.C + h * d.hs;
    float acc = 0.f;
    for (int64_t c = lane; c < d.hs; c += 32) acc = fmaf(dout[off + c], out[off + c], acc);
    acc = detail::warp_sum(acc);
    if (lane == 0) D[r] = acc;
  }
}

// dS = P ⊙ (dP − D) of one key tile for the warp's RW query rows, keys j0 + lane (row r sees keys
// [0, n[r])), into the warp's rows of Sw. Lr, Dr: the rows' L and D.
template <int RW>
__device__ __forceinline__ void dq_scores(float* Sw, const float (&s)[RW], const float (&dp)[RW], const float (&Lr)[RW],
                                          const float (&Dr)[RW], const int (&n)[RW], float scale, int j0) {
  const int lane = threadIdx.x & 31, j = j0 + lane;
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const float p = j < n[r] ? expf(scale * s[r] - Lr[r]) : 0.f;
    Sw[r * kLdp + lane] = p * (dp[r] - Dr[r]);
  }
}

template <int HS>
__global__ void __launch_bounds__(kThreads)
    dq_kernel(float* dq, const float* dout, const float* L, const float* D, const Operand q, const Operand k,
              const Operand v, const AttnDims d) {
  constexpr int RW = rows_per_warp(HS), BR = kWarps * RW, LD = HS + kPad;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // (BR, HS)
  float* dOs = Qs + BR * LD;                    // (BR, HS)
  float* Ks = dOs + BR * LD;                    // (kLanes, HS)
  float* Vs = Ks + kLanes * LD;                 // (kLanes, HS)
  float* Ss = Vs + kLanes * LD;                 // (BR, kLanes): dS
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const BlockTile t = block_tile(d.NH, (d.Tq + BR - 1) / BR, d.causal);
  const int64_t i0 = t.tile * BR, rows = min(static_cast<int64_t>(BR), d.Tq - i0), i0w = i0 + warp * RW;
  load_rows<HS>(Qs, row_at(q, t.b, t.h, HS, i0), q.st, BR, static_cast<int>(rows));
  load_rows<HS>(dOs, dout + (t.b * d.Tq + i0) * d.C + t.h * HS, d.C, BR, static_cast<int>(rows));
  float Lr[RW], Dr[RW], acc[RW][HS / 32];
  int n[RW];  // keys row r sees; rows past Tq (zero Q and dO, never written) take the last row's
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int64_t i = min(i0w + r, d.Tq - 1), at = (t.b * d.NH + t.h) * d.Tq + i;
    n[r] = static_cast<int>(visible_keys(d, t.b, i));
    Lr[r] = L[at];
    Dr[r] = D[at];
#pragma unroll
    for (int c = 0; c < HS / 32; ++c) acc[r][c] = 0.f;
  }
  const int64_t kend = key_end(d, t.b, i0 + rows);
  for (int64_t j0 = 0; j0 < kend; j0 += kLanes) {
    const int keys = static_cast<int>(min(static_cast<int64_t>(kLanes), d.Tk - j0));
    load_rows<HS>(Ks, row_at(k, t.b, t.h, HS, j0), k.st, kLanes, keys);
    load_rows<HS>(Vs, row_at(v, t.b, t.h, HS, j0), v.st, kLanes, keys);
    __syncthreads();
    float s[RW], dp[RW];
    dot_rows<HS, RW>(s, Qs + warp * RW * LD, Ks);    // Q Kᵀ
    dot_rows<HS, RW>(dp, dOs + warp * RW * LD, Vs);  // dP = dO Vᵀ
    dq_scores<RW>(Ss + warp * RW * kLdp, s, dp, Lr, Dr, n, d.scale, static_cast<int>(j0));
    __syncwarp();
    mul_rows<HS, RW>(acc, Ss + warp * RW * kLdp, Ks);  // dQ += dS K (scale applied once, below)
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    if (i0w + r >= d.Tq) continue;
    float* row = dq + (t.b * d.Tq + i0w + r) * d.C + t.h * HS;
#pragma unroll
    for (int c = 0; c < HS / 32; ++c) row[lane + 32 * c] += d.scale * acc[r][c];
  }
}

template <int HS>
void launch_dq(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k, const Operand& v,
               const AttnDims& d) {
  const size_t smem = dq_smem(HS);
  allow_smem(dq_kernel<HS>, smem);
  const int64_t tiles = (d.Tq + query_rows(HS) - 1) / query_rows(HS);
  const unsigned blocks = static_cast<unsigned>(tiles * d.B * d.NH);
  dq_kernel<HS><<<blocks, kThreads, smem, stream()>>>(g.dq, g.dout, L, D, q, k, v, d);
  LR_CUDA_LAUNCHED();
}

// D (B, NH, Tq) = rowsum(dO ⊙ O): kWarps rows per block.
void launch_d(float* D, const AttnGrads& g, const AttnDims& d) {
  const int64_t rows = d.B * d.NH * d.Tq;
  d_kernel<<<detail::blocks_for(rows, kWarps), kThreads, 0, stream()>>>(D, g.dout, g.out, d);
  LR_CUDA_LAUNCHED();
}

// dQ += for d.hs, the head sizes with a kernel.
void run_dq(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k, const Operand& v,
            const AttnDims& d) {
  switch (d.hs) {
    case 32:
      return launch_dq<32>(g, L, D, q, k, v, d);
    case 64:
      return launch_dq<64>(g, L, D, q, k, v, d);
    case 128:
      return launch_dq<128>(g, L, D, q, k, v, d);
    default:
      LR_CHECK(false, "flash attention: head size ", d.hs, " has no fused kernel (32, 64 or 128)");
  }
}

}  // namespace

}  // namespace lowrank::cuda::flash

namespace lowrank::cuda::detail {

void flash_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d) {
  LR_CHECK(g.out, "flash attention backward: needs the forward's output (AttnGrads::out)");
  const size_t dbytes = sizeof(float) * static_cast<size_t>(d.B * d.NH * d.Tq);
  float* D = static_cast<float*>(alloc(dbytes));
  flash::launch_d(D, g, d);
  if (g.dq) flash::run_dq(g, L, D, q, k, v, d);
  if (g.dk || g.dv) flash_attention_dkdv(g, L, D, q, k, v, d);
  release(D, dbytes);  // stream-ordered: the next user of the block runs after these kernels
}

}  // namespace lowrank::cuda::detail
