#pragma once
// LoRA (Hu et al., 2021, Section 4.1): a frozen weight W0 (out, in) plus a trainable low-rank update
//   h = W0 x + b + (alpha / r) · B A dropout(x),   A (r, in) ~ Gaussian, B (out, r) = 0
// computed as ((dropout(x) Aᵀ) Bᵀ) · alpha/r, never materialising ΔW = B A during training.
// merge() folds ΔW into W0 for inference with no extra latency (Section 4.2); unmerge() restores W0.
// GPT-2 fuses Wq, Wk, Wv into one c_attn (C -> 3C): LoRAFusedQKV adapts each slice independently,
// so the paper's choice {Wq, Wv} leaves Wk untouched.
// Variants (peft's names): use_rslora scales by alpha/√r (rsLoRA, Kalajdzievski, 2023); LoRA+ (Hayou
// et al., 2024) trains B at ratio × A's learning rate (loraplus_lr_scale, an AdamW per-tensor multiplier);
// init_lora_weights pissa / olora start A, B from W0's top singular vectors / a QR factorisation with the
// residual frozen (Meng et al., 2024; Büyükakyüz, 2024); use_dora adds DoRA's magnitude (Liu et al., 2024).
// Their mechanics are in lora/variants.h.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::lora {

struct LoRAConfig {
  int64_t r = 4;
  float alpha = 32.f;    // scale = alpha / r (alpha / √r with use_rslora)
  float dropout = 0.1f;  // on the LoRA path's input only
  // any of q, k, v (c_attn slices), o (attn.c_proj), mlp (c_fc, mlp.c_proj), wte (the token embedding,
  // also the tied head; `layers` does not apply to it); or "c_attn" instead of q/k/v: one LoRA over the
  // whole fused c_attn (q, k, v slices sharing one A: peft's GPT-2 layout)
  std::vector<std::string> targets = {"q", "v"};
  std::vector<int64_t> layers;  // blocks to adapt; empty: all
  std::string bias = "none";    // none | all | lora_only: which biases also train
  float init_std = 0.f;         // std of A's Gaussian init; 0: 1/r (peft's "gaussian")
  // rsLoRA (Kalajdzievski, 2023): scale = alpha / √r, which keeps the update's size stable as r grows
  // (with alpha / r, large ranks learn no better than small ones); peft's use_rslora.
  bool use_rslora = false;
  // peft's init_lora_weights: "gaussian" (A ~ N(0, σ²), B = 0: the paper's), "pissa" or "olora"
  // (A0, B0 from W0, frozen residual W0 - scale·B0 A0; lora/variants.h)
  std::string init_lora_weights = "gaussian";
  bool use_dora = false;  // DoRA: a trainable magnitude per output feature (lora/variants.h)
  void validate() const;  // throws naming the bad field
};

// What a LoRA module needs of its config beyond r, alpha, dropout and init_std.
struct LoRAVariant {
  bool rslora = false;
  std::string init = "gaussian";  // gaussian | pissa | olora
  bool dora = false;
};
inline LoRAVariant variant_of(const LoRAConfig& c) { return {c.use_rslora, c.init_lora_weights, c.use_dora}; }

// Why LoRA's backward is cheap: W0 and b are frozen (requires_grad false), so autograd::linear's
// backward gets no gradient buffer for them (autograd/op_util.h: grad_sink returns nullptr) and skips
// the dW = dyᵀ x GEMM, one of its three; only dx flows back through W0, and A, B get their thin
// (r-wide) gradients. That skipped GEMM and AdamW state for A and B alone are LoRA's saving in
// training (Section 4.2).

