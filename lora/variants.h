#pragma once
// The LoRA variants' mechanics, shared by LoRALinear and LoRAFusedQKV (lora/lora.cpp).
//
// PiSSA (Meng et al., 2024) and OLoRA (Büyükakyüz, 2024) start the adapter from W0 itself and freeze
// the residual, so the first step already moves W0's principal directions:
//   pissa:  W0 = U S Vᵀ (SVD);  A0 = √(S_r/s) V_rᵀ (r, in),  B0 = U_r √(S_r/s) (out, r):  s·B0 A0 = U_r S_r V_rᵀ
//   olora:  W0 = Q R (QR);      A0 = R_r (r, in),  B0 = Q_r (out, r)          (peft divides by nothing here)
//   h = W_res x + s·B A x,   W_res = W0 - s·B0 A0 frozen,   A = A0, B = B0 trainable.
// W_res is never formed: the forward computes W0 x - s·B0 (A0 x), two frozen thin GEMMs. W0 stays the
// checkpoint's bits (its hash holds), merge() folds s·(B A - B0 A0) into W0 like any LoRA, and the
// adapter is exactly the plain LoRA [B, -B0] [A; A0] of rank 2r against W0 (peft's conversion).
//
// DoRA (Liu et al., 2024, Eq. 5): W' = m · (W0 + ΔW) / ‖W0 + ΔW‖_c with a trainable magnitude m, one per
// output feature, initialised to ‖W0‖_c so that W' = W0 at the start. In the (out, in) layout ‖·‖_c is
// the norm of each row (autograd::weight_norm). The output is never formed from W' itself:
//   h = g ⊙ (W0 x + s·B A x) + b,   g = m · 1/‖W0 + ΔW‖   (per output feature)
// and g is recorded on the tape, so A and B also get the gradient through the norm: Eq. 5 exactly.
// (Section 4.3 suggests treating the norm as a constant to save memory, and peft does; that changes the
// gradient, not the forward, so adapters exchange with peft exactly either way. The exact gradient costs
// one (out, in) matrix per adapted weight for backward: ΔW, W0 + ΔW and their gradients.)
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace lowrank::lora::variants {

using tensor::Tensor;

// A0 (r, in), B0 (out, r) for init "pissa" or "olora" from w (out, in), on w's device, frozen.
std::pair<Tensor, Tensor> init_pair(const std::string& init, const Tensor& w, int64_t r, float scale);

// ΔW (out, in) = s·(B A - B0 A0) (B0, A0 may be undefined), on the tape.
Tensor delta(const Tensor& B, const Tensor& A, const Tensor& B0, const Tensor& A0, float s);
// DoRA's factor g = m / ‖w0 + dw‖ per row (out), on the tape.
Tensor dora_factor(const Tensor& m, const Tensor& w0, const Tensor& dw);
// ‖w‖ per row, on the host: DoRA's magnitude at initialisation (m = ‖W0‖_c).
Tensor row_norms(const Tensor& w);

// pissa / olora as a plain LoRA against W0 (peft's conversion): A' = [A; A0] (2r, in), B' = [B, -B0]
// (out, 2r), so s·B' A' = s·(B A - B0 A0); on the host.
std::pair<Tensor, Tensor> converted(const Tensor& A, const Tensor& B, const Tensor& A0, const Tensor& B0);

// DoRA's merge of w = W0 + ΔW (already folded): w ← g ⊙ w per row with g = m / ‖w‖; returns g for unmerge.
std::vector<float> dora_merge(Tensor w, const Tensor& m);
// w (rows, in) ⊙= g per row (g on the host, one per row), or /= g: DoRA's merge and unmerge.
void scale_rows(Tensor w, const std::vector<float>& g, bool divide);

}  // namespace lowrank::lora::variants
