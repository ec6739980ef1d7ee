#include "tensor/gemm_profile.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>

namespace lowrank::tensor {

namespace {
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, bool>;  // transA, transB, M, N, K, beta != 0
std::atomic<bool> g_on{false};
std::mutex g_mutex;  // attention's tiles record from several threads at once
std::map<Key, GemmStat> g_rows;
}  // namespace

void gemm_profile_start() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_rows.clear();
  g_on.store(true, std::memory_order_relaxed);
}

std::vector<GemmStat> gemm_profile_stop() {
  g_on.store(false, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<GemmStat> rows;
  for (const auto& kv : g_rows) rows.push_back(kv.second);
  std::sort(rows.begin(), rows.end(), [](const GemmStat& a, const GemmStat& b) { return a.seconds > b.seconds; });
  return rows;
}

bool gemm_profiling() { return g_on.load(std::memory_order_relaxed); }

void gemm_profile_record(bool transA, bool transB, int64_t M, int64_t N, int64_t K, bool accumulate, double seconds) {
  const bool pooled = omp_in_parallel() != 0;
  const Key key{transA, transB, pooled ? -1 : M, pooled ? -1 : N, pooled ? -1 : K, accumulate};
  std::lock_guard<std::mutex> lock(g_mutex);
  GemmStat& s = g_rows[key];
  s.transA = transA, s.transB = transB, s.accumulate = accumulate;
  s.M = std::get<2>(key), s.N = std::get<3>(key), s.K = std::get<4>(key);
  s.calls += 1;
  s.seconds += seconds;
  s.flops += 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
}

}  // namespace lowrank::tensor
