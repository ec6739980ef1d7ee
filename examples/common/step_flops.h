#pragma once
// Exact GEMM FLOP count of one GPT training step (forward + backward), for full fine-tuning and
// LoRA. A GEMM (M,K)·(K,N) costs 2·M·K·N. Elementwise work (LayerNorm, GELU, softmax, AdamW) is
// not counted: it is memory-bound and small next to the GEMMs, and the GEMM floor counts
// GEMMs only (622 GFLOP LoRA / 875 GFLOP FT for GPT-2 124M at 1024 tokens, reproduced here).
//
// With N = B·T tokens, per linear in→out: forward 2·N·in·out, backward dX 2·N·in·out and, only
// when W trains, dW 2·N·in·out. Attention per layer: QKᵀ and P·V, 2·B·T²·C each forward (the full
// T×T, as the floor counts it), four products of the same size backward (dP, dV, dQ, dK).
// LoRA on in→out with rank r: x·Aᵀ and (xAᵀ)·Bᵀ forward, dB, d(xAᵀ), dA, dx backward.
#include <string>

#include "lora/methods.h"
#include "nn/config.h"

namespace lowrank::examples {

struct LinearShape {
  double in, out;
};

// LoRA's own GEMMs on every adapted layer: targets q, k, v, o are C -> C; mlp is c_fc and mlp.c_proj.
inline double lora_layer_flops(const nn::GPTConfig& cfg, double N, const lora::LoRAConfig& l) {
  const double C = static_cast<double>(cfg.n_embd), H = static_cast<double>(cfg.mlp_width());
  const double r = static_cast<double>(l.r);
  double f = 0.0;
  for (const std::string& t : l.targets) f += 3.0 * 2.0 * N * r * (t == "mlp" ? 2.0 * (C + H) : 2.0 * C);
  return f;
}

// head_rows: the rows the tied head runs on (B·T, or fewer when the loss is on some positions only).
inline double step_flops(const nn::GPTConfig& cfg, int64_t B, int64_t T, const lora::MethodConfig& m,
                         int64_t head_rows = -1) {
  const double N = static_cast<double>(B * T), C = static_cast<double>(cfg.n_embd);
  const double H = static_cast<double>(cfg.mlp_width()), V = static_cast<double>(cfg.vocab_size);
  const double L = static_cast<double>(cfg.n_layer);
  const double passes = m.method == "ft" ? 3.0 : 2.0;                // forward + dX (+ dW when the weights train)
  const LinearShape block[] = {{C, 3 * C}, {C, C}, {C, H}, {H, C}};  // c_attn, c_proj, c_fc, mlp.c_proj
  double per_layer = 0.0;
  for (const LinearShape& l : block) per_layer += 2.0 * N * l.in * l.out * passes;
  per_layer += 2.0 * 2.0 * static_cast<double>(B) * T * T * C * 3.0;  // attention: fwd 2 GEMMs, bwd 4
  const double rows = head_rows < 0 ? N : static_cast<double>(head_rows);
  double total = per_layer * L + 2.0 * rows * C * V * passes;  // tied head: dW only when wte trains
  if (m.method == "lora") {
    const double adapted = m.lora.layers.empty() ? L : static_cast<double>(m.lora.layers.size());
    total += lora_layer_flops(cfg, N, m.lora) * adapted;
  }
  return total;
}

}  // namespace lowrank::examples
