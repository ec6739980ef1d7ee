#!/usr/bin/env bash
# The LoRA family beside plain LoRA, one run at a time so that the other core stays free:
#   tools/lora_family.sh sst2     # SST-2, LoRA r=8 alpha=16 on Wq, Wv, 4,000 steps x 16 (one epoch), lr 1e-3:
#                                 # plain, rsLoRA, LoRA+ (ratio 16), DoRA, PiSSA, OLoRA; SEEDS (default 1)
#   tools/lora_family.sh table    # the NLU table and curves from docs/results/glue.json (tools/nlu_table.sh table)
# Rows go to docs/results/glue.json under keys that name the variant. A finished row (its log ends with the
# summary table) is skipped, so a rerun continues where an interrupted one stopped. It runs a copy of the
# binaries (out/family-bin), which a rebuild of build/ cannot change mid-run. Environment: SEEDS, VARIANTS.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=data/assets/gpt-e2e-base/gpt-e2e-base.safetensors
[ -f "$BASE" ] || tools/restore_base.sh gpt-e2e-base
SEEDS=${SEEDS:-1}
VARIANTS=${VARIANTS:-"lora rslora loraplus dora pissa olora"}
declare -A FLAGS=([lora]="" [rslora]="--use-rslora" [loraplus]="--loraplus-lr-ratio 16" [dora]="--use-dora"
                  [pissa]="--init-lora-weights pissa" [olora]="--init-lora-weights olora")
BIN=out/family-bin
stage=${1:?usage: tools/lora_family.sh sst2|table}
case "$stage" in
  sst2)
    if [ ! -x $BIN/finetune_glue ]; then
      tools/setup.sh build finetune_glue results_table
      mkdir -p $BIN && cp build/finetune_glue build/results_table $BIN/
    fi
    mkdir -p out/family
    for s in $SEEDS; do
      for v in $VARIANTS; do
        [ -n "${FLAGS[$v]+x}" ] || { echo "tools/lora_family.sh: unknown variant '$v'" >&2; exit 2; }
        log=out/family/sst2-$v-seed$s.log
        if [ -f "$log" ] && grep -q '^mean ± std' "$log"; then echo "skip $log (done)"; continue; fi
        echo "sst2 $v seed $s -> $log"
        $BIN/finetune_glue --task sst2 --init $BASE --method lora --targets q,v --lr 1e-3 --steps 4000 \
          --eval-every 250 --seeds "$s" --threads 1 ${FLAGS[$v]} --results docs/results/glue.json > "$log" 2>&1
      done
    done
    ;;
  table) tools/nlu_table.sh table ;;
  *) echo "tools/lora_family.sh: unknown stage '$stage' (sst2 or table)" >&2; exit 2 ;;
esac
