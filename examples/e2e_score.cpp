// e2e_score: scores generated E2E texts against all references of their test MRs with BLEU, NIST,
// METEOR, ROUGE-L and CIDEr (data/metrics.h, equal to the E2E challenge's official scripts), without
// training anything: for outputs of finetune_e2e (--outputs, "MR||text" per line) or any system's.
//   ./build/e2e_score --outputs docs/results/e2e_outputs/gpt-e2e-base3-ft-seed1.txt               # every MR in the file
//   ./build/e2e_score --outputs docs/results/e2e_outputs/gpt-e2e-base3-ft-seed1.txt --first 40    # the demo's MRs
// --first N scores the first N test MRs (test-file order), as finetune_e2e --test-mrs N decodes them.
#include <cstdio>
#include <iostream>

#include "data/e2e.h"
#include "data/metrics.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kE2E = LOWRANK_E2E_DIR;

int score_main(int argc, char** argv) {
  cxxopts::Options o("e2e_score", "Score E2E outputs (MR||text per line) against the test references");
  o.add_options()
    ("outputs", "the outputs file (required)", cxxopts::value<std::string>())
    ("first", "score the first N test MRs (0: every test MR the file has)", cxxopts::value<int64_t>()->default_value("0"))
    ("json", "write the scores to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  auto a = ex::parse_args(o, argc, argv);
  LR_CHECK(a.count("outputs"), "--outputs is required (a file of 'MR||text' lines)");
  const std::string path = a["outputs"].as<std::string>();
  const auto outputs = ex::read_outputs(path);
  const int64_t first = a["first"].as<int64_t>();
  LR_CHECK(first >= 0, "--first must be >= 0, got ", first);
  const auto groups = data::group_by_mr(data::load_e2e(kE2E + "/test.txt"));
  data::Corpus hyps;
  data::References refs;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (first > 0 && static_cast<int64_t>(i) >= first) break;
    auto it = outputs.find(groups[i].mr);
    if (it == outputs.end()) {
      LR_CHECK(first == 0, path, ": no output for test MR ", i + 1, " '", groups[i].mr, "'");
      continue;
    }
    hyps.push_back(it->second);
    refs.push_back(groups[i].refs);
  }
  LR_CHECK(!hyps.empty(), path, ": no line matches a test MR");
  const data::MetricScores m = data::e2e_metrics(hyps, refs);
  char buf[64];
  auto f = [&](double v) { std::snprintf(buf, sizeof buf, "%.4f", v); return std::string(buf); };
  ex::print_table({"outputs", "MRs", "BLEU", "NIST", "METEOR", "ROUGE-L", "CIDEr"},
                  {{path, std::to_string(hyps.size()), f(m.bleu), f(m.nist), f(m.meteor), f(m.rouge_l), f(m.cider)}});
  if (!a["json"].as<std::string>().empty())
    ex::write_json(a["json"].as<std::string>(), {{"outputs", path}, {"test_mrs", hyps.size()}, {"bleu", m.bleu},
                                                 {"nist", m.nist}, {"meteor", m.meteor}, {"rouge_l", m.rouge_l},
                                                 {"cider", m.cider}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, score_main); }