// What the rest of lora/ needs of any LoRA module, whichever layout: merging, adding its update ΔW
// into a weight, its hyper-parameters, and its pairs in peft's layout (one A, one B per module).
class LoRAModule {
 public:
  virtual ~LoRAModule() = default;
  virtual void merge() = 0;    // W += ΔW (exact up to float rounding); a no-op when already merged
  virtual void unmerge() = 0;  // W -= ΔW (W0 back within float rounding); a no-op when not merged
  virtual bool merged() const = 0;
  virtual void add_delta(Tensor w, float sign) const = 0;  // w += sign · ΔW, w shaped like the weight
  // w, a copy of W0, becomes what merge() makes of W0: W0 + ΔW, and for DoRA m / ‖W0 + ΔW‖ times that
  virtual void merge_into(Tensor w) const { add_delta(w, 1.f); }
  virtual int64_t rank() const = 0;      // r of each (A, B) pair
  virtual float lora_scale() const = 0;  // alpha / r (alpha / √r with rsLoRA)
  virtual bool lora_rslora() const = 0;  // the scale came from alpha / √r
  virtual float lora_dropout() const = 0;
  virtual LoRAVariant lora_variant() const { return {lora_rslora(), "gaussian", false}; }
  // peft's layout: A (R, in), B (out, R) on the host with ΔW = scale · B A (R = r, or r per slice
  // for LoRAFusedQKV's separate slices, B zero outside each slice's block); from_peft is the inverse.
  // With pissa / olora, ΔW = scale · (B A - B0 A0) against W0: A = [A; A0], B = [B, -B0] (R doubled,
  // peft's conversion to a plain LoRA); from_peft then takes R of the unconverted pair.
  virtual std::pair<Tensor, Tensor> to_peft() const = 0;
  virtual void from_peft(const Tensor& A, const Tensor& B) = 0;
};

// The module's LoRA interface, or nullptr for a plain Linear (the one place lora/ asks a type).
LoRAModule* as_lora(nn::Linear* m);
const LoRAModule* as_lora(const nn::Linear* m);

// y = base(x) + scale · (dropout(x) Aᵀ) Bᵀ around a frozen Linear.
// Parameter names: "<prefix>weight", "<prefix>bias", "<prefix>lora_A", "<prefix>lora_B".
class LoRALinear : public nn::Linear, public LoRAModule {
 public:
  LoRALinear(const nn::Linear& base, int64_t r, float alpha, float dropout, float init_std, Rng& rng,
             const LoRAVariant& var = {});
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;
  void merge() override;    // W += scale · B A
  void unmerge() override;  // W -= scale · B A
  bool merged() const override { return merged_; }
  void add_delta(Tensor w, float sign) const override;
  void merge_into(Tensor w) const override;
  int64_t rank() const override { return lora_A.size(0); }
  float lora_scale() const override { return scale; }
  float lora_dropout() const override { return dropout; }
  bool lora_rslora() const override { return rslora; }
  LoRAVariant lora_variant() const override { return {rslora, init, magnitude.defined()}; }
  std::pair<Tensor, Tensor> to_peft() const override;
  void from_peft(const Tensor& A, const Tensor& B) override;

  Tensor lora_A;            // (r, in)
  Tensor lora_B;            // (out, r)
  Tensor lora_A0, lora_B0;  // pissa / olora: the frozen initial pair (r, in), (out, r); else undefined
  Tensor magnitude;         // DoRA: m (out), "<prefix>lora_magnitude"; else undefined
  float scale, dropout;
  bool rslora = false;
  std::string init = "gaussian";
  std::vector<float> dora_factor;  // DoRA while merged: the m / ‖W0 + ΔW‖ that merge() applied

 private:
  Tensor forward_variant(const Tensor& x, const nn::Context& ctx);
  void add_delta_variant(Tensor w, float sign) const;  // - sign · s·B0 A0 (pissa / olora)
  bool merged_ = false;
};

// GPT-2's fused c_attn (C -> 3C) with an independent (A, B) pair for each adapted slice of q, k, v.
// Parameter names: "<prefix>weight", "<prefix>bias", "<prefix>lora_A.q", "<prefix>lora_B.q", ... per slice.
class LoRAFusedQKV : public nn::Linear, public LoRAModule {
 public:
  // shared_A: one A (r, C) for every slice (lora_A has one entry, named "<prefix>lora_A"): exactly a
  // single rank-r LoRA on all of c_attn with B = [B_q; B_k; B_v] (how peft adapts GPT-2's c_attn).
  LoRAFusedQKV(const nn::Linear& base, const std::vector<std::string>& slices, int64_t r, float alpha, float dropout,
               float init_std, Rng& rng, bool shared_A = false, const LoRAVariant& var = {});
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;
  void merge() override;
  void unmerge() override;
  bool merged() const override { return merged_; }
  void add_delta(Tensor w, float sign) const override;
  void merge_into(Tensor w) const override;
  int64_t rank() const override { return lora_A[0].size(0); }
  float lora_scale() const override { return scale; }
  float lora_dropout() const override { return dropout; }
  bool lora_rslora() const override { return rslora; }
  LoRAVariant lora_variant() const override { return {rslora, init, !magnitude.empty()}; }
  std::pair<Tensor, Tensor> to_peft() const override;  // R = r (shared_A) or r · |slices|
  void from_peft(const Tensor& A, const Tensor& B) override;

