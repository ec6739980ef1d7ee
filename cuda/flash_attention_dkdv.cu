// The dK/dV kernel of the fused attention backward (cuda/flash_attention_bwd.cu has the derivation):
// FlashAttention-2 (Dao, 2023), Algorithm 2's blocking. One block per (b, h, tile of kKeyRows keys);
// the warp w owns key rows [w·8, (w+1)·8) and keeps their dK and dV (8, hs) in registers. Q and dO
// tiles of kLanes queries stream through shared memory, lane i holding query i0 + i; per tile, in
// the transposed orientation (key rows c, query columns i):
//   Pᵀ  = exp(scale · K Qᵀ − L_i)  where key j is visible to query i, else 0
//   dPᵀ = V dOᵀ,   dSᵀ = Pᵀ ⊙ (dPᵀ − D_i)
//   dV += Pᵀ dO,   dK += dSᵀ Q   (scale applied once at the end)
// Query tiles before query_begin (causal: none of their queries sees the block's first key, so
// none sees any of its keys) are skipped; a block whose first key is past key_len[b] returns at
// once, adding 0. Shared memory: flash::dkdv_smem(hs).
#include <cmath>

#include "cuda/attention_paths.h"
#include "cuda/flash_attention.cuh"

namespace lowrank::cuda::flash {

using autograd::detail::AttnGrads;

namespace {

constexpr int RW = kKeyRowsPerWarp;

// Pᵀ into the warp's rows of Pw, dSᵀ into ds, for key rows j0w + c and the lane's query i.
__device__ __forceinline__ void dkdv_scores(float* Pw, float (&ds)[RW], const float (&s)[RW], const float (&dp)[RW],
                                            const float* L, const float* D, const AttnDims& d, int64_t b, int64_t h,
                                            int64_t i, int64_t j0w) {
  const int lane = threadIdx.x & 31;
  const bool in = i < d.Tq;  // queries past Tq see nothing
  const int64_t at = (b * d.NH + h) * d.Tq + (in ? i : 0), n = in ? visible_keys(d, b, i) : 0;
  const float Li = L[at], Di = D[at];
#pragma unroll
  for (int c = 0; c < RW; ++c) {
    const float p = j0w + c < n ? expf(d.scale * s[c] - Li) : 0.f;
    ds[c] = p * (dp[c] - Di);
    Pw[c * kLdp + lane] = p;
  }
}

// dK += scale · acc_k, dV += acc_v for the warp's key rows (those < Tk).
template <int HS>
__device__ __forceinline__ void write_dkdv(const AttnGrads& g, const float (&ak)[RW][HS / 32],
                                           const float (&av)[RW][HS / 32], const AttnDims& d, int64_t b, int64_t h,
                                           int64_t j0w) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int c = 0; c < RW; ++c) {
    if (j0w + c >= d.Tk) continue;
    const int64_t off = (b * d.Tk + j0w + c) * d.C + h * HS;
#pragma unroll
    for (int u = 0; u < HS / 32; ++u) {
      if (g.dk) g.dk[off + lane + 32 * u] += d.scale * ak[c][u];
      if (g.dv) g.dv[off + lane + 32 * u] += av[c][u];
    }
  }
}

template <int HS>
__global__ void __launch_bounds__(kThreads)
    dkdv_kernel(const AttnGrads g, const float* L, const float* D, const Operand q, const Operand k, const Operand v,
                const AttnDims d) {
  constexpr int LD = HS + kPad;
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);  // (kKeyRows, HS)
  float* Vs = Ks + kKeyRows * LD;               // (kKeyRows, HS)
  float* Qs = Vs + kKeyRows * LD;               // (kLanes, HS)
  float* dOs = Qs + kLanes * LD;                // (kLanes, HS)
  float* Ps = dOs + kLanes * LD;                // (kKeyRows, kLanes): Pᵀ, then dSᵀ
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const BlockTile t = block_tile(d.NH, (d.Tk + kKeyRows - 1) / kKeyRows, false);
  const int64_t j0 = t.tile * kKeyRows, j0w = j0 + warp * RW, ibeg = query_begin(d, t.b, j0, kLanes);
  if (ibeg >= d.Tq) return;  // the whole block: no query sees these keys
  const int keys = static_cast<int>(min(static_cast<int64_t>(kKeyRows), d.Tk - j0));
  load_rows<HS>(Ks, row_at(k, t.b, t.h, HS, j0), k.st, kKeyRows, keys);
  load_rows<HS>(Vs, row_at(v, t.b, t.h, HS, j0), v.st, kKeyRows, keys);
  float ak[RW][HS / 32] = {}, av[RW][HS / 32] = {};
  float* Pw = Ps + warp * RW * kLdp;
  for (int64_t i0 = ibeg; i0 < d.Tq; i0 += kLanes) {
    const int rows = static_cast<int>(min(static_cast<int64_t>(kLanes), d.Tq - i0));
    load_rows<HS>(Qs, row_at(q, t.b, t.h, HS, i0), q.st, kLanes, rows);
    load_rows<HS>(dOs, g.dout + (t.b * d.Tq + i0) * d.C + t.h * HS, d.C, kLanes, rows);
    __syncthreads();
    float s[RW], dp[RW], ds[RW];
    dot_rows<HS, RW>(s, Ks + warp * RW * LD, Qs);    // K Qᵀ
    dot_rows<HS, RW>(dp, Vs + warp * RW * LD, dOs);  // dPᵀ = V dOᵀ
    dkdv_scores(Pw, ds, s, dp, L, D, d, t.b, t.h, i0 + lane, j0w);
    __syncwarp();
    mul_rows<HS, RW>(av, Pw, dOs);  // dV += Pᵀ dO
    __syncwarp();                   // every lane has read Pᵀ
#pragma unroll
    for (int c = 0; c < RW; ++c) Pw[c * kLdp + lane] = ds[c];
    __syncwarp();
    mul_rows<HS, RW>(ak, Pw, Qs);  // dK += dSᵀ Q
    __syncthreads();               // Q, dO and the score tile are free for the next tile
  }
  write_dkdv<HS>(g, ak, av, d, t.b, t.h, j0w);
}

template <int HS>
void launch_dkdv(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k,
                 const Operand& v, const AttnDims& d) {
  const size_t smem = dkdv_smem(HS);
  allow_smem(dkdv_kernel<HS>, smem);
  const int64_t tiles = (d.Tk + kKeyRows - 1) / kKeyRows;
  const unsigned blocks = static_cast<unsigned>(tiles * d.B * d.NH);
  dkdv_kernel<HS><<<blocks, kThreads, smem, stream()>>>(g, L, D, q, k, v, d);
  LR_CUDA_LAUNCHED();
}

}  // namespace

}  // namespace lowrank::cuda::flash

namespace lowrank::cuda::detail {

void flash_attention_dkdv(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k,
                          const Operand& v, const AttnDims& d) {
  switch (d.hs) {
    case 32:
      return flash::launch_dkdv<32>(g, L, D, q, k, v, d);
    case 64:
      return flash::launch_dkdv<64>(g, L, D, q, k, v, d);
    case 128:
      return flash::launch_dkdv<128>(g, L, D, q, k, v, d);
    default:
      LR_CHECK(false, "flash attention: head size ", d.hs, " has no fused kernel (32, 64 or 128)");
  }
}

}  // namespace lowrank::cuda::detail
