#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
(cd build && ctest -j "$(nproc)" --output-on-failure --timeout 1500)
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
