#pragma once
// Training memory by formula: weights + gradients + optimizer state + activations, from a GPTConfig
// and the parameter counts (nn::GPT on Device::Meta, lora::trainable_count). It reproduces the
// paper's claim (Hu et al., 2021, Section 4.2) that LoRA cuts GPT-3 175B training VRAM from 1.2 TB
// to 350 GB: frozen weights need no gradient and no Adam moments, so only the weights remain.
// With 16-bit states FT needs 1.06 TB (gradients not held) to 1.40 TB (held), bracketing the
// published 1.2 TB; LoRA (r=4 on Wq, Wv) needs 357 GB (examples/param_table prints the terms).
//
//   weights     = weight_bytes            · n_params      (frozen or not, all are resident)
//   gradients   = grad_bytes              · n_trainable
//   optimizer   = (master_bytes + 2·moment_bytes) · n_trainable   (Adam's m and v, an fp32 master copy)
//   activations = B·T · [L · per_token_layer + act_bytes · V]      (V: the logits)
//
// per_token_layer follows Korthikanti et al. (2022), "Reducing Activation Recomputation in Large
// Transformer Models", Section 4.1, Eq. 1: one block stores s·b·h·(34 + 5·a·s/h) bytes in 16-bit,
// i.e. per token 16·C + 2·NH·T stored values (LN, QKV, attention, MLP inputs and outputs, the
// softmax and its dropout) plus 2·C + NH·T one-byte dropout masks. With activation checkpointing
// (their "full activation recomputation") a block keeps only its input, C values per token, and one
// block's full set lives again during its recomputation.
// LoRA's extra activations (the r-wide intermediates) are negligible for r << C and not counted;
// a frozen Linear whose input LoRA does not need could drop it, which is also not counted, so the
// activation term is the same for FT and LoRA (an upper bound for LoRA).
#include <cstdint>
#include <string>

#include "nn/config.h"

namespace lowrank::nn {

// Bytes per element of each term; a preset is one accounting convention, named for the output.
struct MemoryAssumptions {
  std::string name = "custom";
  double weight_bytes = 4;     // every parameter
  double grad_bytes = 4;       // per trainable parameter
  double master_bytes = 0;     // fp32 master weights per trainable parameter (mixed precision); 0: none
  double moment_bytes = 4;     // each of Adam's two moments, per trainable parameter
  double act_bytes = 4;        // per stored activation value
  double mask_bytes = 1;       // per dropout-mask element (0: no dropout)
  bool checkpointing = false;  // keep only each block's input (full recomputation)
};

// This framework on CPU: float32 weights, gradients, Adam moments and activations (optim/adamw.h).
MemoryAssumptions fp32_assumptions();
// The paper's accounting (Section 4.2, "we reduce VRAM usage by up to 2/3 ... as we do not need to
// store the optimizer states for the frozen parameters"): every term in 16-bit, so Adam's two
// moments weigh twice the weights; fp16 gradients; activation checkpointing (GPT-3-scale training).
// 8 bytes per trainable parameter: the upper bracket of the published 1.2 TB.
MemoryAssumptions paper_fp16_assumptions();
// Mixed-precision Adam as ZeRO counts it (Rajbhandari et al., 2020, Section 3.1): fp16 weights and
// gradients, fp32 master weights and fp32 moments, 16 bytes per trainable parameter.
MemoryAssumptions mixed_precision_assumptions();
// The paper's "up to 2/3" taken literally: fp16 weights and fp16 moments, gradients not held
// (consumed by a fused per-layer update), 6 bytes per trainable parameter: the lower bracket.
MemoryAssumptions fused_update_assumptions();

struct MemoryEstimate {
  double weights = 0, grads = 0, optimizer = 0, activations = 0;  // bytes
  double total() const { return weights + grads + optimizer + activations; }
};

// Stored activation bytes of one token in one block at sequence length T (see the header comment).
double activation_bytes_per_token_layer(const GPTConfig& cfg, int64_t T, const MemoryAssumptions& a);
// The activation term for a (B, T) batch: blocks, the checkpointing peak and the logits.
double activation_bytes(const GPTConfig& cfg, int64_t B, int64_t T, const MemoryAssumptions& a);

// Peak training memory of one (B, T) step. Throws when counts are negative, n_trainable > n_params
// or B, T are not positive.
MemoryEstimate training_memory(const GPTConfig& cfg, int64_t n_params, int64_t n_trainable, int64_t B, int64_t T,
                               const MemoryAssumptions& a);

// "350.5 GB", "37.7 MB", "1.40 TB": decimal units (10^3), as the paper writes them.
std::string format_bytes(double bytes);

}  // namespace lowrank::nn
