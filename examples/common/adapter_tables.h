#pragma once
// bench_adapters' results (docs/results/adapters.json) as REPRODUCTION.md's markdown tables.
#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "examples/common/format.h"

namespace lowrank::examples {

inline std::string mb(double v) { return fixed(v, v < 10 ? 2 : v < 100 ? 1 : 0); }

inline std::string switch_table(const nlohmann::json& rows) {
  std::string t =
      "| shape | parameters | checkpoint | load it (s) | adapter (r=4, q,v) | load it (s) | one switch (s) | "
      "load / switch |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const nlohmann::json& r : rows) {
    const double load = r["checkpoint_load_s"], sw = r["switch_s"];
    t += "| " + r["shape"].get<std::string>() + " | " + fixed(r["params"].get<double>() / 1e6, 1) + "M | " +
         mb(r["checkpoint_bytes"].get<double>() / 1e6) + " MB | " + fixed(load, 3) + " | " +
         fixed(r["adapter_bytes"].get<double>() / 1e3, 0) + " KB | " + fixed(r["adapter_load_s"].get<double>(), 4) +
         " | " + fixed(sw, 4) + " | " + fixed(load / sw, 0) + "x |\n";
  }
  return t;
}

// MB measured in a fresh process each; whole models past --max-model-mb are estimated ("(est.)") from the
// largest count measured plus the measured cost of one more model.
inline std::string memory_table(const nlohmann::json& rows, const nlohmann::json& gpt3) {
  std::string t =
      "| shape | base + 1 adapter | + 10 adapters | + 100 adapters | 1 model | 10 models | 100 models |\n"
      "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const nlohmann::json& r : rows) {
    t += "| " + r["shape"].get<std::string>() + " (MB RSS)";
    for (const char* n : {"1", "10", "100"}) t += " | " + mb(r["adapters_mb"][n].get<double>());
    for (const char* n : {"1", "10", "100"})
      t += " | " + mb(r["models_mb"][n].get<double>()) + (r["models_measured"][n].get<bool>() ? "" : " (est.)");
    t += " |\n";
  }
  if (!gpt3.is_null()) {
    t += "| GPT-3 175B fp16 (GB, formula)";
    for (const char* n : {"1", "10", "100"}) t += " | " + fixed(gpt3["adapters_gb"][n].get<double>(), 1);
    for (const char* n : {"1", "10", "100"}) t += " | " + fixed(gpt3["models_gb"][n].get<double>(), 0);
    t += " |\n";
  }
  return t;
}

inline std::string throughput_table(const nlohmann::json& rows) {
  std::string t =
      "| mix | adapters in the batch | mixed (tok/s) | split (tok/s) | merged, one adapter (tok/s) | mixed / split | "
      "mixed / merged | same outputs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const nlohmann::json& r : rows) {
    const double m = r["mixed_tok_s"], s = r["split_tok_s"], g = r["merged_tok_s"];
    t += "| " + r["mix"].get<std::string>() + " | " + std::to_string(r["adapters_in_batch"].get<int64_t>()) + " | " +
         fixed(m, 1) + " | " + fixed(s, 1) + " | " + fixed(g, 1) + " | " + fixed(m / s, 2) + " | " + fixed(m / g, 2) +
         " | " + std::to_string(r["same_outputs"].get<int64_t>()) + " of " + std::to_string(r["batch"].get<int64_t>()) +
         " |\n";
  }
  return t;
}

// tools/bench_serve.sh's run (bench_serve --json), when given.
inline std::string serve_load_table(const nlohmann::json& r) {
  return "| clients × requests | adapters | failed | p50 latency | p99 latency | requests/s | tokens/s |\n"
         "|---|---:|---:|---:|---:|---:|---:|\n| " +
         std::to_string(r["clients"].get<int64_t>()) + " × " +
         std::to_string(r["requests"].get<int64_t>() / std::max<int64_t>(1, r["clients"].get<int64_t>())) + " | " +
         std::to_string(r["models"].size()) + " | " + std::to_string(r["failed"].get<int64_t>()) + " | " +
         fixed(r["p50_ms"].get<double>(), 0) + " ms | " + fixed(r["p99_ms"].get<double>(), 0) + " ms | " +
         fixed(r["requests_per_s"].get<double>(), 1) + " | " + fixed(r["tokens_per_s"].get<double>(), 0) + " |\n";
}

inline std::string adapter_tables(const nlohmann::json& j) {
  std::string md;
  if (j.contains("switch"))
    md += "\nTask switch (" + std::to_string(j["threads"].get<int>()) + " threads):\n\n" + switch_table(j["switch"]);
  if (j.contains("memory"))
    md +=
        "\nMemory of N tasks on one machine:\n\n" + memory_table(j["memory"], j.value("memory_gpt3", nlohmann::json()));
  if (j.contains("throughput")) {
    const nlohmann::json& r0 = j["throughput"][0];
    md += "\nOne batch of " + std::to_string(r0["batch"].get<int64_t>()) + " requests, " +
          r0["shape"].get<std::string>() + ", greedy, " + std::to_string(j["threads"].get<int>()) + " threads:\n\n" +
          throughput_table(j["throughput"]);
  }
  if (j.contains("serve_load"))
    md +=
        "\n`serve` under load (`tools/bench_serve.sh`: gpt-e2e-base5, 16 new tokens per request, batches of up to "
        "16):\n\n" +
        serve_load_table(j["serve_load"]);
  return md + "\n";
}

}  // namespace lowrank::examples