  std::vector<std::string> slices;       // subset of {"q","k","v"}, in q, k, v order
  std::vector<Tensor> lora_A;            // per slice (r, C); one shared (r, C) when shared_A
  std::vector<Tensor> lora_B;            // per slice (C, r)
  std::vector<Tensor> lora_A0, lora_B0;  // pissa / olora: the frozen initial pairs, laid out as lora_A, lora_B
  std::vector<Tensor> magnitude;         // DoRA: m (C) per slice, "<prefix>lora_magnitude.q", ...
  float scale, dropout;
  bool shared_A = false;
  bool rslora = false;
  std::string init = "gaussian";
  std::vector<float> dora_factor;  // DoRA while merged: per slice row, what merge() applied

 private:
  // lora/lora_variants.cpp: pissa / olora / DoRA on top of the per-slice LoRA
  void init_variant(bool dora);
  Tensor forward_variant(const Tensor& x, const nn::Context& ctx);
  void merge_variant();                                 // after ΔW = s·B A is folded: - s·B0 A0, then DoRA's rows
  void unmerge_variant();                               // the reverse, before s·B A is taken out
  void add_delta_variant(Tensor w, float sign) const;   // - sign · s·B0 A0 per slice (pissa / olora)
  std::pair<Tensor, Tensor> to_peft_converted() const;  // pissa / olora: rank 2r per slice (or 2r shared)
  bool merged_ = false;
};

// LoRA on the token embedding (target "wte"; loralib's lora.Embedding, peft's lora_embedding_A/B).
// The table E (V, C) is the linear map from one-hot ids, W = Eᵀ (C, V), so its update is
//   ΔW = scale · B A,  A (r, V) = 0,  B (C, r) ~ Gaussian:  ΔE = scale · Aᵀ Bᵀ,
// zero on A rather than B because a lookup reads one column of A, whose gradient Bᵀ dy is nonzero
// only if B is. lookup: ΔE[ids] = scale · (A[:, ids]ᵀ) Bᵀ (a gather of r-wide rows, then (r -> C));
// the tied head: h ΔEᵀ = scale · (h B) A, so the head and the lookup both see E + ΔE and merge() is
// exact for both. No dropout on this path (loralib and peft apply none to embeddings).
// Parameter names: "wte.lora_A" (r, V), "wte.lora_B" (C, r).
class LoRAEmbedding : public nn::EmbeddingDelta, public LoRAModule {
 public:
  LoRAEmbedding(const nn::Embedding& base, int64_t r, float alpha, float init_std, Rng& rng, bool rslora = false);
  Tensor lookup(const std::vector<int32_t>& ids, const Shape& ids_shape) override;
  Tensor head(const Tensor& h) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;
  void merge() override;    // E += scale · Aᵀ Bᵀ
  void unmerge() override;  // E -= scale · Aᵀ Bᵀ
  bool merged() const override { return merged_; }
  void add_delta(Tensor w, float sign) const override;
  int64_t rank() const override { return lora_A.size(0); }
  float lora_scale() const override { return scale; }
  float lora_dropout() const override { return 0.f; }
  bool lora_rslora() const override { return rslora; }
  std::pair<Tensor, Tensor> to_peft() const override;  // peft's lora_embedding_A (r, V), lora_embedding_B (C, r)
  void from_peft(const Tensor& A, const Tensor& B) override;

  Tensor weight;  // the adapted table E (V, C), shared with the Embedding (frozen)
  Tensor lora_A;  // (r, V)
  Tensor lora_B;  // (C, r)
  float scale;
  bool rslora = false;

 private:
  bool merged_ = false;
};
// The token embedding's LoRA, or nullptr.
LoRAModule* embedding_lora(nn::GPT& model);

// Freezes every parameter of the model, replaces the targeted Linear modules by LoRA ones (A, B
// trainable), applies the bias mode, and returns the number of trainable parameters.
int64_t apply_lora(nn::GPT& model, const LoRAConfig& cfg, Rng& rng);
void merge(nn::GPT& model);  // every LoRA module of the model
void unmerge(nn::GPT& model);
// The config apply_lora used, read back from the model's modules (r, use_rslora, alpha = scale·r or
// scale·√r, dropout, targets, layers; bias from which biases train; init_std 0). Throws when the model
// has no LoRA.
LoRAConfig lora_config_of(nn::GPT& model);

