// results_table: the markdown tables of REPRODUCTION.md, generated from the results files that the
// runs write (docs/results/*.json, examples/common/results.h), and the learning curves as SVG.
//   ./build/results_table --results docs/results/e2e.json --markdown REPRODUCTION.md --svg docs/results/e2e_curves.svg
//   ./build/results_table --results docs/results/e2e.json --merge out/gpu/e2e_gpu.json   # rows run elsewhere (a GPU)
/*   ./build/results_table --results docs/results/e2e.json --match base=gpt-e2e-base5 --section e2e_headline \
         --markdown REPRODUCTION.md --svg docs/results/e2e_headline_curves.svg   # one base's rows, their own section */
// Runs that differ only in their seed form one row: mean ± std (sample std; "—" with one seed).
// The table replaces the text between "<!-- results:NAME -->" and "<!-- /results:NAME -->" in the
// markdown file (NAME = the file's "table" field, or --section); without --markdown it is printed.
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "data/text.h"
#include "examples/common/bases_figure.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"
#include "examples/common/svg_lines.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

cxxopts::Options make_options() {
  cxxopts::Options o("results_table", "Markdown tables and SVG learning curves from docs/results/*.json");
  // clang-format off
  o.add_options()
    ("results", "a results file (required)", cxxopts::value<std::string>())
    ("markdown", "rewrite this file's <!-- results:NAME --> section (else: print)", cxxopts::value<std::string>()->default_value(""))
    ("merge", "first add every row of this results file to --results (same key: replaced)", cxxopts::value<std::string>()->default_value(""))
    ("svg", "write the learning curves (valid loss vs examples, first seed of each row) here", cxxopts::value<std::string>()->default_value(""))
    ("bases-svg", "E2E: zero-shot, LoRA and FT BLEU per base checkpoint (stages 1-5, the control) as bars here", cxxopts::value<std::string>()->default_value(""))
    ("match", "only the runs whose key contains this text ('*' between parts: each part, in this order)", cxxopts::value<std::string>()->default_value(""))
    ("section", "write <!-- results:SECTION --> instead of the file's table name", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

struct Group {
  std::string config;                // the key without its seed
  std::vector<nlohmann::json> runs;  // one per seed
};

std::string config_of(const std::string& key) {
  const size_t s = key.rfind(" seed=");
  return s == std::string::npos ? key : key.substr(0, s);
}

// Whether key contains the parts of match between its '*'s, in that order ("lora*base=gpt-e2e-base5 ":
// every LoRA variant's row on that base). A match without '*' is a plain substring.
bool key_matches(const std::string& key, const std::string& match) {
  size_t at = 0, from = 0;
  while (true) {
    const size_t star = match.find('*', from);
    const std::string part = match.substr(from, star == std::string::npos ? std::string::npos : star - from);
    if ((at = key.find(part, at)) == std::string::npos) return false;
    at += part.size();
    if (star == std::string::npos) return true;
    from = star + 1;
  }
}

// Groups in first-appearance order, of the runs whose key matches `match` (all when empty).
std::vector<Group> group_runs(const nlohmann::json& runs, const std::string& match) {
  std::vector<Group> groups;
  std::map<std::string, size_t> at;
  for (const auto& r : runs) {
    const std::string key = r.at("key").get<std::string>();
    if (!key_matches(key, match)) continue;
    const std::string c = config_of(key);
    if (!at.count(c)) {
      at[c] = groups.size();
      groups.push_back({c, {}});
    }
    groups[at[c]].runs.push_back(r);
  }
  return groups;
}

std::string mean_std(const std::vector<nlohmann::json>& runs, const std::string& field, double mult, int digits) {
  std::vector<double> v;
  for (const auto& r : runs)
    if (r.contains(field) && r[field].is_number()) v.push_back(r[field].get<double>() * mult);
  if (v.empty()) return "";
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  char buf[64];
  if (v.size() == 1)
    std::snprintf(buf, sizeof buf, "%.*f", digits, m);
  else
    std::snprintf(buf, sizeof buf, "%.*f ± %.*f", digits, m, digits, std::sqrt(s / static_cast<double>(v.size() - 1)));
  return buf;
}

// The NLU table (docs/results/glue.json, finetune_glue --results): dev accuracy, and F1 where the task reports
// it (MRPC), in percent.
std::string glue_table(const std::vector<Group>& groups) {
  std::ostringstream o;
  o << "| run (task, method, hyper-parameters, budget) | seeds | trainable (+ head) | epochs | dev acc (%) | dev F1 "
       "(%) "
       "| train s |\n|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& g : groups) {
    const nlohmann::json& r0 = g.runs.front();
    o << "| " << g.config << " | " << g.runs.size() << " | " << r0.value("trainable_params", 0) << " (+ "
      << r0.value("head_params", 0) << ") | " << mean_std(g.runs, "epochs", 1, 2) << " | "
      << mean_std(g.runs, "accuracy", 100, 1) << " | "
      << (r0.value("report_f1", false) ? mean_std(g.runs, "f1", 100, 1) : std::string("")) << " | "
      << mean_std(g.runs, "train_seconds", 1, 0) << " |\n";
  }
  return o.str();
}

// The learning-rate sweep picks by validation loss alone: its runs decode one test MR with beam 1, so
// their scores say nothing and are left out.
std::string sweep_table(const std::vector<Group>& groups) {
  std::ostringstream o;
  o << "| run (method, hyper-parameters, budget) | seeds | trainable | epochs | valid loss | train s |\n"
       "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& g : groups) {
    const nlohmann::json& r0 = g.runs.front();
    o << "| " << g.config << " | " << g.runs.size() << " | " << r0.value("trainable_params", 0) << " | "
      << mean_std(g.runs, "epochs", 1, 2) << " | " << mean_std(g.runs, "valid_loss", 1, 3) << " | "
      << mean_std(g.runs, "train_seconds", 1, 0) << " |\n";
  }
  return o.str();
}

