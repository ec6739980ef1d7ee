#!/usr/bin/env bash
# Fuzzes every loader (tests/fuzz/, docs/reliability.md): installs clang and its runtimes (Debian
# packages, only those missing), builds the libFuzzer harnesses in build-fuzz/ (library and harnesses
# under ASan + UBSan), writes the seed corpora from the committed fixtures and data, and runs each
# harness for the given seconds, one after another on one core. Prints executions and coverage per
# harness and exits non-zero when any harness found something (its input is kept under
# build-fuzz/fuzz-findings/<harness>/; rerun it with build-fuzz/fuzz_<harness> <file>).
# Usage: tools/fuzz.sh [seconds-per-harness (30)] [harness ...]   (default: all of them)
# Environment: LOWRANK_JOBS (build jobs, default nproc), FUZZ_BUILD (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
[ $# -gt 0 ] && shift
HARNESSES=("$@")
# Default: every harness of tests/fuzz/CMakeLists.txt's LOWRANK_FUZZ_HARNESSES (one list for both).
[ ${#HARNESSES[@]} -eq 0 ] && read -r -a HARNESSES <<< "$(sed -n '/^set(LOWRANK_FUZZ_HARNESSES/,/)/p' tests/fuzz/CMakeLists.txt \
  | sed 's/#.*//; s/set(LOWRANK_FUZZ_HARNESSES//; s/)//' | tr '\n' ' ')"
BUILD=${FUZZ_BUILD:-build-fuzz}

# Packages and build: tools/setup.sh, plus clang with libFuzzer and the sanitizer runtimes, and libomp
# (clang's OpenMP).
LOWRANK_EXTRA_PKGS="clang libclang-rt-14-dev libomp-14-dev" \
  LOWRANK_CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++ -DLOWRANK_FUZZ=ON -DLOWRANK_CUDA=OFF" \
  tools/setup.sh "$BUILD" fuzz_all

echo "==> seed corpora in $BUILD/corpus/"
"$BUILD/make_seeds" "$BUILD/corpus" "$BUILD/assets/e2e/lora_format" "$BUILD/assets/glue"

# Leaks are findings too; a finding stops the harness at once (the sanitizers abort, libFuzzer saves
# the input). -rss_limit_mb and -timeout bound one input: a loader must refuse what it cannot load
# quickly in little memory (a config asking for gigabytes is a finding, not a slow run).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
rows=()
for h in "${HARNESSES[@]}"; do
  mkdir -p "$BUILD/fuzz-findings/$h" "$BUILD/fuzz-logs"
  log="$BUILD/fuzz-logs/$h.log"
  echo "==> fuzz_$h for ${SECS}s (log: $log)"
  start=$(date +%s)
  rc=0
  "$BUILD/fuzz_$h" "$BUILD/corpus/$h" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=20 \
    -artifact_prefix="$BUILD/fuzz-findings/$h/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  corp=$(ls "$BUILD/corpus/$h" | wc -l)
  result="ok"
  if [ "$rc" -ne 0 ]; then
    result="FINDING (rc $rc)"
    failed+=("$h")
    grep -E "ERROR: |runtime error|lowrank fuzz finding|terminate called|what\(\)|Test unit written" "$log" | head -8 || true
  fi
  rows+=("$(printf '%-12s %6ss %12s %7s %8s %7s  %s' "$h" "$took" "$execs" "$cov" "$ft" "$corp" "$result")")
done

echo
echo "==> fuzzing summary ($SECS s per harness; cov = coverage points, ft = features, corpus = inputs kept)"
printf '%-12s %7s %12s %7s %8s %7s  %s\n' harness time executions cov ft corpus result
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found something in: ${failed[*]} (inputs under $BUILD/fuzz-findings/, logs under $BUILD/fuzz-logs/)"
  exit 1
fi
