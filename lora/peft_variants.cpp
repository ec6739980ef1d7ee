// The LoRA variants in peft's layout (peft 0.21, lora/variants.h):
//   use_dora            <module>.lora_magnitude_vector (out): m for every output feature of the module.
//                       GPT-2's fused c_attn has one vector over q | k | v; rows of slices without an
//                       adapter hold ‖W0 row‖, so their factor m / ‖W0 + 0‖ is 1.
//   init_lora_weights   "pissa" in a file peft saved without conversion: A, B are the trained factors and
//                       the loader recomputes A0, B0 from W0 (peft does the same on load; s·B0 A0 does not
//                       depend on the SVD's signs). Our exports are always converted (to_peft), so they load
//                       into peft, or anything else, as plain LoRA against W0.
#include <cmath>

#include "lora/internal.h"
#include "lora/variants.h"
#include "tensor/error.h"

namespace lowrank::lora::detail {

Tensor peft_magnitude(const nn::Linear& m) {
  if (const auto* l = dynamic_cast<const LoRALinear*>(&m)) return l->magnitude.to(Device::CPU);
  const auto* f = dynamic_cast<const LoRAFusedQKV*>(&m);
  LR_CHECK(f != nullptr, "peft_magnitude: a module without LoRA");
  const int64_t C = f->in_features();
  Tensor out = variants::row_norms(f->weight).to(Device::CPU).clone();
  for (size_t j = 0; j < f->slices.size(); ++j)
    out.narrow(0, slice_index(f->slices[j]) * C, C).copy_(f->magnitude[j].to(Device::CPU));
  return out;
}

void set_peft_magnitude(nn::Linear& m, const Tensor& mag, const std::string& where) {
  LR_CHECK(mag.ndim() == 1 && mag.size(0) == m.out_features(), where, ": lora_magnitude_vector has shape ", mag.shape(),
           ", expected (", m.out_features(), ",)");
  if (auto* l = dynamic_cast<LoRALinear*>(&m)) {
    LR_CHECK(l->magnitude.defined(), where, ": a DoRA magnitude for a module without use_dora");
    l->magnitude.copy_(mag);
    return;
  }
  auto* f = dynamic_cast<LoRAFusedQKV*>(&m);
  LR_CHECK(f != nullptr && f->magnitude.size() == f->slices.size(), where,
           ": a DoRA magnitude for a module without use_dora");
  const int64_t C = f->in_features();
  for (size_t j = 0; j < f->slices.size(); ++j) f->magnitude[j].copy_(mag.narrow(0, slice_index(f->slices[j]) * C, C));
}

bool magnitude_fits_slices(const Tensor& mag, const nn::Linear& c_attn, const std::vector<std::string>& slices) {
  const int64_t C = c_attn.in_features();
  const std::vector<float> norms = variants::row_norms(c_attn.weight).to_vector(), m = mag.to_vector();
  for (int s = 0; s < 3; ++s) {
    bool adapted = false;
    for (const std::string& t : slices) adapted = adapted || slice_index(t) == s;
    for (int64_t i = s * C; i < (s + 1) * C && !adapted; ++i)
      if (std::fabs(m[static_cast<size_t>(i)] - norms[static_cast<size_t>(i)]) > 1e-5f * norms[static_cast<size_t>(i)])
        return false;
  }
  return true;
}

std::string peft_init(const nlohmann::ordered_json& v, const std::string& path) {
  if (v.is_null() || v.is_boolean()) return "gaussian";  // true: peft's default; false: A and B both random
  LR_CHECK(v.is_string(), path, ": field 'init_lora_weights' is ", v.dump(), ", not a boolean or a string");
  const std::string s = v.get<std::string>();
  if (s == "gaussian" || s == "pissa") return s;
  LR_CHECK(s != "olora", path, ": init_lora_weights 'olora' without conversion: peft 0.21 factors GPT-2's Conv1D ",
           "weight transposed, so its A and B do not fit the module; save it converted ",
           "(save_pretrained(..., path_initial_model_for_weight_conversion=...)), which loads as plain LoRA");
  throw Error(cat(path, ": init_lora_weights '", s, "' is not supported (true, false, gaussian or pissa; ",
                  "randomised pissa_niter_* and data-driven inits cannot be recomputed from W0 alone)"));
}

}  // namespace lowrank::lora::detail
