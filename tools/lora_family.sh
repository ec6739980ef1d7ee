#!/usr/bin/env bash
# The LoRA family beside plain LoRA, one run at a time so that the other core stays free:
#   tools/lora_family.sh sst2       # SST-2, LoRA r=8 alpha=16 on Wq, Wv, 4,000 steps x 16 (one epoch), lr 1e-3:
#                                   # plain, rsLoRA, LoRA+ (ratio 16), DoRA, PiSSA, OLoRA
#   tools/lora_family.sh e2e-sweep  # E2E on gpt-e2e-base5, the headline recipe (r=4 on Wq, Wv, alpha 32): each
#                                   # variant's lr on the VALIDATION set, 4 lrs x 1,500 steps (a whole schedule,
#                                   # warmup and decay, over 29% of an epoch: on this base the valid loss first rises
#                                   # above zero-shot's, so e2e_headline.sh's 300 steps would pick the slowest lr)
#                                   # -> docs/results/e2e_lr_sweep.json (the lowest valid loss wins)
#   tools/lora_family.sh e2e        # one epoch per variant and seed at the lr the sweep chose, all 630 test MRs
#                                   # -> docs/results/e2e.json, docs/results/e2e_outputs/gpt-e2e-base5-VARIANT-seedS.txt.xz
#                                   # (VARIANTS=bf16: the headline LoRA run with --precision bf16, at its lr 2e-3)
#   tools/lora_family.sh table      # REPRODUCTION.md's family tables (SST-2, E2E, the E2E sweep) from docs/results/
# Rows go to docs/results/ under keys that name the variant. A finished run (an SST-2 log ending with the summary
# table, an E2E outputs file) is skipped, so a rerun continues where an interrupted one stopped; E2E runs also
# checkpoint every 500 steps and resume. It runs a copy of the binaries (out/family-bin), which a rebuild of
# build/ cannot change mid-run. Environment: SEEDS (default 1), VARIANTS, LRS (replaces e2e-sweep's grids).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1}
stage=${1:?usage: tools/lora_family.sh sst2|e2e-sweep|e2e|table}
# On E2E, plain LoRA's one-epoch rows are the headline's (tools/e2e_headline.sh, lr 2e-3 on the same base and
# recipe); the sweep runs it too, as the reference for what the sweep picks.
if [ "$stage" = e2e ]; then VARIANTS=${VARIANTS:-"rslora loraplus dora pissa olora"}
else VARIANTS=${VARIANTS:-"lora rslora loraplus dora pissa olora"}; fi
declare -A FLAGS=([lora]="" [rslora]="--use-rslora" [loraplus]="--loraplus-lr-ratio 16" [dora]="--use-dora"
                  [pissa]="--init-lora-weights pissa" [olora]="--init-lora-weights olora"
                  [bf16]="--precision bf16")
# The E2E sweep's grid: around the headline LoRA's 2e-3; lower for LoRA+ (B already learns at 16x) and for
# PiSSA/OLoRA (A, B start at W0's scale, not at zero).
declare -A GRID=([lora]="5e-4 1e-3 2e-3 5e-3" [rslora]="5e-4 1e-3 2e-3 5e-3" [dora]="5e-4 1e-3 2e-3 5e-3"
                 [loraplus]="1e-4 2e-4 5e-4 1e-3" [pissa]="2e-4 5e-4 1e-3 2e-3" [olora]="2e-4 5e-4 1e-3 2e-3")
BIN=out/family-bin
E2E_BASE=data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors
RES=docs/results
SWEEP_STEPS=1500

for v in $VARIANTS; do
  [ -n "${FLAGS[$v]+x}" ] || { echo "tools/lora_family.sh: unknown variant '$v'" >&2; exit 2; }
done
if [ "$stage" != table ] && { [ ! -x $BIN/finetune_e2e ] || [ ! -x $BIN/finetune_glue ]; }; then
  tools/setup.sh build finetune_glue finetune_e2e results_table
  mkdir -p $BIN && cp build/finetune_glue build/finetune_e2e build/results_table $BIN/
fi
mkdir -p out/family "$RES/e2e_outputs"

