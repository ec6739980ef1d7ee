#!/usr/bin/env bash
# lowrank's bench_step next to PyTorch + peft (tools/bench_torch.py) on the same step: GPT-2 124M shape,
# random weights, B = 1, T = $SEQ, FT with AdamW and LoRA r = 4, same thread count. The two programs
# run interleaved, method by method, for $ROUNDS rounds (even rounds start with PyTorch), so a change
# of load on a shared machine hits both sides; only ratios taken within one such run are comparable.
# Prints, per round, each side's median step, how many times faster lowrank is, and LoRA/FT of each.
#
#   PYTHON=/tmp/venv-bench/bin/python tools/bench_vs_torch.sh            # print only
#   PYTHON=/tmp/venv-bench/bin/python tools/bench_vs_torch.sh --json     # also docs/results/bench_vs_torch.json
#   ... --json out/vs.json                                                # or this path
#   ... --e2e [--json]    # the E2E fine-tuning step of the mini model instead (docs/results/bench_vs_torch_e2e.json):
#                         # B = 8, T = 75, loss and head on the last 26 positions, 20 timed steps + 3 warm-up
#   ... --bf16 [--json]   # LoRA only, both sides in bf16 (docs/results/bench_vs_torch_bf16.json): bench_step
#                         # --precision bf16 against the PyTorch step under torch.autocast("cpu", bfloat16);
#                         # each round also runs bench_step in fp32, for bf16's own gain
# Environment: PYTHON (python3; needs torch, transformers, peft), BUILD (build; bench_step must be
# built), THREADS (2), MODEL (gpt2), BATCH (1), SEQ (1024), LOSS_ROWS (0: all), STEPS (3 timed steps per
# run), WARMUP (1), ROUNDS (2). About 8-10 minutes at the defaults on 2 cores, 1-2 with --e2e.
# Not part of the build or the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E=0 JSON="" JSON_DEFAULT=docs/results/bench_vs_torch.json
PRECISION=fp32 METHODS="ft lora"
for arg in "$@"; do
  [ "$arg" = --e2e ] && E2E=1 JSON_DEFAULT=docs/results/bench_vs_torch_e2e.json
  [ "$arg" = --bf16 ] && PRECISION=bf16 METHODS=lora JSON_DEFAULT=docs/results/bench_vs_torch_bf16.json
done
[ $E2E = 1 ] && [ $PRECISION = bf16 ] && { echo "bench_vs_torch.sh: --e2e and --bf16 do not go together" >&2; exit 2; }
if [ $E2E = 1 ]; then  # the E2E step of examples/finetune_e2e.cpp: ~75 padded tokens, ~26 completion rows
  MODEL=${MODEL:-mini} BATCH=${BATCH:-8} SEQ=${SEQ:-75} LOSS_ROWS=${LOSS_ROWS:-26} STEPS=${STEPS:-20} WARMUP=${WARMUP:-3}
