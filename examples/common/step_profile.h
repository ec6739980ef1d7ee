#pragma once
// bench_step --profile: where the timed steps' time went, from the tape's per-op backward timer
// (autograd/tape.h) and the GEMM table (tensor/gemm_profile.h). Two tables per method, seconds per
// step, and the same as JSON. The GEMM rates are against the FMA peak of the run, so a row says how
// close that product came to what the cores can do inside the real step (caches shared with the
// other ops, both cores busy), not in a GEMM-only loop as bench_ops measures.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "examples/common/cli.h"
#include "tensor/gemm_profile.h"

namespace lowrank::examples {

struct StepProfile {
  std::map<std::string, double> backward;  // seconds over all profiled steps, per op name
  std::vector<tensor::GemmStat> gemms;     // most seconds first
  int steps = 0;
};

// "NT 1024x2304x768 +=" (op(A)·op(B), M x N x K, += where beta != 0); "NN in parallel regions" pooled.
inline std::string gemm_label(const tensor::GemmStat& g) {
  std::string s = std::string(g.transA ? "T" : "N") + (g.transB ? "T" : "N") + " ";
  s += g.pooled() ? "in parallel regions" : std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K);
  return s + (g.accumulate ? " +=" : "");
}

// Prints the two tables (rows under 0.5% of the step's GEMM seconds folded into "other") and
// returns them as JSON. fma_peak: GFLOP/s of the run's threads (per thread for the pooled rows).
inline nlohmann::json report_profile(const StepProfile& p, double step_s, double fma_peak, int threads) {
  const double n = p.steps > 0 ? p.steps : 1;
  nlohmann::json j = {
      {"steps", p.steps}, {"backward_s_per_step", nlohmann::json::object()}, {"gemm", nlohmann::json::array()}};
  std::vector<std::vector<std::string>> rows;
  double bwd = 0;
  std::vector<std::pair<std::string, double>> ops(p.backward.begin(), p.backward.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [op, s] : ops) {
    bwd += s / n, j["backward_s_per_step"][op] = s / n;
    rows.push_back({op, fixed(s / n, 3), fixed(100 * s / n / step_s, 1)});
  }
  rows.push_back({"(all backward)", fixed(bwd, 3), fixed(100 * bwd / step_s, 1)});
  std::cout << "backward by op (per step; the rest of the step is the forward and the optimizer):\n";
  print_table({"op", "s", "% of step"}, rows);
  rows.clear();
  double total = 0, other = 0;
  for (const tensor::GemmStat& g : p.gemms) total += g.pooled() ? 0 : g.seconds / n;
  for (const tensor::GemmStat& g : p.gemms) {
    const double s = g.seconds / n, rate = g.seconds > 0 ? g.flops / g.seconds / 1e9 : 0;
    const double peak = g.pooled() ? fma_peak / threads : fma_peak;  // a pooled call runs on one thread
    j["gemm"].push_back({{"op", gemm_label(g)},
                         {"transA", g.transA},
                         {"transB", g.transB},
                         {"M", g.M},
                         {"N", g.N},
                         {"K", g.K},
                         {"accumulate", g.accumulate},
                         {"calls_per_step", g.calls / n},
                         {"s_per_step", s},
                         {"gflop_per_s", rate},
                         {"fraction_of_fma_peak", peak > 0 ? rate / peak : 0}});
    if (!g.pooled() && s < 0.005 * total) {
      other += s;
      continue;
    }
    rows.push_back({gemm_label(g), fixed(g.calls / n, 0), fixed(s, 3) + (g.pooled() ? " (thread-s)" : ""),
                    fixed(rate, 1), peak > 0 ? fixed(100 * rate / peak, 0) : "-"});
  }
  if (other > 0) rows.push_back({"(other shapes)", "", fixed(other, 3), "", ""});
  const std::string share = fixed(100 * total / step_s, 0) + "% of step";
  rows.push_back({"(all outside parallel regions)", "", fixed(total, 3) + " = " + share, "", ""});
  std::cout << "GEMMs by shape (per step; op(A) op(B), M x N x K, += where beta != 0; in parallel regions: "
               "one thread each, seconds summed over threads, % of one thread's peak):\n";
  print_table({"gemm", "calls", "s", "GFLOP/s", "% FMA peak"}, rows);
  j["gemm_s_per_step_outside_parallel_regions"] = total;
  return j;
}

}  // namespace lowrank::examples
