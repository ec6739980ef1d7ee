#!/usr/bin/env bash
# E2E fine-tuning runs on a GPU machine, several at once, after tools/gpu_check.sh has built the CUDA
# build there (docs/cuda.md, "Running on a GPU machine"). The GPU has the time the 2-core CPU lacks
# for the paper's 5 epochs and for sweeps; each run is a plain finetune_e2e --device cuda.
#   bash tools/gpu_e2e_runs.sh OUTDIR RUNS_FILE [PARALLEL] [TIMEOUT_S]
# RUNS_FILE: one run per line, "NAME finetune_e2e-options" (# comments allowed), e.g.
#   lora-5ep --method lora --lr 2e-3 --steps 0 --epochs 5
# Every run gets --init $BASE (default: the headline base) --device cuda --test-mrs 0 --eval-every 500
# --show 0 and writes its row to out/gpu-e2e/e2e.json (table e2e; keys carry device=cuda), its outputs to
# docs/results/e2e_outputs/BASE-NAME.txt.xz and its log to out/gpu-e2e/NAME.log. At most PARALLEL runs at once
# (default 4), each stopped after TIMEOUT_S seconds (default 420). All of it is packed into one file,
# OUTDIR/e2e_gpu.tar.gz (a GPU machine returns few files). Back on the CPU machine, in the repository:
#   tar xzf e2e_gpu.tar.gz && ./build/results_table --results docs/results/e2e.json --merge out/gpu-e2e/e2e.json
set -euo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:?usage: tools/gpu_e2e_runs.sh OUTDIR RUNS_FILE [PARALLEL] [TIMEOUT_S]}
RUNS=${2:?usage: tools/gpu_e2e_runs.sh OUTDIR RUNS_FILE [PARALLEL] [TIMEOUT_S]}
PARALLEL=${3:-4}
LIMIT=${4:-420}
BUILD=${BUILD:-build-gpu}
BASE=${BASE:-data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors}
[ -x "$BUILD/finetune_e2e" ] || { echo "gpu_e2e_runs: $BUILD/finetune_e2e not built (run tools/gpu_check.sh first)" >&2; exit 2; }
[ -r "$RUNS" ] || { echo "gpu_e2e_runs: cannot read the runs file '$RUNS'" >&2; exit 2; }
TAG=$(basename "$BASE" .safetensors)
WORK=out/gpu-e2e
mkdir -p "$OUTDIR" "$WORK" docs/results/e2e_outputs

run_one() {  # NAME OPTIONS...: one finetune_e2e on the GPU, bounded by LIMIT seconds
  local name=$1; shift
  local t0=$SECONDS rc=0
  timeout "$LIMIT" "$BUILD/finetune_e2e" --init "$BASE" --device cuda --test-mrs 0 --eval-every 500 --show 0 \
    --threads 1 --outputs "docs/results/e2e_outputs/$TAG-$name.txt" --results "$WORK/e2e.json" "$@" \
    >"$WORK/$name.log" 2>&1 || rc=$?
  echo "$name: exit $rc after $((SECONDS - t0)) s"
}
export -f run_one
export BUILD BASE TAG WORK LIMIT

runs=$(grep -v -E '^[[:space:]]*(#|$)' "$RUNS")  # the run lines, comments and blank lines left out
printf '%s\n' "$runs" | xargs -P "$PARALLEL" -I{} bash -c 'run_one {}'
# The last lines of each log: the score table, or where a run stopped.
for f in "$WORK"/*.log; do echo "== $f"; tr '\r' '\n' <"$f" | grep -v '^\s*$' | tail -n 6; done
names=$(printf '%s\n' "$runs" | awk '{print "docs/results/e2e_outputs/'"$TAG"'-" $1 ".txt"}')
# The outputs are stored xz-compressed, as every file of docs/results/e2e_outputs (the tree has to travel).
for f in $names; do if [ -f "$f" ]; then xz -9f "$f"; fi; done
# shellcheck disable=SC2086
tar czf "$OUTDIR/e2e_gpu.tar.gz" "$WORK" $(ls $(printf '%s.xz ' $names) 2>/dev/null)
