#pragma once
// Machine-readable results: one JSON file per table under docs/results/ (e2e.json, glue.json, ...),
//   {"table": "e2e", "runs": [ {"key": "...", "method": "lora", "seed": 1, ..., "bleu": 0.61}, ... ]}
// Every finished run adds its row; a row with the same "key" (method, hyper-parameters, seed) is
// replaced, so rerunning a command updates its row instead of duplicating it. Several runs may
// finish at once (two fine-tunings on two cores): the read-modify-write holds an flock on
// "<file>.lock" (left in place, git-ignored), and the file itself is replaced atomically (write_json). The markdown tables of
// REPRODUCTION.md are generated from these files by `results_table`.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text.h"
#include "examples/common/cli.h"
#include "tensor/error.h"

namespace lowrank::examples {

// One point of a learning curve: the validation loss after `examples` training examples (and the
// smoothed training loss then); results_table --svg draws valid_loss against examples.
struct CurvePoint {
  int64_t step = 0, examples = 0;
  double train_loss = NAN, valid_loss = NAN;
};

inline nlohmann::json curve_json(const std::vector<CurvePoint>& curve) {
  nlohmann::json c = nlohmann::json::array();
  for (const auto& p : curve)
    c.push_back(
        {{"step", p.step}, {"examples", p.examples}, {"train_loss", p.train_loss}, {"valid_loss", p.valid_loss}});
  return c;
}

// The results file at path, or an empty one for `table` when it does not exist yet.
inline nlohmann::json read_results(const std::string& path, const std::string& table) {
  std::ifstream in(path);
  if (!in.good()) return {{"table", table}, {"runs", nlohmann::json::array()}};
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  LR_CHECK(j.is_object() && j.contains("runs") && j["runs"].is_array(), path, ": field 'runs' missing or not an array");
  return j;
}

// The table a results file holds: its name without directory and ".json" (docs/results/e2e.json -> e2e).
inline std::string table_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) name.resize(name.size() - 5);
  return name;
}

// Adds row (which must carry a string "key") to the results file, replacing a row of the same key.
inline void record_run(const std::string& path, const nlohmann::json& row) {
  const std::string table = table_of(path);
  LR_CHECK(row.contains("key") && row["key"].is_string(), "record_run: the row for ", path, " has no string 'key'");
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  LR_CHECK(fd >= 0, lock_path, ": cannot open the lock file");
  ::flock(fd, LOCK_EX);
  try {
    nlohmann::json j = read_results(path, table);
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : j["runs"])
      if (!(r.contains("key") && r["key"] == row["key"])) runs.push_back(r);
    runs.push_back(row);
    j["runs"] = runs;
    write_json(path, j);
  } catch (...) {
    ::flock(fd, LOCK_UN);
    ::close(fd);
    throw;
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
}

// A generated-outputs file of finetune_e2e ("MR||hypothesis" per line) as MR -> hypothesis.
inline std::map<std::string, std::string> read_outputs(const std::string& path) {
  std::ifstream in(path);
  LR_CHECK(in.good(), path, ": cannot open the outputs file");
  std::map<std::string, std::string> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const size_t sep = line.find("||");
    LR_CHECK(sep != std::string::npos, path, ":", n, ": no '||' between MR and text");
    out[line.substr(0, sep)] = line.substr(sep + 2);
  }
  return out;
}

// Replaces the marked section of the markdown file (markers must exist: nothing is appended blindly).
inline void rewrite_section(const std::string& path, const std::string& name, const std::string& table) {
  const std::string text = data::read_file(path);
  const std::string open = "<!-- results:" + name + " -->", close = "<!-- /results:" + name + " -->";
  const size_t a = text.find(open), b = text.find(close);
  LR_CHECK(a != std::string::npos && b != std::string::npos && a < b, path, ": markers ", open, " ... ", close,
           " not found (add them where the table belongs)");
  const std::string out = text.substr(0, a + open.size()) + "\n" + table + text.substr(b);
  write_text(path, out);
}

}  // namespace lowrank::examples
