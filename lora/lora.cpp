// LoRA modules (Hu et al., 2021, Section 4.1): a frozen Linear plus a trainable low-rank path.
#include "lora/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "lora/internal.h"
#include "lora/variants.h"
#include "tensor/error.h"

namespace lowrank::lora {

namespace {

void check_hparams(const char* who, int64_t r, float alpha, float dropout, float init_std) {
  LR_CHECK(r >= 1, who, ": rank r must be >= 1, got ", r);
  LR_CHECK(std::isfinite(alpha) && alpha > 0.f, who, ": alpha must be > 0, got ", alpha);
  LR_CHECK(dropout >= 0.f && dropout < 1.f, who, ": dropout must be in [0, 1), got ", dropout);
  LR_CHECK(std::isfinite(init_std) && init_std >= 0.f, who, ": init_std must be >= 0, got ", init_std);
}

// A ~ N(0, σ²) with σ = init_std, or 1/r (peft's "gaussian" init). The paper only says "random
// Gaussian" (Section 4.1); 1/r keeps ‖A x‖ independent of r, so with the alpha/r scale the update
// size barely depends on r and alpha need not be retuned when r changes.
Tensor init_A(const nn::Init& init, int64_t r, int64_t in, float init_std) {
  Tensor a = init.normal({r, in}, init_std > 0.f ? init_std : 1.f / static_cast<float>(r));
  a.requires_grad_(true);
  return a;
}

// B = 0, so ΔW = BA = 0 at the start: training begins exactly at the pretrained model.
Tensor init_B(const nn::Init& init, int64_t out, int64_t r) {
  Tensor b = init.constant({out, r}, 0.f);
  b.requires_grad_(true);
  return b;
}

// The wrapper shares W0 and b with the wrapped Linear (same tensors, no copy) and freezes them;
// apply_lora's bias mode may unfreeze b afterwards.
void adopt_base(nn::Linear& self, const nn::Linear& base) {
  self.weight = base.weight;
  self.bias = base.bias;
  self.weight.requires_grad_(false);
  if (self.bias.defined()) self.bias.requires_grad_(false);
}

// The Linear base class built over the meta device: no memory, no random draws; adopt_base then
// installs the real handles.
nn::Linear shell(const nn::Linear& base, Rng& rng) {
  return nn::Linear(base.in_features(), base.out_features(), false, nn::Init{rng, Device::Meta});
}

// Dropout on the adapter's input only (loralib's lora_dropout): the frozen path sees x unchanged.
Tensor lora_input(const Tensor& x, float p, const nn::Context& ctx) { return nn::dropout_if_training(x, p, ctx); }

// w += s · B A, computed outside the tape (merging is not a differentiable step).
void fold(Tensor w, const Tensor& B, const Tensor& A, float s) {
  // LAB 5 begin: fold (w += s·B·A, outside the tape)
  if (w.device() == Device::Meta) return;
  autograd::NoGradGuard ng;
  w.add_(autograd::matmul(B, A), s);
  // LAB 5 end
}

void fold_fused(Tensor w, const LoRAFusedQKV& m, float s) {
  const int64_t C = m.in_features();
  for (size_t j = 0; j < m.slices.size(); ++j)
    fold(w.narrow(0, detail::slice_index(m.slices[j]) * C, C), m.lora_B[j], m.lora_A[m.shared_A ? 0 : j], s);
}

std::vector<std::string> canonical_slices(const std::vector<std::string>& in) {
  LR_CHECK(!in.empty(), "LoRAFusedQKV: no slices to adapt (expected some of q, k, v)");
  std::set<int> idx;
  for (const std::string& s : in) {
    const int i = detail::slice_index(s);
    LR_CHECK(i >= 0, "LoRAFusedQKV: unknown slice '", s, "' (expected q, k or v)");
    LR_CHECK(idx.insert(i).second, "LoRAFusedQKV: slice '", s, "' listed twice");
  }
  std::vector<std::string> out;
  for (int i : idx) out.push_back(i == 0 ? "q" : i == 1 ? "k" : "v");
  return out;
}

}  // namespace

void LoRAConfig::validate() const {
  check_hparams("LoRAConfig", r, alpha, dropout, init_std);
  LR_CHECK(!targets.empty(), "LoRAConfig: targets is empty (choose from q, k, v, o, mlp, c_attn, wte)");
  std::set<std::string> seen;
  for (const std::string& t : targets) {
    const bool known = t == "q" || t == "k" || t == "v" || t == "o" || t == "mlp" || t == "c_attn" || t == "wte";
    LR_CHECK(known, "LoRAConfig: unknown target '", t, "' (choose from q, k, v, o, mlp, c_attn, wte)");
    LR_CHECK(seen.insert(t).second, "LoRAConfig: target '", t, "' listed twice");
  }
  LR_CHECK(!seen.count("c_attn") || !(seen.count("q") || seen.count("k") || seen.count("v")),
           "LoRAConfig: target 'c_attn' (one LoRA over the fused q,k,v) cannot be combined with q, k or v");
  std::set<int64_t> layer_set;
  for (int64_t l : layers) {
    LR_CHECK(l >= 0, "LoRAConfig: layer ", l, " is negative");
    LR_CHECK(layer_set.insert(l).second, "LoRAConfig: layer ", l, " listed twice");
  }
  LR_CHECK(bias == "none" || bias == "all" || bias == "lora_only",
           "LoRAConfig: bias must be none, all or lora_only, got '", bias, "'");
  LR_CHECK(init_lora_weights == "gaussian" || init_lora_weights == "pissa" || init_lora_weights == "olora",
           "LoRAConfig: init_lora_weights must be gaussian, pissa or olora, got '", init_lora_weights, "'");
  LR_CHECK(!seen.count("wte") || (init_lora_weights == "gaussian" && !use_dora),
           "LoRAConfig: target 'wte' takes plain LoRA only (no pissa, olora or use_dora)");
}

float lora_scale_of(int64_t r, float alpha, bool rslora) {
  return rslora ? alpha / std::sqrt(static_cast<float>(r)) : alpha / static_cast<float>(r);
}

// ---- LoRALinear ----

LoRALinear::LoRALinear(const nn::Linear& base, int64_t r, float alpha, float dropout_, float init_std, Rng& rng,
                       const LoRAVariant& var)
    : nn::Linear(shell(base, rng)),
      scale(lora_scale_of(r, alpha, var.rslora)),
      dropout(dropout_),
      rslora(var.rslora),
      init(var.init) {
  check_hparams("LoRALinear", r, alpha, dropout_, init_std);
  adopt_base(*this, base);
  nn::Init ini{rng, weight.device()};
  lora_A = init_A(ini, r, in_features(), init_std);
  lora_B = init_B(ini, out_features(), r);
  if (init != "gaussian" && weight.device() != Device::Meta) {
    std::tie(lora_A0, lora_B0) = variants::init_pair(init, weight, r, scale);
    lora_A.copy_(lora_A0);
    lora_B.copy_(lora_B0);
  } else if (init != "gaussian") {
    lora_A0 = Tensor::zeros(lora_A.shape(), Device::Meta), lora_B0 = Tensor::zeros(lora_B.shape(), Device::Meta);
  }
  if (var.dora) magnitude = variants::row_norms(weight).clone().requires_grad_(true);
}

// h = W0 x + b + (alpha/r) · B (A dropout(x)): two thin GEMMs, ΔW never formed (Section 4.1).
Tensor LoRALinear::forward(const Tensor& x, const nn::Context& ctx) {
  if (!merged_ && (lora_A0.defined() || magnitude.defined())) return forward_variant(x, ctx);
  // LAB 5 begin: LoRALinear::forward (W0 x + b + scale·B A x)
  Tensor y = autograd::linear(x, weight, bias);
  if (merged_) return y;  // ΔW already folded into W (Section 4.2: no inference latency)
  Tensor h = autograd::linear(autograd::linear(lora_input(x, dropout, ctx), lora_A), lora_B);
  return autograd::add(y, autograd::scale(h, scale));
  // LAB 5 end
}

void LoRALinear::collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) {
  nn::Linear::collect(prefix, out);
  out.push_back({prefix + "lora_A", lora_A});
  out.push_back({prefix + "lora_B", lora_B});
  if (lora_A0.defined()) {
    out.push_back({prefix + "lora_A0", lora_A0});
    out.push_back({prefix + "lora_B0", lora_B0});
  }
  if (magnitude.defined()) out.push_back({prefix + "lora_magnitude", magnitude});
}

