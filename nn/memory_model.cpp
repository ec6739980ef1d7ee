#include "nn/memory_model.h"

#include <cstdio>

#include "tensor/error.h"

namespace lowrank::nn {

MemoryAssumptions fp32_assumptions() {
  MemoryAssumptions a;
  a.name = "fp32 (this framework)";
  return a;  // the defaults: 4 bytes everywhere, one-byte masks, no checkpointing
}

MemoryAssumptions paper_fp16_assumptions() {
  MemoryAssumptions a;
  a.name = "fp16 W/grad/Adam m,v + ckpt";
  a.weight_bytes = a.grad_bytes = a.moment_bytes = a.act_bytes = 2;
  a.checkpointing = true;
  return a;
}

MemoryAssumptions mixed_precision_assumptions() {
  MemoryAssumptions a = paper_fp16_assumptions();
  a.name = "mixed precision (ZeRO, 16 B/param)";
  a.master_bytes = 4;
  a.moment_bytes = 4;
  return a;
}

MemoryAssumptions fused_update_assumptions() {
  MemoryAssumptions a = paper_fp16_assumptions();
  a.name = "fp16 W + Adam m,v, no grads held";
  a.grad_bytes = 0;
  return a;
}

double activation_bytes_per_token_layer(const GPTConfig& cfg, int64_t T, const MemoryAssumptions& a) {
  const double C = static_cast<double>(cfg.n_embd), NH = static_cast<double>(cfg.n_head);
  if (a.checkpointing) return a.act_bytes * C;  // the block's input only
  // Korthikanti et al. (2022), Eq. 1 divided by s·b: 16·C + 2·NH·T values (34·C + 5·NH·T bytes in
  // fp16 once the 2·C + NH·T one-byte dropout masks are added).
  const double S = static_cast<double>(T);
  return a.act_bytes * (16 * C + 2 * NH * S) + a.mask_bytes * (2 * C + NH * S);
}

double activation_bytes(const GPTConfig& cfg, int64_t B, int64_t T, const MemoryAssumptions& a) {
  cfg.validate();
  LR_CHECK(B > 0 && T > 0, "activation_bytes: B and T must be positive, got B=", B, " T=", T);
  LR_CHECK(T <= cfg.n_positions, "activation_bytes: T=", T, " exceeds ", cfg.name, "'s n_positions ", cfg.n_positions);
  double per_token = static_cast<double>(cfg.n_layer) * activation_bytes_per_token_layer(cfg, T, a);
  if (a.checkpointing) {  // one block's full set is live again while it is recomputed in backward
    MemoryAssumptions full = a;
    full.checkpointing = false;
    per_token += activation_bytes_per_token_layer(cfg, T, full);
  }
  per_token += a.act_bytes * static_cast<double>(cfg.vocab_size);  // the logits (B, T, V)
  return static_cast<double>(B) * static_cast<double>(T) * per_token;
}

MemoryEstimate training_memory(const GPTConfig& cfg, int64_t n_params, int64_t n_trainable, int64_t B, int64_t T,
                               const MemoryAssumptions& a) {
  LR_CHECK(n_params >= 0 && n_trainable >= 0, "training_memory: negative parameter count (", n_params, ", ",
           n_trainable, ")");
  LR_CHECK(n_trainable <= n_params, "training_memory: ", n_trainable, " trainable of only ", n_params, " parameters");
  MemoryEstimate m;
  m.weights = a.weight_bytes * static_cast<double>(n_params);
  m.grads = a.grad_bytes * static_cast<double>(n_trainable);
  m.optimizer = (a.master_bytes + 2 * a.moment_bytes) * static_cast<double>(n_trainable);
  m.activations = activation_bytes(cfg, B, T, a);
  return m;
}

std::string format_bytes(double bytes) {
  struct Unit {
    double scale;
    const char* name;
    const char* fmt;
  };
  static const Unit units[] = {
      {1e12, "TB", "%.2f %s"}, {1e9, "GB", "%.1f %s"}, {1e6, "MB", "%.1f %s"}, {1e3, "kB", "%.1f %s"}};
  char buf[48];
  for (const Unit& u : units)
    if (bytes >= u.scale) {
      std::snprintf(buf, sizeof buf, u.fmt, bytes / u.scale, u.name);
      return buf;
    }
  std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  return buf;
}

}  // namespace lowrank::nn
