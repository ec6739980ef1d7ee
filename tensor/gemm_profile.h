#pragma once
// Where a CPU step's GEMM time goes, per call shape (`bench_step --profile`; docs/benchmarks.md,
// "Inside the step"). Off by default: gemm() then pays one relaxed atomic load per call.
// A call made outside any OpenMP parallel region (a layer's linear, the head: the backend threads it)
// is one row per (transposes, M, N, K, beta != 0). Calls made inside a parallel region (attention's
// tiles, one per thread, of varying size) are pooled per transpose pair into a row with M = N = K = -1,
// and their seconds add up over the threads (thread-seconds, not wall time).
#include <cstdint>
#include <vector>

namespace lowrank::tensor {

struct GemmStat {
  bool transA = false, transB = false, accumulate = false;  // accumulate: beta != 0
  int64_t M = 0, N = 0, K = 0;                              // -1: calls in parallel regions, pooled
  int64_t calls = 0;
  double seconds = 0, flops = 0;  // flops = Σ 2·M·N·K of the calls
  bool pooled() const { return M < 0; }
};

void gemm_profile_start();                  // clears the table and turns recording on
std::vector<GemmStat> gemm_profile_stop();  // turns it off; its rows, most seconds first
bool gemm_profiling();

// Records one call of `seconds`; gemm() calls it while recording. Thread-safe.
void gemm_profile_record(bool transA, bool transB, int64_t M, int64_t N, int64_t K, bool accumulate, double seconds);

}  // namespace lowrank::tensor
