// Fused attention forward: FlashAttention-2 (Dao, 2023), Algorithm 1, in fp32 on CUDA cores.
// One block per (b, h, tile of Br query rows); the warp w owns query rows [w·RW, (w+1)·RW) of the
// tile and keeps, per row, the running max m, the running sum ℓ and the unnormalised output
// O (RW, hs) in registers. K and V tiles of kLanes keys stream through shared memory; for each:
//   S    = scale · Q Kᵀ                       (Br, kLanes), key j0 + lane in lane `lane`
//   S_ij = −∞ where key j is not visible to query i (causal, key_len), so P_ij = exp(−∞) = 0 exactly
//   m'   = max(m, rowmax S);  P = exp(S − m');  α = exp(m − m')
//   ℓ    = α ℓ + rowsum P;    O = α O + P V      (online softmax: O/ℓ is the softmax so far)
// then O / ℓ is the output and L = m + log ℓ the row log-sum-exp saved for backward (B, NH, Tq),
// the same L as the CPU kernels. Key 0 is visible to every query (key_len >= 1), and it is in the
// first tile, so m' is finite from the first tile on and α = exp(−∞) = 0 there, never NaN.
// ℓ is kept as one partial sum per lane (lane l sums its own column; all lanes rescale by the same
// α), reduced across the warp once at the end: only the row max needs a shuffle per tile.
// Key tiles at or past key_end (the tile's last row sees no key there) are not read at all: causal
// attention skips the upper triangle. The P tile goes through shared memory (each warp its own
// rows) so that P V reads it as broadcasts. Shared memory: flash::forward_smem(hs).
#include <cmath>

#include "cuda/attention_paths.h"
#include "cuda/flash_attention.cuh"

namespace lowrank::cuda::flash {

namespace {

// The online-softmax step of one key tile for the warp's RW rows, keys j0 + lane (row r sees keys
// [0, n[r])): updates m, the lane's partial ℓ and O (rescaled by α), and writes P to the warp's rows of Pw.
template <int HS, int RW>
__device__ __forceinline__ void online_softmax(const float (&s)[RW], float (&m)[RW], float (&l)[RW],
                                               float (&o)[RW][HS / 32], float* Pw, const int (&n)[RW], float scale,
                                               int j0) {
  const int lane = threadIdx.x & 31, j = j0 + lane;
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const float sr = j < n[r] ? scale * s[r] : -INFINITY;
    const float mnew = fmaxf(m[r], detail::warp_max(sr));
    const float alpha = expf(m[r] - mnew), p = expf(sr - mnew);
    l[r] = alpha * l[r] + p;
    m[r] = mnew;
#pragma unroll
    for (int c = 0; c < HS / 32; ++c) o[r][c] *= alpha;
    Pw[r * kLdp + lane] = p;
  }
}

// out (B, Tq, C) = O / ℓ for the warp's rows; L (B, NH, Tq) = m + log ℓ.
template <int HS, int RW>
__device__ __forceinline__ void write_rows(float* out, float* L, const float (&m)[RW], const float (&l)[RW],
                                           const float (&o)[RW][HS / 32], const AttnDims& d, int64_t b, int64_t h,
                                           int64_t i0w) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const float sum = detail::warp_sum(l[r]), inv = 1.f / sum;
    const int64_t i = i0w + r;
    if (i >= d.Tq) continue;
    float* orow = out + (b * d.Tq + i) * d.C + h * HS;
#pragma unroll
    for (int c = 0; c < HS / 32; ++c) orow[lane + 32 * c] = o[r][c] * inv;
    if (lane == 0) L[(b * d.NH + h) * d.Tq + i] = m[r] + logf(sum);
  }
}

template <int HS>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(float* out, float* L, const Operand q, const Operand k, const Operand v, const AttnDims d) {
  constexpr int RW = rows_per_warp(HS), BR = kWarps * RW, LD = HS + kPad;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // (BR, HS)
  float* Ks = Qs + BR * LD;                     // (kLanes, HS)
  float* Vs = Ks + kLanes * LD;                 // (kLanes, HS)
  float* Ps = Vs + kLanes * LD;                 // (BR, kLanes)
  const int warp = threadIdx.x / 32;
  const BlockTile t = block_tile(d.NH, (d.Tq + BR - 1) / BR, d.causal);
  const int64_t i0 = t.tile * BR, rows = min(static_cast<int64_t>(BR), d.Tq - i0);
  load_rows<HS>(Qs, row_at(q, t.b, t.h, HS, i0), q.st, BR, static_cast<int>(rows));
  const int64_t i0w = i0 + warp * RW, kend = key_end(d, t.b, i0 + rows);
  float m[RW], l[RW], o[RW][HS / 32];
  int n[RW];  // keys row r sees; rows past Tq (zero Q, never written) take the last row's
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    n[r] = static_cast<int>(visible_keys(d, t.b, min(i0w + r, d.Tq - 1)));
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < HS / 32; ++c) o[r][c] = 0.f;
  }
  for (int64_t j0 = 0; j0 < kend; j0 += kLanes) {
    const int keys = static_cast<int>(min(static_cast<int64_t>(kLanes), d.Tk - j0));
    load_rows<HS>(Ks, row_at(k, t.b, t.h, HS, j0), k.st, kLanes, keys);
    load_rows<HS>(Vs, row_at(v, t.b, t.h, HS, j0), v.st, kLanes, keys);
    __syncthreads();
    float s[RW];
    dot_rows<HS, RW>(s, Qs + warp * RW * LD, Ks);  // Q Kᵀ
    online_softmax<HS, RW>(s, m, l, o, Ps + warp * RW * kLdp, n, d.scale, static_cast<int>(j0));
    __syncwarp();                                    // the warp's P rows are written
    mul_rows<HS, RW>(o, Ps + warp * RW * kLdp, Vs);  // O += P V
    __syncthreads();                                 // K, V and P are free for the next tile
  }
  write_rows<HS, RW>(out, L, m, l, o, d, t.b, t.h, i0w);
}

template <int HS>
void launch_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d) {
  const size_t smem = forward_smem(HS);
  allow_smem(flash_forward_kernel<HS>, smem);
  const int64_t tiles = (d.Tq + query_rows(HS) - 1) / query_rows(HS);
  const unsigned blocks = static_cast<unsigned>(tiles * d.B * d.NH);
  flash_forward_kernel<HS><<<blocks, kThreads, smem, stream()>>>(out, L, q, k, v, d);
  LR_CUDA_LAUNCHED();
}

}  // namespace

}  // namespace lowrank::cuda::flash

namespace lowrank::cuda::detail {

void flash_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d) {
  switch (d.hs) {
    case 32:
      return flash::launch_forward<32>(out, L, q, k, v, d);
    case 64:
      return flash::launch_forward<64>(out, L, q, k, v, d);
    case 128:
      return flash::launch_forward<128>(out, L, q, k, v, d);
    default:
      LR_CHECK(false, "flash attention: head size ", d.hs, " has no fused kernel (32, 64 or 128)");
  }
}

}  // namespace lowrank::cuda::detail
