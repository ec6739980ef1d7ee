#pragma once
// The CPU kernels of attention (attention_kernels.cpp, where the math and the tiling are derived),
// on raw pointers. attention.cpp builds these from tensors and owns the node, the checks and the
// CUDA glue. Internal to autograd, not part of the public API.
#include <algorithm>
#include <cstdint>

namespace lowrank::autograd::detail {

// A (B, T, C) operand with unit channel stride: element (b, t, c) is p[b*sb + t*st + c].
struct Operand {
  float* p = nullptr;
  int64_t sb = 0, st = 0;
  const float* head(int64_t b, int64_t h, int64_t hs) const { return p + b * sb + h * hs; }
  const float* row(int64_t b, int64_t h, int64_t hs, int64_t t) const { return head(b, h, hs) + t * st; }
};

struct AttnDims {
  int64_t B = 0, Tq = 0, Tk = 0, C = 0, NH = 1, hs = 0;
  bool causal = false;
  float scale = 1.f;
  const int32_t* key_len = nullptr;  // (B) valid keys per sequence (right padding), or nullptr: all
  // Query i of sequence b sees keys [0, visible(b, i)); non-decreasing in i.
  int64_t visible(int64_t b, int64_t i) const {
    const int64_t n = causal ? i + (Tk - Tq) + 1 : Tk;
    return key_len ? std::min<int64_t>(n, key_len[b]) : n;
  }
  int64_t work() const { return B * NH * Tq * Tk * hs; }
};

// Gradient buffers: contiguous (B, T, C), row stride C; nullptr = that input needs no gradient.
// out: the forward's output (B, Tq, C), which the CUDA flash kernels read for D = rowsum(dO ⊙ O)
// (cuda/flash_attention_bwd.cu); the CPU kernels do not read it.
struct AttnGrads {
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
  const float* dout = nullptr;
  const float* out = nullptr;
};

// The tiles both the fp32 kernels (attention_kernels.cpp) and the bf16 ones (attention_bf16.cpp) use.
constexpr int64_t kRowBlock = 64;  // query rows per tile: S tile (64, Tk) stays in L2

// One tile: query rows [i0, i1) of pair (b, h) against keys [0, nk), nk = what row i1-1 sees.
struct Tile {
  int64_t b, h, i0, i1, nk;
  int64_t rows() const { return i1 - i0; }
};

// Runs f(tile) over every tile of pair (b, h), rows in blocks of kRowBlock.
template <typename F>
void for_each_tile(const AttnDims& d, int64_t b, int64_t h, F f) {
  for (int64_t i0 = 0; i0 < d.Tq; i0 += kRowBlock) {
    const int64_t i1 = std::min(d.Tq, i0 + kRowBlock);
    f(Tile{b, h, i0, i1, d.visible(b, i1 - 1)});
  }
}

// On a (rows, t.nk) tile S of scores, row stride t.nk; keys past a row's visible ones become exactly 0.
void softmax_tile(float* S, float* L, const AttnDims& d, const Tile& t);      // forward: P, and L of its rows
void probs_tile(float* S, const float* L, const AttnDims& d, const Tile& t);  // backward: P = exp(S − L)
void softmax_backward_tile(float* dS, const float* P, const Tile& t);         // in place over dP: dS

// out (B, Tq, C); L (B, NH, Tq) the row log-sum-exps (always written: Tq floats per pair).
void attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d);

// Accumulates into g.dq/dk/dv (those not nullptr) from g.dout (B, Tq, C) and the forward's L.
void attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                        const AttnDims& d);

// The same under the bf16 policy: every tile product in bf16 with fp32 accumulation (attention_bf16.cpp);
// softmax, L and the softmax backward in fp32. Needs tensor::bf16_gemm_available().
void attention_forward_bf16(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                            const AttnDims& d);
void attention_backward_bf16(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d);

}  // namespace lowrank::autograd::detail
