#!/usr/bin/env bash
# Groups a `perf record` profile of bench_step into where the time goes: BLAS GEMM, model
# initialisation (random weights; not part of a timed step), the kernel (page faults, zeroing), and
# each of our ops. Used for the before/after profiles in docs/benchmarks.md.
#   perf record -o perf.data ./build/bench_step --methods lora --steps 3 --threads 1
#   bash tools/perf_breakdown.sh perf.data
set -euo pipefail
perf report -i "${1:-perf.data}" --no-children --sort symbol 2>/dev/null | grep -E '^ +[0-9.]+%' | awk '
  { pct = $1; sub("%", "", pct); sym = $0; sub(/^ +[0-9.]+% +\[[.k]\] +/, "", sym); sub(/ +- +- *$/, "", sym)
    if (sym ~ /^sgemm_|gemm_/) cat = "BLAS sgemm (kernel + packing)"
    else if (sym ~ /sincos|Rng::normal|Tensor::randn|ieee754_log/) cat = "init: random weights (outside the timed step)"
    else if ($2 == "[k]") cat = "kernel: page faults, zeroing, scheduling"
    else if (sym ~ /lowrank::/) { cat = sym; sub(/\(anonymous namespace\)::/, "", cat); sub(/\(.*$/, "", cat); sub(/<.*$/, "", cat) }
    else cat = "other: " sym
    total[cat] += pct }
  END { for (c in total) printf "%6.2f%%  %s\n", total[c], c }' | sort -rn | head -25
