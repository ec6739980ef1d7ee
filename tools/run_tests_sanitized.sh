#!/usr/bin/env bash
# The doctest suite under AddressSanitizer + UndefinedBehaviorSanitizer (docs/reliability.md): builds
# build-asan/ with clang and -DLOWRANK_SANITIZE=ON (exact-size allocations, so reading one float past a
# tensor is caught; the CUDA backend off) and runs every ctest test in it. The first report of a
# memory error, a leak or undefined behaviour aborts its test, so ctest fails on any finding.
# Called by tools/run_tests.sh --full; by hand: tools/run_tests_sanitized.sh [ctest args, e.g. -R bpe]
# Environment: LOWRANK_JOBS (build and test jobs, default nproc), ASAN_BUILD (default build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ASAN_BUILD:-build-asan}
JOBS=${LOWRANK_JOBS:-$(nproc)}

# clang: its UBSan also checks float-to-int casts that overflow (a config's 1e300 read as an int),
# and it builds this code under the sanitizers several times faster than g++ (docs/reliability.md).
# Without MPI: OpenMPI's runtime keeps allocations to the end, which LeakSanitizer would report in every
# rank of the data-parallel tests (they skip here; the fast tier runs them).
LOWRANK_MPI=OFF LOWRANK_EXTRA_PKGS="clang libclang-rt-14-dev libomp-14-dev" \
  LOWRANK_CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++ -DLOWRANK_SANITIZE=ON -DLOWRANK_CUDA=OFF" \
  tools/setup.sh "$BUILD" lowrank_tests

echo "==> the test suite under ASan + UBSan ($BUILD/)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
(cd "$BUILD" && ctest -j "$JOBS" --output-on-failure --timeout 1500 "$@")
