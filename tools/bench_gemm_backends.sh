#!/usr/bin/env bash
# Builds bench_ops once per GEMM backend (build-<backend>/, -DLOWRANK_GEMM=<backend>) and runs them
# interleaved, A B C D A B C D, at each thread count, so a slow spell of a shared machine falls on
# every backend alike (docs/benchmarks.md, "GEMM backends"). JSON per run in $OUT.
# Usage: tools/bench_gemm_backends.sh [rounds]   Environment: BACKENDS (default "openblas onednn blis
# eigen"), THREADS (default "1 2"), REPEATS (default 5), OUT (default out/gemm_backends), LOWRANK_JOBS.
# OPENBLAS_CORETYPE is left as the environment has it (pinned on some AVX-512 machines on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
BACKENDS=${BACKENDS:-openblas onednn blis eigen}
THREADS=${THREADS:-1 2}
OUT=${OUT:-out/gemm_backends}
mkdir -p "$OUT"
for b in $BACKENDS; do
  LOWRANK_EXTRA_PKGS="${LOWRANK_EXTRA_PKGS:-} libdnnl-dev libblis-openmp-dev" \
  LOWRANK_CMAKE_ARGS="-DLOWRANK_CUDA=OFF -DLOWRANK_GEMM=$b ${LOWRANK_CMAKE_ARGS:-}" \
    tools/setup.sh "build-$b" bench_ops >/dev/null
done
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>}"
for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    for b in $BACKENDS; do
      echo "==> round $round, $t thread(s), $b"
      "build-$b/bench_ops" --threads "$t" --repeats "${REPEATS:-5}" --json "$OUT/$b-t$t-r$round.json"
    done
  done
done
