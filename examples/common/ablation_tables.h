#pragma once
// The tables of the ablation (examples/ablation.cpp): the paper's Tables 5 and 6 (their cells and
// GPT-3 numbers), and ours as markdown from the runs' JSON rows, mean ± std over seeds per cell.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "examples/common/glue_train.h"

namespace lowrank::examples {

struct Config {
  std::string targets;  // "q", "q,v", ...
  int64_t r;
  std::string label() const { return targets + " r=" + std::to_string(r); }
};

struct PaperRow {
  Config config;
  double wikisql, mnli;  // the paper's validation accuracy (%)
};

// Hu et al. (2021), Table 5 (18M trainable parameters on GPT-3 175B).
inline std::vector<PaperRow> table5() {
  return {{{"q", 8}, 70.4, 91.0},   {{"k", 8}, 70.0, 90.8},   {{"v", 8}, 73.0, 91.0},      {{"o", 8}, 73.2, 91.3},
          {{"q,k", 4}, 71.4, 91.3}, {{"q,v", 4}, 73.7, 91.3}, {{"q,k,v,o", 2}, 73.7, 91.7}};
}

// Hu et al. (2021), Table 6.
inline std::vector<PaperRow> table6() {
  const std::vector<int64_t> ranks = {1, 2, 4, 8, 64};
  const std::map<std::string, std::vector<double>> wikisql = {{"q", {68.8, 69.6, 70.5, 70.4, 70.0}},
                                                              {"q,v", {73.4, 73.3, 73.7, 73.8, 73.5}},
                                                              {"q,k,v,o", {74.1, 73.7, 74.0, 74.0, 73.9}}};
  const std::map<std::string, std::vector<double>> mnli = {{"q", {90.7, 90.9, 91.1, 90.7, 90.7}},
                                                           {"q,v", {91.3, 91.4, 91.3, 91.6, 91.4}},
                                                           {"q,k,v,o", {91.2, 91.7, 91.7, 91.5, 91.4}}};
  std::vector<PaperRow> rows;
  for (const char* t : {"q", "q,v", "q,k,v,o"})
    for (size_t i = 0; i < ranks.size(); ++i) rows.push_back({{t, ranks[i]}, wikisql.at(t)[i], mnli.at(t)[i]});
  return rows;
}

// The rows' configurations, each once (Table 5 and Table 6 share q r=8, (q,v) r=4 and all four r=2).
inline std::vector<Config> unique_configs(const std::vector<PaperRow>& rows) {
  std::vector<Config> out;
  for (const PaperRow& row : rows) {
    bool seen = false;
    for (const Config& c : out) seen = seen || c.label() == row.config.label();
    if (!seen) out.push_back(row.config);
  }
  return out;
}

// The table metrics of a task, in the runs' JSON: (field, column title, factor, digits).
struct Metric {
  std::string field, title;
  double factor;
  int digits;
};
inline std::vector<Metric> task_metrics(const std::string& task) {
  if (task == "sst2") return {{"accuracy", "SST-2 dev acc %", 100, 1}};
  return {{"bleu", "E2E valid BLEU", 1, 3}, {"valid_loss", "valid loss", 1, 3}};
}

// The runs grouped by configuration label (targets and r).
inline std::map<std::string, std::vector<nlohmann::json>> by_config(const nlohmann::json& runs) {
  std::map<std::string, std::vector<nlohmann::json>> out;
  for (const nlohmann::json& r : runs) out[Config{r.at("targets"), r.at("r")}.label()].push_back(r);
  return out;
}

// Ours (mean ± std over seeds) beside the paper's GPT-3 numbers, as a markdown table; rows into j.
inline std::string table_markdown(const std::vector<PaperRow>& rows, const nlohmann::json& runs,
                                  const std::string& task, nlohmann::json& j) {
  const auto groups = by_config(runs);
  const std::vector<Metric> metrics = task_metrics(task);
  std::string md = "| weights | r | trainable | seeds |";
  for (const Metric& m : metrics) md += " " + m.title + " |";
  md += " WikiSQL (paper) | MNLI (paper) |\n|---|---:|---:|---:|";
  for (size_t i = 0; i < metrics.size() + 2; ++i) md += "---:|";
  md += "\n";
  j = nlohmann::json::array();
  for (const PaperRow& row : rows) {
    auto it = groups.find(row.config.label());
    LR_CHECK(it != groups.end(), "no runs of ", row.config.label(),
             " (run --table both, or merge the files of every cell)");
    nlohmann::json jr = {{"targets", row.config.targets},
                         {"r", row.config.r},
                         {"trainable_params", it->second[0].at("trainable_params")},
                         {"seeds", it->second.size()},
                         {"paper_wikisql", row.wikisql},
                         {"paper_mnli", row.mnli}};
    md += "| " + row.config.targets + " | " + std::to_string(row.config.r) + " | " +
          std::to_string(jr["trainable_params"].get<int64_t>()) + " | " + std::to_string(it->second.size()) + " |";
    for (const Metric& m : metrics) {
      std::vector<double> v;
      for (const nlohmann::json& r : it->second) v.push_back(r.at(m.field).get<double>());
      const auto [mean, sd] = mean_std(v);
      jr[m.field + "_mean"] = mean;
      jr[m.field + "_std"] = sd;
      md += " " + fixed(m.factor * mean, m.digits) + " ± " + fixed(m.factor * sd, m.digits) + " |";
    }
    md += " " + fixed(row.wikisql, 1) + " | " + fixed(row.mnli, 1) + " |\n";
    j.push_back(jr);
  }
  return md;
}

inline std::vector<PaperRow> rows_of(const std::string& table) {
  std::vector<PaperRow> rows;
  if (table != "6") rows = table5();
  if (table != "5")
    for (const PaperRow& r : table6()) rows.push_back(r);
  return rows;
}

}  // namespace lowrank::examples
