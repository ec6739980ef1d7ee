#pragma once
// LoRA (Hu et al., 2021, Section 4.1): a frozen weight W0 (out, in) plus a trainable low-rank update
//   h = W0 x + b + (alpha / r) · B A dropout(x),   A (r, in) ~ Gaussian, B (out, r) = 0
// computed as ((dropout(x) Aᵀ) Bᵀ) · alpha/r, never materialising ΔW = B A during training.
// merge() folds ΔW into W0 for inference with no extra latency (Section 4.2); unmerge() restores W0.
// GPT-2 fuses Wq, Wk, Wv into one c_attn (C -> 3C): LoRAFusedQKV adapts each slice independently,
// so the paper's choice {Wq, Wv} leaves Wk untouched.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::lora {

struct LoRAConfig {
  int64_t r = 4;
  float alpha = 32.f;                         // scale = alpha / r
  float dropout = 0.1f;                       // on the LoRA path's input only
  std::vector<std::string> targets = {"q", "v"};  // any of q, k, v (c_attn slices), o (attn.c_proj), mlp (c_fc, mlp.c_proj)
  std::vector<int64_t> layers;                // blocks to adapt; empty: all
  std::string bias = "none";                  // none | all | lora_only: which biases also train
  float init_std = 0.f;                       // std of A's Gaussian init; 0: 1/r (peft's "gaussian")
  void validate() const;                      // throws naming the bad field
};

// y = base(x) + scale · (dropout(x) Aᵀ) Bᵀ around a frozen Linear.
// Parameter names: "<prefix>weight", "<prefix>bias", "<prefix>lora_A", "<prefix>lora_B".
class LoRALinear : public nn::Linear {
 public:
  LoRALinear(const nn::Linear& base, int64_t r, float alpha, float dropout, float init_std, Rng& rng);
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;
  void merge();    // W += scale · B A   (exact up to float rounding)
  void unmerge();  // W -= scale · B A
  bool merged() const { return merged_; }

  Tensor lora_A;  // (r, in)
  Tensor lora_B;  // (out, r)
  float scale, dropout;

 private:
  bool merged_ = false;
};

// GPT-2's fused c_attn (C -> 3C) with an independent (A, B) pair for each adapted slice of q, k, v.
// Parameter names: "<prefix>weight", "<prefix>bias", "<prefix>lora_A.q", "<prefix>lora_B.q", ... per slice.
class LoRAFusedQKV : public nn::Linear {
 public:
  LoRAFusedQKV(const nn::Linear& base, const std::vector<std::string>& slices, int64_t r, float alpha, float dropout,
               float init_std, Rng& rng);
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;
  void merge();
  void unmerge();
  bool merged() const { return merged_; }

  std::vector<std::string> slices;  // subset of {"q","k","v"}, in q, k, v order
  std::vector<Tensor> lora_A;       // per slice (r, C)
  std::vector<Tensor> lora_B;       // per slice (C, r)
  float scale, dropout;

 private:
  bool merged_ = false;
};

// Freezes every parameter of the model, replaces the targeted Linear modules by LoRA ones (A, B
// trainable), applies the bias mode, and returns the number of trainable parameters.
int64_t apply_lora(nn::GPT& model, const LoRAConfig& cfg, Rng& rng);
void merge(nn::GPT& model);    // every LoRA module of the model
void unmerge(nn::GPT& model);

// Adapter files (safetensors): only the LoRA tensors (and trained biases when bias != none), with the
// config (r, alpha, targets, layers, bias) and the base model's hash in the metadata. Loading checks
// the hash and every tensor's name and shape.
uint64_t base_hash(nn::GPT& model);  // FNV-1a over the frozen base parameters' names and bytes
void save_adapter(const std::string& path, nn::GPT& model, const LoRAConfig& cfg);
LoRAConfig read_adapter_config(const std::string& path);
void load_adapter(const std::string& path, nn::GPT& model);  // model already has apply_lora(cfg)
void export_merged(const std::string& path, nn::GPT& model);  // a plain lowrank GPT checkpoint with ΔW folded in

// Hugging Face peft layout (a directory with adapter_model.safetensors + adapter_config.json;
// names like base_model.model.transformer.h.0.attn.c_attn.lora_A.weight), to exchange adapters with PyTorch users.
void save_peft(const std::string& dir, nn::GPT& model, const LoRAConfig& cfg);
void load_peft(const std::string& dir, nn::GPT& model);  // applies the adapter described by the directory

}  // namespace lowrank::lora