void LoRALinear::merge() {
  const bool was = merged_;
  // LAB 5 begin: LoRALinear::merge (fold ΔW into W once)
  if (merged_) return;  // merging twice would add ΔW twice
  fold(weight, lora_B, lora_A, scale);
  merged_ = true;
  // LAB 5 end
  if (was) return;
  if (lora_A0.defined()) fold(weight, lora_B0, lora_A0, -scale);
  if (magnitude.defined()) dora_factor = variants::dora_merge(weight, magnitude);
}

void LoRALinear::unmerge() {
  if (merged_ && magnitude.defined()) variants::scale_rows(weight, dora_factor, true);
  if (merged_ && lora_A0.defined()) fold(weight, lora_B0, lora_A0, scale);
  // LAB 5 begin: LoRALinear::unmerge (take ΔW out again)
  if (!merged_) return;
  fold(weight, lora_B, lora_A, -scale);
  merged_ = false;
  // LAB 5 end
}

// ---- LoRAFusedQKV ----

LoRAFusedQKV::LoRAFusedQKV(const nn::Linear& base, const std::vector<std::string>& slices_, int64_t r, float alpha,
                           float dropout_, float init_std, Rng& rng, bool shared, const LoRAVariant& var)
    : nn::Linear(shell(base, rng)),
      slices(canonical_slices(slices_)),
      scale(lora_scale_of(r, alpha, var.rslora)),
      dropout(dropout_),
      shared_A(shared),
      rslora(var.rslora),
      init(var.init) {
  check_hparams("LoRAFusedQKV", r, alpha, dropout_, init_std);
  const int64_t C = in_features();
  LR_CHECK(out_features() == 3 * C, "LoRAFusedQKV: c_attn maps ", C, " -> ", out_features(), ", expected ", C, " -> ",
           3 * C, " (q | k | v)");
  adopt_base(*this, base);
  nn::Init ini{rng, weight.device()};
  const size_t n_A = shared_A ? 1 : slices.size();
  for (size_t j = 0; j < n_A; ++j) lora_A.push_back(init_A(ini, r, C, init_std));
  for (size_t j = 0; j < slices.size(); ++j) lora_B.push_back(init_B(ini, C, r));
  init_variant(var.dora);
}

