// LoRA on the token embedding (lora.h, LoRAEmbedding): the table's update as two thin factors.
#include <cmath>

#include "lora/internal.h"
#include "tensor/error.h"

namespace lowrank::lora {

LoRAEmbedding::LoRAEmbedding(const nn::Embedding& base, int64_t r, float alpha, float init_std, Rng& rng, bool rslora_)
    : weight(base.weight), scale(lora_scale_of(r, alpha, rslora_)), rslora(rslora_) {
  const int64_t V = weight.size(0), C = weight.size(1);
  LR_CHECK(r >= 1 && r <= std::min(V, C), "LoRAEmbedding: r=", r, " must be in [1, ", std::min(V, C), "] for a table ",
           weight.shape());
  LR_CHECK(std::isfinite(alpha) && alpha > 0.f, "LoRAEmbedding: alpha must be > 0, got ", alpha);
  LR_CHECK(std::isfinite(init_std) && init_std >= 0.f, "LoRAEmbedding: init_std must be >= 0, got ", init_std);
  weight.requires_grad_(false);
  nn::Init init{rng, weight.device()};
  lora_A = init.constant({r, V}, 0.f);
  // peft and loralib draw B from N(0, 1); the std is LoRALinear's rule for its Gaussian factor
  // (init_std, or 1/r) so that, with the alpha/r scale, the update's size hardly depends on r.
  lora_B = init.normal({C, r}, init_std > 0.f ? init_std : 1.f / static_cast<float>(r));
  lora_A.requires_grad_(true);
  lora_B.requires_grad_(true);
}

// ΔE[ids] = scale · A[:, ids]ᵀ Bᵀ: gather (N, r) rows of Aᵀ (a strided view; the lookup packs it),
// then (N, r) -> (N, C). Never forms the (V, C) ΔE.
Tensor LoRAEmbedding::lookup(const std::vector<int32_t>& ids, const Shape& ids_shape) {
  Tensor u = autograd::embedding(autograd::transpose(lora_A, 0, 1), ids, ids_shape);  // ids_shape + (r)
  return autograd::scale(autograd::linear(u, lora_B), scale);                         // ids_shape + (C)
}

// h ΔEᵀ = scale · (h B) A: (..., C)·(C, r) -> (..., r), then ·(r, V) -> (..., V).
Tensor LoRAEmbedding::head(const Tensor& h) {
  return autograd::scale(autograd::matmul(autograd::matmul(h, lora_B), lora_A), scale);
}

void LoRAEmbedding::collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) {
  out.push_back({prefix + "lora_A", lora_A});
  out.push_back({prefix + "lora_B", lora_B});
}

// w (V, C) += s · Aᵀ Bᵀ, outside the tape.
void LoRAEmbedding::add_delta(Tensor w, float sign) const {
  LR_CHECK(w.shape() == weight.shape(), "add_delta: ", w.shape(), " vs embedding ", weight.shape());
  if (w.device() == Device::Meta) return;
  autograd::NoGradGuard ng;
  w.add_(autograd::matmul(lora_A, lora_B, true, true), sign * scale);
}

void LoRAEmbedding::merge() {
  if (merged_) return;
  add_delta(weight, 1.f);
  merged_ = true;
}

void LoRAEmbedding::unmerge() {
  if (!merged_) return;
  add_delta(weight, -1.f);
  merged_ = false;
}

std::pair<Tensor, Tensor> LoRAEmbedding::to_peft() const { return {lora_A.to(Device::CPU), lora_B.to(Device::CPU)}; }

void LoRAEmbedding::from_peft(const Tensor& A, const Tensor& B) {
  lora_A.copy_(A);
  lora_B.copy_(B);
}

LoRAModule* embedding_lora(nn::GPT& model) { return dynamic_cast<LoRAEmbedding*>(model.wte.delta.get()); }

}  // namespace lowrank::lora
