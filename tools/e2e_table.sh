#!/usr/bin/env bash
# Runs finetune_e2e for every method on one base checkpoint and prints a markdown table
# (trainable params, optimizer state, BLEU, NIST, METEOR, ROUGE-L, CIDEr, train time).
# Usage: tools/e2e_table.sh BASE.safetensors [extra finetune_e2e args...]
# Per-method learning rates below were picked for short CPU runs (not tuned per method as the paper did).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: tools/e2e_table.sh BASE.safetensors [args...]}
shift
OUT=${OUT:-out/e2e}  # e.g. OUT=out/e2e-wiki to keep the results of another base
mkdir -p "$OUT"
declare -A LR=([lora]=2e-3 [ft]=3e-4 [ft-top2]=5e-4 [bitfit]=3e-3 [adapter-h]=2e-3 [adapter-l]=2e-3
               [prefix-embed]=3e-3 [prefix-layer]=3e-3)
METHODS=${METHODS:-"lora ft ft-top2 bitfit adapter-h adapter-l prefix-embed prefix-layer"}
for m in $METHODS; do
  echo "==> $m (lr ${LR[$m]})" >&2
  ./build/finetune_e2e --init "$BASE" --method "$m" --lr "${LR[$m]}" --json "$OUT/$m.json" \
    --outputs "$OUT/$m.outputs.txt" "$@" >&2
done
field() { grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *"?([^",]*)"?,?$/\1/'; }
printf '| method | trainable params | optimizer state (bytes) | BLEU | NIST | METEOR | ROUGE-L | CIDEr | valid loss | train s |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for m in $METHODS; do
  j="$OUT/$m.json"
  printf '| %s | %s | %s | %.4f | %.3f | %.4f | %.4f | %.3f | %.3f | %.0f |\n' "$m" "$(field "$j" trainable_params)" \
    "$(field "$j" optimizer_state_bytes)" "$(field "$j" bleu)" "$(field "$j" nist)" "$(field "$j" meteor)" \
    "$(field "$j" rouge_l)" "$(field "$j" cider)" "$(field "$j" valid_loss)" "$(field "$j" train_seconds)"
done
