#pragma once
// Evaluation of an E2E fine-tuning run (finetune_e2e): beam-search decoding of the test MRs, the
// generated texts written as "MR||text" lines, and a stored run's outputs scored on the same MRs.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "data/e2e.h"
#include "data/metrics.h"
#include "data/tokenizer.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"
#include "nn/generate.h"

namespace lowrank::examples {

// The beam-search settings of the decoding options (--beam, --length-penalty, ...).
inline nn::DecodeOptions decode_options(const cxxopts::ParseResult& a) {
  nn::DecodeOptions d;
  d.beam_size = a["beam"].as<int64_t>();
  d.length_penalty = a["length-penalty"].as<float>();
  d.no_repeat_ngram_size = a["no-repeat-ngram"].as<int64_t>();
  d.max_new_tokens = a["max-new-tokens"].as<int64_t>();
  return d;
}

// Beam-search every MR of groups; returns hypotheses and their reference sets.
// MRs are decoded --decode-batch at a time, in order of prompt length so that a chunk's prompts share
// a length (nn::beam_search_batch runs equal-length prompts in one forward, one KV cache).
inline std::pair<data::Corpus, data::References> decode_test(nn::GPT& model, const data::Tokenizer& tok,
                                                             const std::vector<data::E2EGroup>& groups,
                                                             const nn::DecodeOptions& d, int64_t chunk,
                                                             double& seconds) {
  const int64_t n = static_cast<int64_t>(groups.size());
  LR_CHECK(chunk >= 1, "--decode-batch must be >= 1, got ", chunk);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t i = 0; i < n; ++i) prompts.push_back(data::e2e_prompt(tok, groups[static_cast<size_t>(i)].mr));
  std::vector<size_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return prompts[x].size() < prompts[y].size(); });
  data::Corpus hyps(static_cast<size_t>(n));
  data::References refs;
  ProgressBar bar(n);
  Timer timer;
  for (size_t c = 0; c < order.size(); c += static_cast<size_t>(chunk)) {
    const size_t e = std::min(order.size(), c + static_cast<size_t>(chunk));
    std::vector<std::vector<int32_t>> batch;
    for (size_t k = c; k < e; ++k) batch.push_back(prompts[order[k]]);
    const auto out = nn::beam_search_batch(model, batch, d, chunk * d.beam_size);
    for (size_t k = c; k < e; ++k) {
      const std::string text = tok.decode(out[k - c]);
      const size_t s = text.find_first_not_of(' ');  // completions start with a space
      hyps[order[k]] = s == std::string::npos ? "" : text.substr(s);
    }
    bar.update(static_cast<long>(e));
  }
  bar.finish();
  for (int64_t i = 0; i < n; ++i) refs.push_back(groups[static_cast<size_t>(i)].refs);
  seconds = timer.seconds();
  return {hyps, refs};
}

inline void write_outputs(const std::string& path, const std::vector<data::E2EGroup>& groups,
                          const data::Corpus& hyps) {
  if (path.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);  // the default's out/
  std::ofstream out(path);
  LR_CHECK(out.good(), path, ": cannot write the outputs file");
  for (size_t i = 0; i < hyps.size(); ++i) out << groups[i].mr << "||" << hyps[i] << "\n";
}

// The stored run's hypotheses for the MRs decoded here, scored against the same references.
inline data::MetricScores score_stored(const std::string& path, const std::vector<data::E2EGroup>& groups,
                                       const data::References& refs) {
  const std::map<std::string, std::string> stored = read_outputs(path);
  data::Corpus hyps;
  for (size_t i = 0; i < refs.size(); ++i) {
    auto it = stored.find(groups[i].mr);
    LR_CHECK(it != stored.end(), path, ": no output for the test MR '", groups[i].mr, "'");
    hyps.push_back(it->second);
  }
  return data::e2e_metrics(hyps, refs);
}

}  // namespace lowrank::examples