# The lr of variant $1 with the lowest valid loss over its sweep runs on the E2E base.
chosen_lr() {
  python3 - "$RES/e2e_lr_sweep.json" "$1" "$E2E_BASE" "$SWEEP_STEPS" <<'PY'
import json, sys
path, variant, base, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def name(r):  # the variant a sweep row belongs to, from the flags its results key records
    for flag, v in (("rslora", "rslora"), ("loraplus=", "loraplus"), ("dora", "dora"), ("pissa", "pissa"), ("olora", "olora")):
        if f" {flag}" in r["key"]:
            return v
    return "lora"
rows = [r for r in json.load(open(path))["runs"]
        if r["method"] == "lora" and r["init"] == base and r["steps"] == steps and name(r) == variant]
if not rows:
    sys.exit(f"tools/lora_family.sh: no {steps}-step sweep rows of {variant} on {base}; run the e2e-sweep stage first")
print(f"{min(rows, key=lambda r: r['valid_loss'])['lr']:g}")
PY
}

case "$stage" in
  sst2)
    BASE=data/assets/gpt-e2e-base/gpt-e2e-base.safetensors
    [ -f "$BASE" ] || tools/restore_base.sh gpt-e2e-base
    for s in $SEEDS; do
      for v in $VARIANTS; do
        [ "$v" != bf16 ] || { echo "tools/lora_family.sh: bf16 is an E2E row only (finetune_glue is fp32)" >&2; exit 2; }
        log=out/family/sst2-$v-seed$s.log
        if [ -f "$log" ] && grep -q '^mean ± std' "$log"; then echo "skip $log (done)"; continue; fi
        echo "sst2 $v seed $s -> $log"
        $BIN/finetune_glue --task sst2 --init $BASE --method lora --targets q,v --lr 1e-3 --steps 4000 \
          --eval-every 250 --seeds "$s" --threads 1 ${FLAGS[$v]} --results $RES/glue.json > "$log" 2>&1
      done
    done
    ;;
  e2e-sweep)
    [ -f "$E2E_BASE" ] || tools/restore_base.sh gpt-e2e-base5
    for v in $VARIANTS; do
      for lr in ${LRS:-${GRID[$v]}}; do
        out=out/family/e2e-sweep-$v-$lr-s$SWEEP_STEPS
        [ -f "$out.txt" ] && { echo "skip $out (done)"; continue; }
        echo "e2e sweep $v lr $lr -> $out.log"
        $BIN/finetune_e2e --init $E2E_BASE --method lora ${FLAGS[$v]} --lr "$lr" --steps $SWEEP_STEPS --test-mrs 1 --beam 1 \
          --show 0 --threads 1 --outputs "$out.txt" --results $RES/e2e_lr_sweep.json > "$out.log" 2>&1
      done
    done
    ;;
  e2e)
    [ -f "$E2E_BASE" ] || tools/restore_base.sh gpt-e2e-base5
    for s in $SEEDS; do
      for v in $VARIANTS; do
        run=gpt-e2e-base5-$v-seed$s ck=out/family/e2e-$v-seed$s.ckpt
        [ -f "$RES/e2e_outputs/$run.txt.xz" ] && { echo "skip $run (done)"; continue; }
        if [ "$v" = bf16 ]; then lr=2e-3; else lr=$(chosen_lr "$v"); fi
        echo "e2e $v seed $s lr $lr -> out/family/e2e-$v-seed$s.log"
        $BIN/finetune_e2e --init $E2E_BASE --method lora ${FLAGS[$v]} --lr "$lr" --steps 0 --epochs 1 \
          --eval-every 500 --test-mrs 0 --seed "$s" --threads 1 --show 0 --checkpoint "$ck" --save-every 500 \
          $([ -f "$ck" ] && echo "--resume $ck") --outputs "$RES/e2e_outputs/$run.txt" --results $RES/e2e.json \
          >> "out/family/e2e-$v-seed$s.log" 2>&1
        xz -9f "$RES/e2e_outputs/$run.txt"  # stored compressed: the tree has to travel (tools/check_tree_size.sh)
      done
    done
    ;;
  table)
    [ -x build/results_table ] || tools/setup.sh build results_table
    ./build/results_table --results $RES/glue.json --match "base=gpt-e2e-base B=16 steps=4000" \
      --section lora_family_sst2 --markdown REPRODUCTION.md
    ./build/results_table --results $RES/e2e.json --match "lora r=4 alpha=32 targets=q,v *base=gpt-e2e-base5 *steps=5257 mrs=0" \
      --section lora_family_e2e --markdown REPRODUCTION.md --svg $RES/lora_family_e2e_curves.svg
    ./build/results_table --results $RES/e2e_lr_sweep.json --match "lora r=4 alpha=32 targets=q,v *base=gpt-e2e-base5 *steps=$SWEEP_STEPS " \
      --section lora_family_e2e_sweep --markdown REPRODUCTION.md
    ;;
  *) echo "tools/lora_family.sh: unknown stage '$stage' (sst2, e2e-sweep, e2e or table)" >&2; exit 2 ;;
esac
