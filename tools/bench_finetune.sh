#!/usr/bin/env bash
# finetune on E2E converted to JSON Lines against finetune_e2e on E2E itself: the same recipe (the
# demo's: LoRA r=4 on Wq, Wv, alpha 32, batch 8, max length 128), the same steps, alternated over
# ROUNDS rounds, training tokens/s from each run's JSON. Run it on a quiet machine: nothing else may
# run beside a benchmark. Both binaries train with examples/common/train_loop.h, so the ratio should
# sit at 1 within the noise; it checks that finetune's data path costs nothing per step.
# Usage: tools/bench_finetune.sh [--json PATH]   Environment: BUILD (build), STEPS (300), ROUNDS (3),
# THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}; STEPS=${STEPS:-300}; ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}
JSON=""
[ "${1:-}" = "--json" ] && JSON=${2:?--json needs a path}
BASE=data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
"$BUILD/to_jsonl" --from e2e --split train --out "$TMP/train.jsonl" >/dev/null
"$BUILD/to_jsonl" --from e2e --split valid --out "$TMP/valid.jsonl" >/dev/null
RECIPE="--rank 4 --alpha 32 --lr 2e-3 --steps $STEPS --threads $THREADS"
tps() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train_tokens_per_s'])" "$1"; }
a=(); b=()
for r in $(seq "$ROUNDS"); do
  "$BUILD/finetune_e2e" --init "$BASE" $RECIPE --warmup 30 --test-mrs 1 --beam 1 --show 0 \
    --outputs "$TMP/o.txt" --json "$TMP/e2e.json" >/dev/null 2>&1
  a+=("$(tps "$TMP/e2e.json")")
  rm -rf "$TMP/run"
  "$BUILD/finetune" --init "$BASE" --data "$TMP/train.jsonl" --val "$TMP/valid.jsonl" $RECIPE --warmup 30 \
    --dropout 0.1 --label-smoothing 0.1 --max-len 128 --eval-batches 50 --out "$TMP/run" >/dev/null 2>&1
  b+=("$(tps "$TMP/run/metrics.json")")
  echo "round $r: finetune_e2e ${a[-1]} tokens/s, finetune ${b[-1]} tokens/s"
done
python3 - "$JSON" "$STEPS" "$THREADS" "${a[*]}" "${b[*]}" <<'PY'
import json, platform, statistics, sys
path, steps, threads, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), list(map(float, sys.argv[4].split())), list(map(float, sys.argv[5].split()))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
ma, mb = statistics.median(a), statistics.median(b)
print(f"median tokens/s: finetune_e2e {ma:.0f}, finetune {mb:.0f}; finetune / finetune_e2e = {mb / ma:.3f}")
if path:
    json.dump({"cpu": cpu, "steps": steps, "threads": threads, "finetune_e2e_tokens_per_s": a,
               "finetune_tokens_per_s": b, "ratio_of_medians": mb / ma}, open(path, "w"), indent=2)
PY
