#!/usr/bin/env bash
# The test command, in two tiers.
#
#   tools/run_tests.sh          the fast tier (the README's test command): installs the Debian packages
#                               that are missing, builds build/, runs the ctest suite (labels unit, cli,
#                               e2e; the tree-size and find_package consumer checks are unit). About
#                               10 minutes on 2 cores from nothing, seconds to minutes after.
#   tools/run_tests.sh --full   CI (.ci/run): the fast tier with the CUDA backend compiled when nvcc
#                               exists, then the course labs (tools/check_labs.sh), the CUDA tests on the
#                               host emulation (build-emu/), the suite under ASan + UBSan
#                               (tools/run_tests_sanitized.sh) and every loader fuzzed
#                               (tools/fuzz.sh, $LOWRANK_FUZZ_SECONDS each, default 30). About 26 minutes.
#
# The fast tier compiles the CUDA backend only where a GPU answers (nvidia-smi -L): without one the
# CUDA tests skip, and nvcc would add minutes for code no test runs here; --full compiles it so that CI
# still catches a .cu that no longer builds. One label alone: cd build && ctest -L unit (or cli, e2e).
# Environment: LOWRANK_JOBS (build and test jobs, default nproc), LOWRANK_CMAKE_ARGS (as tools/setup.sh),
# LOWRANK_MPI (default ON: OpenMPI is installed and the data-parallel tests run 2 ranks; OFF skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
case "${1:-}" in
  --full) FULL=1 ;;
  '') ;;
  -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run_tests.sh: unknown argument '$1' (--full or nothing; --help)" >&2; exit 2 ;;
esac
JOBS=${LOWRANK_JOBS:-$(nproc)}
export LOWRANK_MPI=${LOWRANK_MPI:-ON}
t0=$SECONDS

if [ "$FULL" = 1 ] || nvidia-smi -L >/dev/null 2>&1; then CUDA=ON; else CUDA=OFF; fi
echo "==> build/ (CUDA backend $CUDA)"
LOWRANK_CMAKE_ARGS="-DLOWRANK_CUDA=$CUDA ${LOWRANK_CMAKE_ARGS:-}" tools/setup.sh build
(cd build && ctest -j "$JOBS" --output-on-failure --timeout 1500)
echo "==> fast tier passed in $((SECONDS - t0)) s"
[ "$FULL" = 1 ] || exit 0

tools/check_labs.sh  # course labs (docs/labs/README.md): each lab's copy builds, its grader fails with its message, the rest passes

# No GPU here: the CUDA tests above skipped. Build again with the host emulation of the CUDA backend
# (docs/cuda.md, "Host emulation") and run them on it: every device branch of the ops, tensors,
# optimizer and models runs, though not the real kernels. Only the binaries gpu_check runs are built.
# It needs only the CUDA toolkit's headers (an optional dependency): without them it is skipped.
if command -v nvcc >/dev/null || [ -e /usr/local/cuda/include/cuda_runtime.h ] || [ -e /usr/include/cuda_runtime.h ]; then
  echo "==> CUDA tests on the host emulation (build-emu/)"
  LOWRANK_CMAKE_ARGS="${LOWRANK_CMAKE_ARGS:-} -DLOWRANK_CUDA_EMULATION=ON" tools/setup.sh build-emu \
    lowrank_tests bench_ops bench_step latency_table finetune_e2e
  # The GPU machine's one command (tools/gpu_check.sh) end to end on the emulation, at tiny sizes:
  # every cuda* test in its own process, then each benchmark step's plumbing (about a minute).
  GPU_CHECK_EMULATION=1 BUILD=build-emu tools/gpu_check.sh build-emu/gpu_check
else
  echo "==> CUDA host emulation skipped: no CUDA toolkit headers (install nvidia-cuda-toolkit to run it)"
fi

# Bad input and memory errors (docs/reliability.md): the whole suite again under ASan + UBSan
# (build-asan/, clang), then every file loader fuzzed for $LOWRANK_FUZZ_SECONDS (default 30) seconds
# each (build-fuzz/). Either fails this script on any finding.
tools/run_tests_sanitized.sh
tools/fuzz.sh "${LOWRANK_FUZZ_SECONDS:-30}"
echo "==> full suite passed in $((SECONDS - t0)) s"
