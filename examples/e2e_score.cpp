// e2e_score: scores E2E texts with BLEU, NIST, METEOR, ROUGE-L and CIDEr (data/metrics.h, equal to the
// E2E challenge's official scripts), without training anything. Two ways in:
//   ./build/e2e_score REFS HYPS            # the counterpart of e2e-metrics' `measure_scores.py REFS HYPS`:
//                                          # the formats of data/e2e_files.h (plain text with the references
//                                          # of one MR on consecutive lines and MRs separated by a blank
//                                          # line, or a .csv / .tsv with mr,ref columns; outputs one per line
//                                          # or mr,output), the i-th output scored against the i-th MR's refs
//   ./build/e2e_score --outputs docs/results/e2e_outputs/gpt-e2e-base5-ft-seed1.txt [--first 40]
//                                          # finetune_e2e's "MR||text" lines against the test split's references
// --first N scores the first N test MRs (test-file order), as finetune_e2e --test-mrs N decodes them.
// METEOR is Meteor 1.5's exact + stem modules (no WordNet synonyms / paraphrases): a lower bound of the
// official figure, within 0.02 on the metric fixtures (data/metrics.h).
#include <cstdio>
#include <iostream>

#include "data/e2e.h"
#include "data/e2e_files.h"
#include "data/metrics.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kE2E = LOWRANK_E2E_DIR;

struct Scored {
  std::string what;
  data::Corpus hyps;
  data::References refs;
};

// finetune_e2e's outputs file against the test split.
Scored from_outputs(const std::string& path, int64_t first) {
  const auto outputs = ex::read_outputs(path);
  LR_CHECK(first >= 0, "--first must be >= 0, got ", first);
  const auto groups = data::group_by_mr(data::load_e2e(kE2E + "/test.txt"));
  Scored s{path, {}, {}};
  for (size_t i = 0; i < groups.size(); ++i) {
    if (first > 0 && static_cast<int64_t>(i) >= first) break;
    auto it = outputs.find(groups[i].mr);
    if (it == outputs.end()) {
      LR_CHECK(first == 0, path, ": no output for test MR ", i + 1, " '", groups[i].mr, "'");
      continue;
    }
    s.hyps.push_back(it->second);
    s.refs.push_back(groups[i].refs);
  }
  LR_CHECK(!s.hyps.empty(), path, ": no line matches a test MR");
  return s;
}

// measure_scores.py's REFS HYPS: the i-th output against the i-th reference group.
Scored from_files(const std::string& refs_path, const std::string& hyps_path) {
  Scored s{hyps_path, data::read_output_file(hyps_path), data::read_reference_file(refs_path)};
  LR_CHECK(s.hyps.size() == s.refs.size(), hyps_path, " has ", s.hyps.size(), " outputs but ", refs_path, " has ",
           s.refs.size(), " reference groups (MRs)",
           s.hyps.size() > s.refs.size() ? cat("; output ", s.refs.size() + 1, " has no MR")
                                         : cat("; MR ", s.hyps.size() + 1, " has no output"));
  return s;
}

int score_main(int argc, char** argv) {
  cxxopts::Options o("e2e_score", "Score E2E outputs: e2e_score REFS HYPS, or e2e_score --outputs FILE");
  // clang-format off
  o.add_options()
    ("refs", "references (plain: one MR's references on consecutive lines, blank line between MRs; or .csv/.tsv mr,ref)",
     cxxopts::value<std::string>())
    ("hyps", "outputs, one per MR (plain: one per line; or .csv/.tsv mr,output)", cxxopts::value<std::string>())
    ("outputs", "finetune_e2e's outputs file ('MR||text' per line) scored against the test split", cxxopts::value<std::string>())
    ("first", "with --outputs: score the first N test MRs (0: every test MR the file has)", cxxopts::value<int64_t>()->default_value("0"))
    ("json", "write the scores to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  o.parse_positional({"refs", "hyps"});
  o.positional_help("REFS HYPS");
  auto a = ex::parse_args(o, argc, argv);
  const bool files = a.count("refs") || a.count("hyps");
  LR_CHECK(files != static_cast<bool>(a.count("outputs")),
           files ? "give either REFS HYPS or --outputs, not both" : "give REFS HYPS, or --outputs FILE");
  LR_CHECK(!files || (a.count("refs") && a.count("hyps")), "give both REFS and HYPS");
  LR_CHECK(files || a["first"].as<int64_t>() >= 0, "--first must be >= 0, got ", a["first"].as<int64_t>());
  const std::string json_path = a["json"].as<std::string>();
  const Scored s = files ? from_files(a["refs"].as<std::string>(), a["hyps"].as<std::string>())
                         : from_outputs(a["outputs"].as<std::string>(), a["first"].as<int64_t>());
  const data::MetricScores m = data::e2e_metrics(s.hyps, s.refs);
  // measure_scores.py's own print-out, then one table row.
  std::printf("SCORES:\n==============\nBLEU: %.4f\nNIST: %.4f\nMETEOR: %.4f\nROUGE_L: %.4f\nCIDEr: %.4f\n\n", m.bleu,
              m.nist, m.meteor, m.rouge_l, m.cider);
  char buf[64];
  auto f = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return std::string(buf);
  };
  ex::print_table(
      {"outputs", "MRs", "BLEU", "NIST", "METEOR", "ROUGE-L", "CIDEr"},
      {{s.what, std::to_string(s.hyps.size()), f(m.bleu), f(m.nist), f(m.meteor), f(m.rouge_l), f(m.cider)}});
  if (!json_path.empty())
    ex::write_json(json_path, {{"outputs", s.what},
                               {"refs", files ? a["refs"].as<std::string>() : kE2E + "/test.txt"},
                               {"test_mrs", s.hyps.size()},
                               {"bleu", m.bleu},
                               {"nist", m.nist},
                               {"meteor", m.meteor},
                               {"rouge_l", m.rouge_l},
                               {"cider", m.cider}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, score_main); }