std::string markdown_table(const std::string& name, const std::vector<Group>& groups) {
  if (name == "glue") return glue_table(groups);
  if (name == "e2e_lr_sweep") return sweep_table(groups);
  std::ostringstream o;
  o << "| run (method, hyper-parameters, budget) | seeds | trainable | optimizer state (bytes) | epochs | valid loss "
       "| BLEU | NIST | METEOR | ROUGE-L | CIDEr | test MRs | train s |\n"
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& g : groups) {
    const nlohmann::json& r0 = g.runs.front();
    o << "| " << g.config << " | " << g.runs.size() << " | " << r0.value("trainable_params", 0) << " | "
      << r0.value("optimizer_state_bytes", 0) << " | " << mean_std(g.runs, "epochs", 1, 2) << " | "
      << mean_std(g.runs, "valid_loss", 1, 3) << " | " << mean_std(g.runs, "bleu", 1, 4) << " | "
      << mean_std(g.runs, "nist", 1, 3) << " | " << mean_std(g.runs, "meteor", 1, 4) << " | "
      << mean_std(g.runs, "rouge_l", 1, 4) << " | " << mean_std(g.runs, "cider", 1, 3) << " | "
      << r0.value("test_mrs", 0) << " | " << mean_std(g.runs, "train_seconds", 1, 0) << " |\n";
  }
  return o.str();
}

void write_curves(const std::string& path, const std::string& table, const std::vector<Group>& groups) {
  std::vector<ex::svg::Series> series;
  for (const auto& g : groups) {
    const nlohmann::json& r = g.runs.front();
    if (!r.contains("curve") || r["curve"].size() < 2) continue;
    ex::svg::Series s{g.config.substr(0, g.config.find(" lr=")) + " lr=" + ex::svg::num(r.value("lr", 0.0)) +
                          " steps=" + std::to_string(r.value("steps", 0)),
                      {},
                      {}};
    for (const auto& p : r["curve"]) {
      s.x.push_back(p.at("examples").get<double>());
      s.y.push_back(p.at("valid_loss").get<double>());
    }
    series.push_back(s);
  }
  LR_CHECK(!series.empty(), path, ": no run of ", table, " has a learning curve of two or more points to draw (--svg)");
  const bool glue = table == "glue";  // a dev loss per example (classification), not per token
  ex::svg::write_line_chart(path, table + (glue ? ": dev loss" : ": validation loss") + " (first seed of each run)",
                            "training examples seen", glue ? "dev loss (nats/example)" : "valid loss (nats/token)",
                            series);
}

// Adds the rows of `from` (e.g. runs made on a GPU machine and brought back) to the results file at
// `path`, each through record_run: a row with the same key is replaced, the others are kept.
void merge_runs(const std::string& path, const std::string& from) {
  std::ifstream probe(from);
  LR_CHECK(probe.good(), from, ": cannot open the results file to merge");
  const nlohmann::json src = ex::read_results(from, "");
  LR_CHECK(ex::table_of(path) == src.value("table", ""), "--merge: ", from, " holds table '", src.value("table", ""),
           "', not '", ex::table_of(path), "'");
  for (const nlohmann::json& row : src["runs"]) ex::record_run(path, row);
  std::cerr << "merged " << src["runs"].size() << " rows of " << from << " into " << path << "\n";
}

int table_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  LR_CHECK(a.count("results"), "--results is required (e.g. docs/results/e2e.json)");
  const std::string path = a["results"].as<std::string>();
  if (!a["merge"].as<std::string>().empty()) merge_runs(path, a["merge"].as<std::string>());
  std::ifstream probe(path);
  LR_CHECK(probe.good(), path, ": cannot open the results file");
  const nlohmann::json j = ex::read_results(path, "");
  const std::string name = j.value("table", "");
  LR_CHECK(!name.empty(), path, ": field 'table' missing");
  const std::string match = a["match"].as<std::string>(), section = a["section"].as<std::string>();
  const std::vector<Group> groups = group_runs(j["runs"], match);
  LR_CHECK(!groups.empty() || match.empty(), path, ": no run's key matches '", match, "' (--match)");
  const std::string table = markdown_table(name, groups);
  if (a["markdown"].as<std::string>().empty())
    std::cout << table;
  else
    ex::rewrite_section(a["markdown"].as<std::string>(), section.empty() ? name : section, table);
  if (!a["svg"].as<std::string>().empty()) write_curves(a["svg"].as<std::string>(), name, groups);
  if (!a["bases-svg"].as<std::string>().empty()) ex::write_bases_figure(a["bases-svg"].as<std::string>(), j["runs"]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, table_main); }
