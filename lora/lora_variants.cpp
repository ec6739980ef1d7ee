// PiSSA / OLoRA and DoRA inside the LoRA modules (the equations are in lora/variants.h). The plain
// LoRA path of each module stays in lora/lora.cpp, where lab 5 writes it; these only add to it.
#include <tuple>

#include "lora/internal.h"
#include "lora/lora.h"
#include "lora/variants.h"

namespace lowrank::lora {

namespace {

// w += s · B A, off the tape
void fold_pair(Tensor w, const Tensor& B, const Tensor& A, float s) {
  autograd::NoGradGuard ng;
  w.add_(autograd::matmul(B, A), s);
}

// A0 shaped like a (frozen), for the meta-device probes that load adapters (no memory, no SVD)
Tensor meta_like(const Tensor& a) { return Tensor::zeros(a.shape(), tensor::Device::Meta); }

}  // namespace

// ---- LoRALinear ----

// PiSSA / OLoRA: W_res x = W0 x - s·B0 (A0 x) on the undropped x; DoRA: (m / ‖W0 + ΔW‖) ⊙ (W0 x + s·ΔW x) + b.
Tensor LoRALinear::forward_variant(const Tensor& x, const nn::Context& ctx) {
  Tensor h = autograd::linear(autograd::linear(nn::dropout_if_training(x, dropout, ctx), lora_A), lora_B);
  if (lora_A0.defined()) h = autograd::sub(h, autograd::linear(autograd::linear(x, lora_A0), lora_B0));
  if (!magnitude.defined()) return autograd::add(autograd::linear(x, weight, bias), autograd::scale(h, scale));
  Tensor g = variants::dora_factor(magnitude, weight, variants::delta(lora_B, lora_A, lora_B0, lora_A0, scale));
  Tensor y = autograd::mul(autograd::add(autograd::linear(x, weight), autograd::scale(h, scale)), g);
  return bias.defined() ? autograd::add(y, bias) : y;
}

void LoRALinear::add_delta_variant(Tensor w, float sign) const {
  if (lora_A0.defined()) fold_pair(w, lora_B0, lora_A0, -sign * scale);
}

void LoRALinear::merge_into(Tensor w) const {
  add_delta(w, 1.f);
  if (magnitude.defined()) variants::dora_merge(w, magnitude);
}

// ---- LoRAFusedQKV ----

// Separate slices: each slice's rows (C, C) of W0 get their own A0, B0 and magnitude. Shared A (target
// c_attn, peft's layout): one factorisation of the whole (3C, C) W0, B0's rows split by slice.
void LoRAFusedQKV::init_variant(bool dora) {
  const int64_t C = in_features(), r = rank();
  const bool meta = weight.device() == tensor::Device::Meta;
  if (init != "gaussian") {
    auto rows = [&](size_t j) { return weight.narrow(0, detail::slice_index(slices[j]) * C, C); };
    if (shared_A) {
      auto [A0, B0] = meta ? std::pair{meta_like(lora_A[0]), Tensor::zeros({3 * C, r}, tensor::Device::Meta)}
                           : variants::init_pair(init, weight, r, scale);
      lora_A0.push_back(A0);
      for (size_t j = 0; j < slices.size(); ++j) lora_B0.push_back(B0.narrow(0, detail::slice_index(slices[j]) * C, C));
    } else {
      for (size_t j = 0; j < slices.size(); ++j) {
        auto [A0, B0] =
            meta ? std::pair{meta_like(lora_A[j]), meta_like(lora_B[j])} : variants::init_pair(init, rows(j), r, scale);
        lora_A0.push_back(A0);
        lora_B0.push_back(B0);
      }
    }
    if (!meta) {
      for (size_t j = 0; j < lora_A.size(); ++j) lora_A[j].copy_(lora_A0[j]);
      for (size_t j = 0; j < slices.size(); ++j) lora_B[j].copy_(lora_B0[j]);
    }
  }
  if (dora)
    for (size_t j = 0; j < slices.size(); ++j)
      magnitude.push_back(
          variants::row_norms(weight.narrow(0, detail::slice_index(slices[j]) * C, C)).clone().requires_grad_(true));
}

Tensor LoRAFusedQKV::forward_variant(const Tensor& x, const nn::Context& ctx) {
  const int64_t C = in_features();
  const bool residual = !lora_A0.empty();
  Tensor d = nn::dropout_if_training(x, dropout, ctx);
  Tensor shared = shared_A ? autograd::linear(d, lora_A[0]) : Tensor();
  Tensor shared0 = shared_A && residual ? autograd::linear(x, lora_A0[0]) : Tensor();
  std::vector<Tensor> parts;
  std::vector<int64_t> offsets;
  for (size_t j = 0; j < slices.size(); ++j) {
    Tensor p = autograd::linear(shared_A ? shared : autograd::linear(d, lora_A[j]), lora_B[j]);
    if (residual)
      p = autograd::sub(p, autograd::linear(shared_A ? shared0 : autograd::linear(x, lora_A0[j]), lora_B0[j]));
    parts.push_back(p);
    offsets.push_back(detail::slice_index(slices[j]) * C);
  }
  if (magnitude.empty()) return autograd::add_columns(autograd::linear(x, weight, bias), parts, offsets, scale);
  // DoRA: one factor per output row of c_attn, 1 on the slices without an adapter
  std::vector<Tensor> g(3);
  for (size_t j = 0; j < slices.size(); ++j) {
    const int s = detail::slice_index(slices[j]);
    const size_t a = shared_A ? 0 : j;
    Tensor dw = variants::delta(lora_B[j], lora_A[a], residual ? lora_B0[j] : Tensor(),
                                residual ? lora_A0[a] : Tensor(), scale);
    g[static_cast<size_t>(s)] = variants::dora_factor(magnitude[j], weight.narrow(0, s * C, C), dw);
  }
  for (Tensor& t : g)
    if (!t.defined()) t = Tensor::full({C}, 1.f, weight.device());
  Tensor y =
      autograd::mul(autograd::add_columns(autograd::linear(x, weight), parts, offsets, scale), autograd::concat(g, 0));
  return bias.defined() ? autograd::add(y, bias) : y;
}

void LoRAFusedQKV::add_delta_variant(Tensor w, float sign) const {
  const int64_t C = in_features();
  for (size_t j = 0; j < lora_B0.size(); ++j)
    fold_pair(w.narrow(0, detail::slice_index(slices[j]) * C, C), lora_B0[j], lora_A0[shared_A ? 0 : j], -sign * scale);
}

void LoRAFusedQKV::merge_into(Tensor w) const {
  add_delta(w, 1.f);
  const int64_t C = in_features();
  for (size_t j = 0; j < magnitude.size(); ++j)
    variants::dora_merge(w.narrow(0, detail::slice_index(slices[j]) * C, C), magnitude[j]);
}

// Separate slices: per slice, 2r columns in its rows, [B_j, -B0_j] against [A_j; A0_j] (our per-slice
// layout at rank 2r, which load_peft recognises); shared A: [A; A0] with each slice's rows [B_s, -B0_s].
std::pair<Tensor, Tensor> LoRAFusedQKV::to_peft_converted() const {
  const int64_t C = in_features(), r = rank(), n = static_cast<int64_t>(slices.size());
  const int64_t R = shared_A ? 2 * r : 2 * r * n;
  Tensor A = Tensor::zeros({R, C}), B = Tensor::zeros({3 * C, R});
  if (shared_A) {
    Tensor full_B = Tensor::zeros({3 * C, r}), full_B0 = Tensor::zeros({3 * C, r});
    for (int64_t j = 0; j < n; ++j) {
      const int64_t row = detail::slice_index(slices[static_cast<size_t>(j)]) * C;
      full_B.narrow(0, row, C).copy_(lora_B[static_cast<size_t>(j)].to(tensor::Device::CPU));
      full_B0.narrow(0, row, C).copy_(lora_B0[static_cast<size_t>(j)].to(tensor::Device::CPU));
    }
    return variants::converted(lora_A[0], full_B, lora_A0[0], full_B0);
  }
  for (int64_t j = 0; j < n; ++j) {
    const size_t k = static_cast<size_t>(j);
    auto [a, b] = variants::converted(lora_A[k], lora_B[k], lora_A0[k], lora_B0[k]);
    A.narrow(0, j * 2 * r, 2 * r).copy_(a);
    B.narrow(0, detail::slice_index(slices[k]) * C, C).narrow(1, j * 2 * r, 2 * r).copy_(b);
  }
  return {A, B};
}

void LoRAFusedQKV::merge_variant() {
  const int64_t C = in_features();
  dora_factor.clear();
  for (size_t j = 0; j < slices.size(); ++j) {
    Tensor rows = weight.narrow(0, detail::slice_index(slices[j]) * C, C);
    if (!lora_A0.empty()) fold_pair(rows, lora_B0[j], lora_A0[shared_A ? 0 : j], -scale);
    if (magnitude.empty()) continue;
    const std::vector<float> g = variants::dora_merge(rows, magnitude[j]);
    dora_factor.insert(dora_factor.end(), g.begin(), g.end());
  }
}

void LoRAFusedQKV::unmerge_variant() {
  const int64_t C = in_features();
  for (size_t j = 0; j < slices.size(); ++j) {
    Tensor rows = weight.narrow(0, detail::slice_index(slices[j]) * C, C);
    if (!magnitude.empty())
      variants::scale_rows(rows,
                           std::vector<float>(dora_factor.begin() + static_cast<int64_t>(j) * C,
                                              dora_factor.begin() + static_cast<int64_t>(j + 1) * C),
                           true);
    if (!lora_A0.empty()) fold_pair(rows, lora_B0[j], lora_A0[shared_A ? 0 : j], scale);
  }
}

}  // namespace lowrank::lora