// Each adapted slice adds scale · B_s A_s dropout(x) into its third of the (..., 3C) output
// (autograd::add_columns, one pass); the other thirds stay the base output. One dropout mask
// serves all slices, as for a single LoRA on the fused c_attn (peft), so both layouts agree.
Tensor LoRAFusedQKV::forward(const Tensor& x, const nn::Context& ctx) {
  if (!merged_ && (!lora_A0.empty() || !magnitude.empty())) return forward_variant(x, ctx);
  // LAB 5 begin: LoRAFusedQKV::forward (per-slice LoRA on the fused c_attn)
  Tensor y = autograd::linear(x, weight, bias);
  if (merged_) return y;
  const int64_t C = in_features();
  Tensor d = lora_input(x, dropout, ctx);
  Tensor shared = shared_A ? autograd::linear(d, lora_A[0]) : Tensor();
  std::vector<Tensor> parts;
  std::vector<int64_t> offsets;
  for (size_t j = 0; j < slices.size(); ++j) {
    Tensor u = shared_A ? shared : autograd::linear(d, lora_A[j]);
    parts.push_back(autograd::linear(u, lora_B[j]));
    offsets.push_back(detail::slice_index(slices[j]) * C);
  }
  return autograd::add_columns(y, parts, offsets, scale);  // y[:, slice] += scale · u Bᵀ
  // LAB 5 end
}

