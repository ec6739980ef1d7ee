#pragma once
// The figure of the E2E base control: zero-shot, LoRA and FT BLEU on the 630 test MRs for each base
// checkpoint, pretraining stage 1 through 5 (tools/make_base.sh) plus the control base, whose last stage
// has stage 5's objective built from general text only. The rows are finetune_e2e's at the headline recipe
// (one epoch, B = 8, LoRA r = 4, alpha 32 on Wq, Wv at lr 2e-3, FT at lr 2e-3, beam 10, CPU), and the
// zero-shot rows are its --steps 0 runs; every seed of a row counts.
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "examples/common/svg_bars.h"

namespace lowrank::examples {

// The base a key names ("base=gpt-e2e-base5"), or gpt-e2e-base when it names none.
inline std::string base_of_key(const std::string& key) {
  const size_t at = key.find(" base=");
  if (at == std::string::npos) return "gpt-e2e-base";
  const size_t end = key.find(' ', at + 6);
  return key.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

// 0 zero-shot, 1 LoRA, 2 FT at the headline recipe, or -1 for any other row. With its " base=NAME"
// taken out, the key must be the recipe's exactly: a variant, a precision or a device adds a word
// (" rslora", " bf16", " device=cuda") and is a row of its own, not another seed of these bars.
inline int bases_series(const std::string& key) {
  std::string k = key;
  const size_t at = k.find(" base=");
  if (at != std::string::npos) k.erase(at, k.find(' ', at + 1) - at);
  const std::string recipe = k.substr(0, k.rfind(" seed="));
  const std::string lora = "lora r=4 alpha=32 targets=q,v lr=";
  if (recipe.rfind(lora, 0) == 0) {
    const size_t after_lr = recipe.find(' ', lora.size());  // zero-shot rows carry any lr: nothing trained
    if (after_lr != std::string::npos && recipe.substr(after_lr) == " B=8 steps=0 mrs=0") return 0;
  }
  if (recipe == lora + "0.002 B=8 steps=5257 mrs=0") return 1;
  if (recipe == "ft lr=0.002 B=8 steps=5257 mrs=0") return 2;
  return -1;
}

inline void write_bases_figure(const std::string& path, const nlohmann::json& runs) {
  const std::vector<std::string> bases = {"gpt-e2e-base",  "gpt-e2e-base2", "gpt-e2e-base3",
                                          "gpt-e2e-base4", "gpt-e2e-base5", "gpt-e2e-control"};
  const std::vector<std::string> names = {"stage 1", "stage 2", "stage 3", "stage 4", "stage 5", "control"};
  std::vector<std::vector<std::vector<double>>> bleu(bases.size(), std::vector<std::vector<double>>(3));
  for (const auto& r : runs) {
    const std::string key = r.at("key").get<std::string>();
    const int s = bases_series(key);
    for (size_t g = 0; g < bases.size() && s >= 0; ++g)
      if (base_of_key(key) == bases[g] && r.contains("bleu")) bleu[g][static_cast<size_t>(s)].push_back(r.at("bleu"));
  }
  std::vector<std::vector<svg::Bar>> bars(bases.size(), std::vector<svg::Bar>(3));
  for (size_t g = 0; g < bases.size(); ++g)
    for (size_t s = 0; s < 3; ++s) {
      const std::vector<double>& v = bleu[g][s];
      if (v.empty()) continue;
      double m = 0, q = 0;
      for (double x : v) m += x / static_cast<double>(v.size());
      for (double x : v) q += (x - m) * (x - m);
      bars[g][s] = {m, v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0,
                    static_cast<int>(v.size())};
    }
  svg::write_bar_chart(path, "E2E test BLEU (630 MRs) by base: before fine-tuning, LoRA, FT", "BLEU", names,
                       {"zero-shot", "LoRA (q,v, r=4)", "FT"}, bars, 0.8);
}

}  // namespace lowrank::examples
