#!/usr/bin/env bash
# Table 2 analog: finetune_glue for every method on SST-2, MRPC and RTE (3 seeds each) from one base
# checkpoint, then a markdown table of dev accuracy (and F1 for MRPC) as mean ± std over the seeds.
# Usage: tools/nlu_table.sh BASE.safetensors [extra finetune_glue args...]
# A result already in out/glue/<task>_<method>.json is reused (delete it to rerun). Learning rates:
# finetune_glue's defaults (5e-4 for ft, 1e-3 otherwise), not tuned per method as the paper did.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: tools/nlu_table.sh BASE.safetensors [args...]}
shift
OUT=out/glue
mkdir -p "$OUT"
TASKS=${TASKS:-"sst2 mrpc rte"}
METHODS=${METHODS:-"ft bitfit adapter-h adapter-l lora"}
for t in $TASKS; do
  for m in $METHODS; do
    j="$OUT/${t}_${m}.json"
    [[ -s "$j" ]] && { echo "==> $t $m: reusing $j" >&2; continue; }
    echo "==> $t $m" >&2
    ./build/finetune_glue --task "$t" --method "$m" --init "$BASE" --json "$j" "$@" >&2
  done
done
# mean ± std in percent of one field ("accuracy" or "f1") of a result file
stat() {
  awk -v f="$2" -F'[:,]' '$1 ~ "\"" f "_mean\"" {m = $2} $1 ~ "\"" f "_std\"" {s = $2}
    END {printf "%.1f ± %.1f", 100 * m, 100 * s}' "$1"
}
field() { grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *"?([^",]*)"?,?$/\1/'; }
printf '| method | trainable | SST-2 acc | MRPC acc | MRPC F1 | RTE acc |\n|---|---:|---:|---:|---:|---:|\n'
for m in $METHODS; do
  cell() { [[ -s "$OUT/${1}_$m.json" ]] && stat "$OUT/${1}_$m.json" "$2" || echo "–"; }
  any=$(ls "$OUT"/*_"$m".json 2>/dev/null | head -1)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$m" "$( [[ -n $any ]] && field "$any" trainable_params )" \
    "$(cell sst2 accuracy)" "$(cell mrpc accuracy)" "$(cell mrpc f1)" "$(cell rte accuracy)"
done