// The scale of a LoRA of rank r: alpha / r, or alpha / √r with rsLoRA.
float lora_scale_of(int64_t r, float alpha, bool rslora);

// LoRA+ (Hayou et al., 2024): B learns ratio times faster than A. The per-tensor learning-rate
// multipliers (optim::AdamWConfig::lr_scale) that give every trainable lora_B tensor (per slice, and
// wte's) `ratio`; empty when ratio is 0 or 1 (off).
std::map<std::string, float> loraplus_lr_scale(nn::GPT& model, float ratio);

// Adapter files (safetensors): only the LoRA tensors (and trained biases when bias != none), with the
// config (r, alpha, use_rslora, targets, layers, bias) and the base model's hash in the metadata. Loading checks
// the hash and every tensor's name and shape.
// base_hash: FNV-1a over the names and bytes of every parameter the adapter does not carry (all but
// A, B and the trained biases), so a plain model hashes like itself with LoRA applied. Throws on a
// merged model. (merge + unmerge moves W0 by float rounding, which changes the hash.)
uint64_t base_hash(nn::GPT& model);
void save_adapter(const std::string& path, nn::GPT& model, const LoRAConfig& cfg);  // cfg must match the model
LoRAConfig read_adapter_config(const std::string& path);
// The model already has apply_lora(cfg): checks config ("lora.config" vs lora_config_of), base hash
// ("lora.base_hash") and every tensor's name and shape before copying anything.
void load_adapter(const std::string& path, nn::GPT& model);
// The same with the base's hash given: the hash W0 had before merges and unmerges moved it by float
// rounding (lora::AdapterSet computes it once and checks every later adapter against it).
void load_adapter(const std::string& path, nn::GPT& model, uint64_t base);
// A plain lowrank GPT checkpoint (nn::load_model) with ΔW folded into copies of the adapted W; the
// model itself is left exactly as it was (no merge/unmerge round trip).
void export_merged(const std::string& path, nn::GPT& model);
// The same merged model as a Hugging Face GPT-2 directory (config.json + model.safetensors,
// nn/hf_gpt2.h) that transformers' GPT2LMHeadModel.from_pretrained loads; the model is left as it was.
void export_merged_hf(const std::string& dir, nn::GPT& model);

// Hugging Face peft layout (a directory with adapter_model.safetensors + adapter_config.json;
// names like base_model.model.transformer.h.0.attn.c_attn.lora_A.weight), to exchange adapters with PyTorch users.
// peft has one LoRA per fused c_attn: our slices S (rank r each) are written exactly as one of rank
// r·|S| with A = [A_s; ...] stacked, B block-structured (B_s in slice s's rows and its own r columns,
// zeros elsewhere) and lora_alpha = scale · r·|S|; other targets keep rank r (rank_pattern then gives
// c_attn's). "o" is written as target "attn.c_proj", "mlp" as "c_fc" + "mlp.c_proj", both as "c_proj".
// base_model_name_or_path is `base` (the base as the user gave it: an HF directory or hub name; "" means
// the model's config name).
void save_peft(const std::string& dir, nn::GPT& model, const LoRAConfig& cfg, const std::string& base = "");
// Applies the adapter described by the directory to a plain GPT. A general c_attn LoRA (A, B) of
// rank R becomes target "c_attn": slices q, k, v sharing A, B_s = B's rows of slice s (exact); our
// own per-slice layout is restored when the file carries our config and B has that block structure, or,
// without our config (an adapter peft's save_pretrained wrote again), when every c_attn B is made of
// rank-r runs of columns in one slice's rows each. rank_pattern / alpha_pattern keys are regular
// expressions matched as peft matches them (first key in file order; lora/peft_patterns.cpp).
// Errors (naming the file and tensor): non-LORA or DoRA adapters, lora_bias, modules_to_save, modules other
// than c_attn / attn.c_proj / mlp.c_fc+mlp.c_proj, different modules or ranks or scales per layer.
void load_peft(const std::string& dir, nn::GPT& model);

}  // namespace lowrank::lora
