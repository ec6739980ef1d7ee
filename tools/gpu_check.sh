#!/usr/bin/env bash
# The one command for a lent GPU machine (docs/cuda.md, "Running on a GPU machine"): builds the CUDA
# backend from the tree alone (header-only dependencies from .deps.tar.xz, made by tools/gpu_pack.sh;
# no BLAS) and checks it in five steps, each bounded by `timeout` so that a hang loses only that step:
#   1 device: nvidia-smi, device properties, copy GB/s and sgemm fp32/TF32 (bench_ops --device cuda)
#   2 tests: every cuda* doctest in its own process, pass/fail and worst error against the CPU
#   3 bench_step --device cuda: GPT-2 124M step, FT vs LoRA at B*T = 8*1024, fp32 and --tf32; LoRA in bf16
#   4 latency_table --grid full --device cuda (the paper's Table 1 grid)
#   5 a 200-step LoRA E2E fine-tune on the GPU and the same on the CPU, losses side by side
# Usage: bash tools/gpu_check.sh [OUTDIR]      (default out/gpu)
# OUTDIR gets 8 files: 0_build.log 1_device.txt 2_tests.txt 3_bench_step.txt 4_latency.txt 5_e2e.txt
# results.json (every step's JSON) summary.txt (the table printed last). Environment:
#   GPU_CHECK_EMULATION=1  build with -DLOWRANK_CUDA_EMULATION=ON instead and run every step on the
#                          host emulation at tiny sizes (tests the script itself; CI does this)
#   BUILD (build-gpu, or build-gpu-emu), JOBS (nproc), GPU_CHECK_BUDGET (560 s for all steps: under
#   a 600 s device call, so the summary is always written), CUDA_ARCH (from nvidia-smi, else 90)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-out/gpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
EMU=${GPU_CHECK_EMULATION:-0}
JOBS=${JOBS:-$(nproc)}
BUDGET=${GPU_CHECK_BUDGET:-560}
if [ "$EMU" = 1 ]; then BUILD=${BUILD:-build-gpu-emu}; else BUILD=${BUILD:-build-gpu}; fi
BIN=$ROOT/$BUILD
TMP=$BIN/gpu_check_tmp  # scratch: OUTDIR holds only the 8 files that come back
START=$SECONDS
SUMMARY=()
rm -f "$OUT"/[0-5]_*.* "$OUT/summary.txt" "$OUT/results.json"

# gpu: a GPU answers nvidia-smi; emulation: GPU_CHECK_EMULATION=1; none: GPU-only steps skip.
if [ "$EMU" = 1 ]; then MODE=emulation
elif command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then MODE=gpu
else MODE=none; fi

source "$ROOT/tools/gpu_check_lib.sh"
source "$ROOT/tools/gpu_check_steps.sh"

echo "gpu_check: mode $MODE, build $BUILD/, $JOBS jobs, budget ${BUDGET} s, results in $OUT/"
step_build
if [ -n "$BUILT" ]; then
  step_device
  step_tests
  step_bench_step
  step_latency
  step_e2e
else
  for s in device tests bench_step latency e2e; do record "$s" skipped 0 "build failed"; done
fi
# Progress bars redraw with carriage returns, unreadable in a file: one line per update instead.
for f in "$OUT"/[1-5]_*.txt; do
  [ -f "$f" ] && { tr '\r' '\n' <"$f" | grep -v '^[[:space:]]*$' || true; } >"$f.tmp" && mv "$f.tmp" "$f"
done
write_results_json
print_summary | tee "$OUT/summary.txt"
# A failed step's file ends with why: show it here too (CI's log), and fail the command.
failed=0
for f in "$OUT"/[0-5]_*; do
  step=$(basename "$f"); step=${step#?_}; step=${step%.*}
  if printf '%s\n' "${SUMMARY[@]}" | grep -Eq "^${step} +(fail|timeout) "; then
    failed=1
    echo "==== $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  fi
done
exit "$failed"