fi
PYTHON=${PYTHON:-python3} BUILD=${BUILD:-build} THREADS=${THREADS:-2} MODEL=${MODEL:-gpt2} BATCH=${BATCH:-1}
SEQ=${SEQ:-1024} LOSS_ROWS=${LOSS_ROWS:-0} STEPS=${STEPS:-3} WARMUP=${WARMUP:-1} ROUNDS=${ROUNDS:-2}
while [ $# -gt 0 ]; do
  case $1 in
    --e2e|--bf16) ;;
    --json) JSON=$JSON_DEFAULT
            if [ $# -gt 1 ] && [[ $2 != -* ]]; then JSON=$2; shift; fi ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

[ -x "$BUILD/bench_step" ] || { echo "bench_vs_torch.sh: no $BUILD/bench_step; build it first:" \
  "tools/setup.sh $BUILD bench_step" >&2; exit 2; }
if ! "$PYTHON" -c "import torch, transformers, peft" 2>/dev/null; then
  echo "bench_vs_torch.sh: torch, transformers or peft is missing for PYTHON=$PYTHON. Install them in a venv:" >&2
  echo "  python3 -m venv /tmp/venv-bench && /tmp/venv-bench/bin/pip install torch transformers peft" >&2
  echo "  PYTHON=/tmp/venv-bench/bin/python $0" >&2
  exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
COMMON=(--threads "$THREADS" --model "$MODEL" --batch "$BATCH" --seq "$SEQ" --loss-rows "$LOSS_ROWS"
        --steps "$STEPS" --warmup "$WARMUP")

# One run of one side for one method; its log is shown only when it fails.
run_side() {
  local side=$1 round=$2 m=$3 out="$TMP/${1}_${2}_${3}"
  echo "==> round $round, $m: $side"
  if [ "$side" = lowrank ]; then
    "$BUILD/bench_step" --methods "$m" "${COMMON[@]}" --precision "$PRECISION" --json "$out.json" >"$out.log" 2>&1 ||
      { cat "$out.log"; exit 1; }
  elif [ "$side" = lowrank_fp32 ]; then
    "$BUILD/bench_step" --methods "$m" "${COMMON[@]}" --precision fp32 --json "$out.json" >"$out.log" 2>&1 ||
      { cat "$out.log"; exit 1; }
  else
    "$PYTHON" tools/bench_torch.py --methods "$m" "${COMMON[@]}" --precision "$PRECISION" --json "$out.json" >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE"
for r in $(seq 1 "$ROUNDS"); do
  sides=(lowrank torch)
  [ $((r % 2)) -eq 0 ] && sides=(torch lowrank)
  [ "$PRECISION" = bf16 ] && sides+=(lowrank_fp32)
  for m in $METHODS; do
    for s in "${sides[@]}"; do run_side "$s" "$r" "$m"; done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average after: $LOAD_AFTER"

# The summary: one row per round, then the ranges over rounds (and the JSON, when asked for).
"$PYTHON" - "$TMP" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" "$JSON" "$METHODS" "$PRECISION" <<'EOF'
import json, sys, time
tmp, rounds, load_before, load_after, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
methods, precision = sys.argv[6].split(), sys.argv[7]
def rd(side, r, m):
    return json.load(open(f"{tmp}/{side}_{r}_{m}.json"))
def med(side, r, m):
    j = rd(side, r, m)
    return j["methods"][0]["step_s_median"]
rows = []
for r in range(1, rounds + 1):
    row = {"round": r}
    for m in methods:
        lr, pt = med("lowrank", r, m), med("torch", r, m)
        row[m] = {"lowrank_s": lr, "torch_s": pt, "lowrank_faster_by": pt / lr,
                  "lowrank_x_floor_fma": rd("lowrank", r, m)["methods"][0].get("x_floor_fma")}
    if precision == "bf16":  # bf16's gain over fp32 within lowrank, the same round
        row["lora"]["lowrank_fp32_s"] = med("lowrank_fp32", r, "lora")
        row["lora"]["lowrank_bf16_gain"] = row["lora"]["lowrank_fp32_s"] / row["lora"]["lowrank_s"]
    if "ft" in methods:
        row["lora_over_ft"] = {s: row["lora"][f"{s}_s"] / row["ft"][f"{s}_s"] for s in ("lowrank", "torch")}
    rows.append(row)
print(f"\n{'round':>5} {'step':>5} {'torch s':>8} {'lowrank s':>9} {'lowrank faster by':>17} {'x 0.8 FMA floor':>15}")
for row in rows:
    for m in methods:
        c = row[m]
        print(f"{row['round']:>5} {m:>5} {c['torch_s']:8.3f} {c['lowrank_s']:9.3f} {c['lowrank_faster_by']:16.2f}x "
              f"{c['lowrank_x_floor_fma'] or float('nan'):15.2f}")
    if precision == "bf16":
        print(f"{row['round']:>5} lowrank fp32 {row['lora']['lowrank_fp32_s']:.3f} s: bf16 faster by {row['lora']['lowrank_bf16_gain']:.2f}x")
    if "lora_over_ft" in row:
        print(f"{row['round']:>5} LoRA/FT: torch {row['lora_over_ft']['torch']:.3f}, lowrank {row['lora_over_ft']['lowrank']:.3f}")
span = lambda xs: [min(xs), max(xs)]
summary = {m: span([row[m]["lowrank_faster_by"] for row in rows]) for m in methods}
if precision == "bf16":
    summary["lowrank_bf16_gain"] = span([row["lora"]["lowrank_bf16_gain"] for row in rows])
if "ft" in methods:
    summary["lora_over_ft"] = {s: span([row["lora_over_ft"][s] for row in rows]) for s in ("lowrank", "torch")}
print(f"lowrank faster by ({precision}): " + ", ".join(f"{m} {summary[m][0]:.2f}-{summary[m][1]:.2f}x" for m in methods))
ls, pt = rd("lowrank", 1, "lora"), rd("torch", 1, "lora")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
if out:
    res = {"benchmark": "bench_vs_torch", "date": time.strftime("%Y-%m-%d"), "cpu": cpu, "precision": precision,
           "threads": ls["threads"], "model": ls["model"], "batch": ls["batch"], "seq": ls["seq"],
           "loss_rows": ls["loss_rows"], "steps_per_run": len(ls["methods"][0]["step_s_all"]), "rounds": rows, "summary": summary,
           "load_average_before": load_before, "load_average_after": load_after,
           "fma_peak_gflop_per_s": [rd("lowrank", r, m).get("fma_peak_gflop_per_s") for r in range(1, rounds + 1) for m in methods],
           "bf16_gemm": ls.get("bf16_gemm"), "bf16_gemm_gflop_per_s": ls.get("bf16_gemm_gflop_per_s"),
           "bf16_gemms_per_step": ls["methods"][0].get("bf16_gemms_per_step"),
           "torch_cpu_capability": pt.get("cpu_capability"),
           "fma_vector_bits": ls.get("fma_vector_bits"), "sgemm_gflop_per_s": ls["sgemm_gflop_per_s"],
           "gemm_backend": ls.get("gemm_backend"), "gemm_backend_info": ls.get("gemm_backend_info"),
           "torch": pt["torch"], "transformers": pt["transformers"], "peft": pt["peft"],
           "torch_attn_implementation": pt["attn_implementation"]}
    with open(out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {out}")
EOF
