#pragma once
// Decoding throughput with many adapters (examples/bench_adapters.cpp): one batch of B requests whose
// adapters follow one of Punica's popularity mixes (Chen et al., 2023, "Punica: Multi-Tenant LoRA
// Serving", Section 7.1), decoded three ways:
//   mixed   one batch, adapters unmerged, every row its own (lora::AdapterSet rows: segmented GEMMs);
//   split   one sub-batch per adapter, each merged in turn (peft's and llama.cpp's way), switches timed;
//   merged  the whole batch with one adapter merged: the ceiling, what a single-task server gets.
// Greedy decoding of prompts of one length (so every batch is one forward per step).
#include <map>
#include <string>
#include <vector>

#include "examples/common/adapter_bench.h"

namespace lowrank::examples {

// Adapter index (0..pool-1) of each of B requests. distinct: request i gets adapter i; uniform: drawn
// uniformly; skewed: Zipf with exponent 1.5 (adapter k drawn with weight 1/(k+1)^1.5); identical: all 0.
inline std::vector<int32_t> popularity_mix(const std::string& mix, int64_t B, int64_t pool, Rng& rng) {
  std::vector<double> w(static_cast<size_t>(pool), 1.0);
  if (mix == "skewed")
    for (int64_t k = 0; k < pool; ++k) w[static_cast<size_t>(k)] = 1.0 / std::pow(static_cast<double>(k + 1), 1.5);
  double total = 0.0;
  for (double x : w) total += x;
  std::vector<int32_t> out;
  for (int64_t i = 0; i < B; ++i) {
    if (mix == "distinct" || mix == "identical") {
      out.push_back(mix == "distinct" ? static_cast<int32_t>(i % pool) : 0);
      continue;
    }
    double u = rng.uniform() * total;
    int32_t k = 0;
    while (k + 1 < pool && u >= w[static_cast<size_t>(k)]) u -= w[static_cast<size_t>(k++)];
    out.push_back(k);
  }
  return out;
}

inline int64_t generated(const std::vector<nn::Hypothesis>& hs) {
  int64_t n = 0;
  for (const nn::Hypothesis& h : hs) n += static_cast<int64_t>(h.tokens.size()) + (h.finished ? 1 : 0);
  return n;
}

struct MixTiming {
  std::vector<double> mixed, split, merged;  // seconds per repeat
  int64_t tokens = 0, same = 0;              // tokens of one decode; requests whose mixed and split texts agree
};

// One repeat of the three decodes of `prompts` with adapters `who` (indices into names).
inline void time_mix(nn::GPT& model, lora::AdapterSet& set, const std::vector<std::vector<int32_t>>& prompts,
                     const std::vector<int32_t>& who, const std::vector<std::string>& names,
                     const nn::DecodeOptions& opt, MixTiming& t) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<int32_t> slots;
  for (int32_t k : who) slots.push_back(set.slot(names[static_cast<size_t>(k)]));
  Timer mixed_t;
  const std::vector<nn::Hypothesis> mixed = nn::beam_decode_batch(model, prompts, slots, opt, B);
  t.mixed.push_back(mixed_t.seconds());
  std::map<int32_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < who.size(); ++i) groups[who[i]].push_back(i);
  std::vector<nn::Hypothesis> split(prompts.size());
  Timer split_t;
  for (const auto& [k, idx] : groups) {
    set.activate(names[static_cast<size_t>(k)]);
    std::vector<std::vector<int32_t>> sub;
    for (size_t i : idx) sub.push_back(prompts[i]);
    std::vector<nn::Hypothesis> hs = nn::beam_decode_batch(model, sub, opt, B);
    for (size_t j = 0; j < idx.size(); ++j) split[idx[j]] = std::move(hs[j]);
  }
  set.activate("");
  t.split.push_back(split_t.seconds());
  set.activate(names.front());
  Timer merged_t;
  nn::beam_decode_batch(model, prompts, opt, B);
  t.merged.push_back(merged_t.seconds());
  set.activate("");
  t.tokens = generated(mixed);
  t.same = 0;
  for (size_t i = 0; i < prompts.size(); ++i) t.same += mixed[i].tokens == split[i].tokens;
}

// Rows of {mix, adapters in the batch, tokens/s of mixed, split and merged}, medians over repeats.
inline nlohmann::json throughput_rows(const std::string& shape, const std::string& dir, int64_t B, int64_t P,
                                      int64_t new_tokens, int64_t rank, int repeats) {
  const std::string base = write_base(shape, dir);
  Rng rng(1);
  std::unique_ptr<nn::GPT> model = nn::load_model(base, rng);
  lora::AdapterSet set(*model);
  std::vector<std::string> names;
  for (int64_t k = 0; k < B; ++k) {  // a pool of B adapters: enough for "distinct"
    const std::string path = dir + "/pool" + std::to_string(k) + ".safetensors";
    write_adapter(base, lora_cfg(rank, {"q", "v"}), 100 + static_cast<uint64_t>(k), path);
    names.push_back("a" + std::to_string(k));
    set.load(names.back(), path);
  }
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B));
  for (auto& p : prompts)
    for (int64_t i = 0; i < P; ++i) p.push_back(static_cast<int32_t>(rng.next_u64() % 50000));
  nn::DecodeOptions opt;
  opt.max_new_tokens = new_tokens;
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string mix : {"distinct", "uniform", "skewed", "identical"}) {
    Rng mr(7);
    const std::vector<int32_t> who = popularity_mix(mix, B, B, mr);
    MixTiming t;
    for (int r = 0; r < repeats; ++r) time_mix(*model, set, prompts, who, names, opt, t);
    std::map<int32_t, int> distinct;
    for (int32_t k : who) ++distinct[k];
    const double tok = static_cast<double>(t.tokens);
    rows.push_back({{"shape", shape},
                    {"mix", mix},
                    {"batch", B},
                    {"adapters_in_batch", distinct.size()},
                    {"tokens", t.tokens},
                    {"mixed_tok_s", tok / median(t.mixed)},
                    {"split_tok_s", tok / median(t.split)},
                    {"merged_tok_s", tok / median(t.merged)},
                    {"same_outputs", t.same}});
  }
  return rows;
}

}  // namespace lowrank::examples
