// e2e_score REFS HYPS (examples/e2e_score.cpp, data/e2e_files.h): the E2E challenge scorer's file
// formats give the metric fixture's official scores; malformed files are refused naming the file and line.
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "data/e2e_files.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const nlohmann::json& main_corpus() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/metrics/e2e_metrics.json");
    return nlohmann::json::parse(in)["corpora"]["main"];
  }();
  return j;
}

// A CSV field, quoted as Python's csv module quotes it when needed.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The fixture's references in the three formats measure_scores.py reads, and its outputs in two.
void write_fixture(const TempDir& t) {
  const auto& c = main_corpus();
  std::string plain, csv = "\xEF\xBB\xBFmr,ref\r\n", tsv = "mr\tref\n", hyps, hyps_csv = "MR,output\n";
  for (size_t i = 0; i < c["refs"].size(); ++i) {
    const std::string mr = "name[Place " + std::to_string(i) + "], eatType[pub, \"bar\"]";  // commas, quotes
    for (const auto& r : c["refs"][i]) {
      plain += r.get<std::string>() + "\n";
      csv += csv_field(mr) + "," + csv_field(r.get<std::string>()) + "\r\n";
      tsv += "mr " + std::to_string(i) + "\t" + r.get<std::string>() + "\n";
    }
    plain += "\n";
    csv += i % 7 == 3 ? "\n" : "";  // blank lines between rows are skipped
    hyps += c["hyps"][i].get<std::string>() + "\n";
    hyps_csv += csv_field(mr) + "," + csv_field(c["hyps"][i].get<std::string>()) + "\n";
  }
  write_bytes(t.file("refs.txt"), plain);
  write_bytes(t.file("refs.csv"), csv);
  write_bytes(t.file("refs.tsv"), tsv);
  write_bytes(t.file("hyps.txt"), hyps);
  write_bytes(t.file("hyps.csv"), hyps_csv);
}

void check_scores(const TempDir& t, const std::string& refs, const std::string& hyps) {
  CAPTURE(refs + " " + hyps);
  const std::string json_path = t.file("scores.json");
  std::remove(json_path.c_str());
  const Run r = run_example("e2e_score", t.file(refs) + " " + t.file(hyps) + " --json " + json_path, t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const auto& s = main_corpus()["scores"];
  CHECK(contains(r.out, "SCORES:\n==============\nBLEU: 0.8259\nNIST: 10.5864\n"));
  const nlohmann::json j = nlohmann::json::parse(read_bytes(json_path));
  CHECK(j["test_mrs"] == 50);
  CHECK(j["bleu"].get<double>() == doctest::Approx(s["bleu_pymteval"].get<double>()).epsilon(1e-9));
  CHECK(j["nist"].get<double>() == doctest::Approx(s["nist_pymteval"].get<double>()).epsilon(1e-9));
  CHECK(j["rouge_l"].get<double>() == doctest::Approx(s["rouge_l"].get<double>()).epsilon(1e-9));
  CHECK(j["cider"].get<double>() == doctest::Approx(s["cider"].get<double>()).epsilon(1e-9));
  CHECK(j["meteor"].get<double>() == doctest::Approx(s["meteor_1.5_exact_stem"].get<double>()).epsilon(1e-9));
}

}  // namespace

TEST_CASE("e2e_score: REFS HYPS in plain, CSV and TSV give the official scorers' figures") {
  TempDir t("e2e_score");
  write_fixture(t);
  check_scores(t, "refs.txt", "hyps.txt");
  check_scores(t, "refs.csv", "hyps.txt");
  check_scores(t, "refs.tsv", "hyps.csv");
  CHECK(data::read_reference_file(t.file("refs.csv")) == data::read_reference_file(t.file("refs.txt")));
}

TEST_CASE("e2e_score: a count mismatch, an empty group or a bad header names the file and line") {
  TempDir t("e2e_score_bad");
  write_bytes(t.file("refs.txt"), "a b c .\nd e f .\n\ng h .\n");
  write_bytes(t.file("hyps3.txt"), "a b c .\ng h .\nx y .\n");
  write_bytes(t.file("hyps1.txt"), "a b c .\n");
  write_bytes(t.file("double.txt"), "a b c .\n\n\ng h .\n");
  write_bytes(t.file("lead.txt"), "\na b c .\n");
  write_bytes(t.file("nohead.csv"), "name[A],A is a pub .\n");
  write_bytes(t.file("short.csv"), "mr,ref\nname[A],A is a pub .\nname[B]\n");
  write_bytes(t.file("open.csv"), "mr,ref\nname[A],\"A is a pub .\n");
  write_bytes(t.file("empty.csv"), "mr,ref\nname[A],A is a pub .\nname[B],  \n");
  const std::string d = t.dir.string() + "/";
  check_refused("e2e_score", d + "refs.txt " + d + "hyps3.txt",
                "hyps3.txt has 3 outputs but " + d + "refs.txt has 2 reference groups (MRs); output 3 has no MR");
  check_refused("e2e_score", d + "refs.txt " + d + "hyps1.txt", "MR 2 has no output");
  check_refused("e2e_score", d + "double.txt " + d + "hyps1.txt", "double.txt:3: empty reference group");
  check_refused("e2e_score", d + "lead.txt " + d + "hyps1.txt", "lead.txt:1: empty reference group");
  check_refused("e2e_score", d + "nohead.csv " + d + "hyps1.txt", "nohead.csv:1: expected the header 'mr,ref'");
  check_refused("e2e_score", d + "short.csv " + d + "hyps1.txt", "short.csv:3: expected 2 columns");
  check_refused("e2e_score", d + "open.csv " + d + "hyps1.txt", "open.csv:2: a quoted field is not closed");
  check_refused("e2e_score", d + "empty.csv " + d + "hyps1.txt", "empty.csv:3: empty reference");
  check_refused("e2e_score", d + "missing.txt " + d + "hyps1.txt", "missing.txt: cannot open");
  check_refused("e2e_score", d + "refs.txt", "give both REFS and HYPS");
  check_refused("e2e_score", "", "give REFS HYPS, or --outputs FILE");
}