void LoRAFusedQKV::collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) {
  nn::Linear::collect(prefix, out);
  if (shared_A) out.push_back({prefix + "lora_A", lora_A[0]});
  for (size_t j = 0; j < slices.size(); ++j) {
    if (!shared_A) out.push_back({prefix + "lora_A." + slices[j], lora_A[j]});
    out.push_back({prefix + "lora_B." + slices[j], lora_B[j]});
  }
  if (!lora_A0.empty() && shared_A) out.push_back({prefix + "lora_A0", lora_A0[0]});
  for (size_t j = 0; j < lora_B0.size(); ++j) {
    if (!shared_A) out.push_back({prefix + "lora_A0." + slices[j], lora_A0[j]});
    out.push_back({prefix + "lora_B0." + slices[j], lora_B0[j]});
  }
  for (size_t j = 0; j < magnitude.size(); ++j) out.push_back({prefix + "lora_magnitude." + slices[j], magnitude[j]});
}

void LoRAFusedQKV::merge() {
  if (merged_) return;
  fold_fused(weight, *this, scale);
  merge_variant();
  merged_ = true;
}

void LoRAFusedQKV::unmerge() {
  if (!merged_) return;
  unmerge_variant();
  fold_fused(weight, *this, -scale);
  merged_ = false;
}

void LoRALinear::add_delta(Tensor w, float sign) const {
  LR_CHECK(w.shape() == weight.shape(), "add_delta: ", w.shape(), " vs weight ", weight.shape());
  fold(w, lora_B, lora_A, sign * scale);
  add_delta_variant(w, sign);
}

void LoRAFusedQKV::add_delta(Tensor w, float sign) const {
  LR_CHECK(w.shape() == weight.shape(), "add_delta: ", w.shape(), " vs weight ", weight.shape());
  fold_fused(w, *this, sign * scale);
  add_delta_variant(w, sign);
}

std::pair<Tensor, Tensor> LoRALinear::to_peft() const {
  if (lora_A0.defined()) return variants::converted(lora_A, lora_B, lora_A0, lora_B0);
  return {lora_A.to(Device::CPU), lora_B.to(Device::CPU)};
}

void LoRALinear::from_peft(const Tensor& A, const Tensor& B) {
  lora_A.copy_(A);
  lora_B.copy_(B);
}

// Separate slices become one rank-(r·n) pair: A stacks the slices' A_j, B holds B_j in rows of slice j
// and columns of A_j, zeros elsewhere (exact). Shared A: A itself, B = [B_q; B_k; B_v] (zero rows for
// slices not adapted).
std::pair<Tensor, Tensor> LoRAFusedQKV::to_peft() const {
  if (!lora_A0.empty()) return to_peft_converted();
  const int64_t C = in_features(), r = rank(), n = static_cast<int64_t>(slices.size());
  const int64_t R = shared_A ? r : r * n;
  Tensor A = Tensor::zeros({R, C}), B = Tensor::zeros({3 * C, R});
  if (shared_A) A.copy_(lora_A[0].to(Device::CPU));
  for (int64_t j = 0; j < n; ++j) {
    const int64_t col = shared_A ? 0 : j * r;
    if (!shared_A) A.narrow(0, col, r).copy_(lora_A[static_cast<size_t>(j)].to(Device::CPU));
    const int64_t row = detail::slice_index(slices[static_cast<size_t>(j)]) * C;
    B.narrow(0, row, C).narrow(1, col, r).copy_(lora_B[static_cast<size_t>(j)].to(Device::CPU));
  }
  return {A, B};
}

void LoRAFusedQKV::from_peft(const Tensor& A, const Tensor& B) {
  const int64_t C = in_features(), r = rank();
  if (shared_A) lora_A[0].copy_(A);
  for (size_t j = 0; j < slices.size(); ++j) {
    const int64_t col = shared_A ? 0 : static_cast<int64_t>(j) * r;
    if (!shared_A) lora_A[j].copy_(A.narrow(0, col, r));
    lora_B[j].copy_(B.narrow(0, detail::slice_index(slices[j]) * C, C).narrow(1, col, r));
  }
}

LoRAModule* as_lora(nn::Linear* m) { return dynamic_cast<LoRAModule*>(m); }
const LoRAModule* as_lora(const nn::Linear* m) { return dynamic_cast<const LoRAModule*>(m); }

}  // namespace lowrank::lora
