// The ablation binary's tables (examples/ablation.cpp, examples/common/ablation_tables.h): runs of
// several files merged by --from-runs into the Table 5 analog, mean ± sample std per cell, the markdown
// section rewritten; files of other settings, a cell run twice and a missing cell are refused.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using nlohmann::json;

namespace {

const char* kTable5[][2] = {{"q", "8"},   {"k", "8"},   {"v", "8"},      {"o", "8"},
                            {"q,k", "4"}, {"q,v", "4"}, {"q,k,v,o", "2"}};

// An ablation --json file holding one E2E run of every Table 5 cell for `seed`; BLEU = base + cell/100.
std::string write_runs(const TempDir& tmp, const std::string& name, uint64_t seed, double base, int64_t steps = 500) {
  json runs = json::array();
  for (int i = 0; i < 7; ++i)
    runs.push_back({{"targets", kTable5[i][0]},
                    {"r", std::stoll(kTable5[i][1])},
                    {"seed", seed},
                    {"trainable_params", 18432},
                    {"bleu", base + i / 100.0},
                    {"valid_loss", 1.3 + base},
                    {"train_seconds", 10.0}});
  const json settings = {{"task", "e2e"}, {"init", "base.safetensors"}, {"steps", steps}, {"lr", 0.002}};
  std::ofstream(tmp.file(name)) << json{{"settings", settings}, {"runs", runs}}.dump();
  return tmp.file(name);
}

}  // namespace

TEST_CASE("ablation: --from-runs merges the seeds of several files into the tables and the markdown section") {
  TempDir tmp("ablation_runs");
  const std::string a = write_runs(tmp, "a.json", 1, 0.60), b = write_runs(tmp, "b.json", 2, 0.64);
  std::ofstream(tmp.file("doc.md")) << "x\n<!-- results:ablation_e2e_5 -->\nold\n<!-- /results:ablation_e2e_5 -->\ny\n";
  const Run r = run_example(
      "ablation",
      "--from-runs " + a + "," + b + " --table 5 --json " + tmp.file("out.json") + " --markdown " + tmp.file("doc.md"),
      tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const json out = json::parse(read_bytes(tmp.file("out.json")));
  REQUIRE(out["runs"].size() == 14);
  REQUIRE(out["table5"].size() == 7);
  const json& qv = out["table5"][5];  // (Wq, Wv) at r = 4: BLEU 0.65 and 0.69
  CHECK(qv["targets"] == "q,v");
  CHECK(qv["seeds"] == 2);
  CHECK(qv["bleu_mean"].get<double>() == doctest::Approx(0.67));
  CHECK(qv["bleu_std"].get<double>() == doctest::Approx(0.04 / std::sqrt(2.0)));  // sample std of two
  CHECK(out["table5"][0]["paper_wikisql"] == 70.4);
  CHECK(!out.contains("table6"));
  const std::string doc = read_bytes(tmp.file("doc.md"));
  CHECK(contains(doc, "| q,v | 4 | 18432 | 2 | 0.670 ± 0.028 | 1.920 ± 0.028 | 73.7 | 91.3 |"));
  CHECK(!contains(doc, "old"));
  CHECK(contains(doc, "\ny\n"));
}

TEST_CASE("ablation: --from-runs refuses other settings, a cell run twice and a table it has no runs for") {
  TempDir tmp("ablation_bad");
  const std::string a = write_runs(tmp, "a.json", 1, 0.60);
  check_refused("ablation", "--from-runs " + a + "," + write_runs(tmp, "steps.json", 2, 0.6, 1000), "differ from");
  check_refused("ablation", "--from-runs " + a + "," + write_runs(tmp, "again.json", 1, 0.6), "q r=8 seed 1 is in two");
  check_refused("ablation", "--from-runs " + a + " --table 6", "no runs of q r=1");
  std::ofstream(tmp.file("other.json")) << R"({"table": "e2e", "runs": []})";
  check_refused("ablation", "--from-runs " + tmp.file("other.json"), "not written by ablation --json");
  check_refused("ablation", "--task wikisql --init x", "--task must be e2e or sst2");
}
