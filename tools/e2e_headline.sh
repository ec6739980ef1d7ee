#!/usr/bin/env bash
# The E2E NLG table (the paper's Table 3 analog) on a committed domain-adapted base, in three stages:
#   tools/e2e_headline.sh sweep   # learning rate per method on the VALIDATION set: 300 steps per lr
#                                 # -> docs/results/e2e_lr_sweep.json (the lowest valid loss wins)
#   tools/e2e_headline.sh runs    # one epoch of all 42,061 training examples (5,257 steps of 8) per
#                                 # method and seed, all 630 test MRs -> docs/results/e2e.json and
#                                 # docs/results/e2e_outputs/BASE-METHOD-seedS.txt.xz (stored compressed)
#   tools/e2e_headline.sh zeroshot # BASE before any fine-tuning: its texts for all 630 test MRs, scored
#   tools/e2e_headline.sh table   # REPRODUCTION.md's tables (all runs; BASE's runs alone, the headline) and
#                                 # docs/results/e2e_curves.svg, e2e_headline_curves.svg from the JSON
# The recipe is the paper's (Table 11): AdamW, batch 8, linear warmup + decay, weight decay 0.01, label
# smoothing 0.1, dropout 0.1; LoRA r=4 on Wq, Wv, alpha 32; beam 10, length penalty 0.9, no-repeat 4-grams.
# JOBS runs at a time (default 2), one thread each (the machine has 2 cores); each run logs to out/e2e-sweep/ or
# out/e2e-runs/. A run checkpoints every 500 steps (out/e2e-runs/*.ckpt): rerunning the stage after an interruption
# resumes each unfinished run exactly and skips the finished ones (their outputs file exists). BIN=DIR runs the
# binaries of DIR (a copy that a rebuild of build/ cannot change mid-run). METHODS / SEEDS / LRS select a subset,
# BASE the base (default gpt-e2e-base5, the headline base; the key of a run names its base unless it is gpt-e2e-base):
#   METHODS="lora" SEEDS="2 3" tools/e2e_headline.sh runs
#   tools/restore_base.sh gpt-e2e-base && BASE=data/assets/gpt-e2e-base/gpt-e2e-base.safetensors tools/e2e_headline.sh runs
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors}
TAG=$(basename "$BASE" .safetensors)
RES=docs/results
# Chosen by the sweep (docs/results/e2e_lr_sweep.json; REPRODUCTION.md states the figures).
# lora, ft: swept on gpt-e2e-base (lora again on gpt-e2e-base4: 1e-3 .. 5e-3 within 0.003); bitfit, prefix-embed on
# gpt-e2e-base5 (prefix-embed: 1e-3 .. 1e-1 within 0.01); the others on gpt-e2e-base4.
declare -A LR=([lora]=2e-3 [ft]=2e-3 [ft-top2]=2e-3 [adapter-l]=1e-2 [adapter-h]=5e-3 [prefix-layer]=5e-4
             [bitfit]=3e-2 [prefix-embed]=1e-1)
declare -A SWEEP=([lora]="5e-4 1e-3 2e-3 5e-3" [ft]="2e-4 5e-4 1e-3 2e-3" [ft-top2]="5e-4 1e-3 2e-3 5e-3"
                  [adapter-l]="1e-3 2e-3 5e-3 1e-2" [adapter-h]="1e-3 2e-3 5e-3 1e-2"
                  [prefix-layer]="3e-4 5e-4 1e-3 3e-3 1e-2" [bitfit]="1e-3 3e-3 1e-2 3e-2 1e-1"
                  [prefix-embed]="1e-3 3e-3 1e-2 3e-2 1e-1")
METHODS=${METHODS:-"ft lora"}
SEEDS=${SEEDS:-"1 2 3"}
BIN=${BIN:-build}
JOBS=${JOBS:-2}
[ -x "$BIN/finetune_e2e" ] && [ -x "$BIN/results_table" ] || tools/setup.sh build finetune_e2e results_table
mkdir -p "$RES/e2e_outputs" out/e2e-sweep out/e2e-runs

stage=${1:?usage: tools/e2e_headline.sh sweep|runs|zeroshot|table}
case "$stage" in
  sweep)
    for m in $METHODS; do
      for lr in ${LRS:-${SWEEP[$m]}}; do
        echo "$BIN/finetune_e2e --init $BASE --method $m --lr $lr --steps 300 --test-mrs 1 --beam 1 --show 0" \
             "--threads 1 --outputs out/e2e-sweep/$m-$lr.txt --results $RES/e2e_lr_sweep.json > out/e2e-sweep/$m-$lr.log 2>&1"
      done
    done | xargs -P "$JOBS" -I{} sh -c '{}'
    "$BIN"/results_table --results "$RES/e2e_lr_sweep.json"
    ;;
  runs)
    for s in $SEEDS; do
      for m in $METHODS; do
        run=$TAG-$m-seed$s
        # finished: its row is in e2e.json (the demo's --compare file stays plain text)
        [ -f "$RES/e2e_outputs/$run.txt.xz" ] || [ -f "$RES/e2e_outputs/$run.txt" ] && continue
        ck=out/e2e-runs/$run.ckpt
        echo "$BIN/finetune_e2e --init $BASE --method $m --lr ${LR[$m]} --steps 0 --epochs 1 --eval-every 500" \
             "--test-mrs 0 --seed $s --threads 1 --show 0 --checkpoint $ck --save-every 500" \
             "$([ -f "$ck" ] && echo "--resume $ck") --outputs $RES/e2e_outputs/$run.txt" \
             "--results $RES/e2e.json >> out/e2e-runs/$run.log 2>&1 && xz -9f $RES/e2e_outputs/$run.txt"
      done
    done | xargs -P "$JOBS" -I{} sh -c '{}'
    "$BIN"/results_table --results "$RES/e2e.json"
    ;;
  zeroshot)
    run=$TAG-zeroshot
    if [ ! -f "$RES/e2e_outputs/$run.txt.xz" ]; then
      "$BIN"/finetune_e2e --init "$BASE" --steps 0 --epochs 0 --test-mrs 0 --threads 1 --show 0 \
        --outputs "$RES/e2e_outputs/$run.txt" --results "$RES/e2e.json" > "out/e2e-runs/$run.log" 2>&1
      xz -9f "$RES/e2e_outputs/$run.txt"
    fi
    ;;
  table)
    ./build/results_table --results "$RES/e2e.json" --markdown REPRODUCTION.md --svg "$RES/e2e_curves.svg"
    ./build/results_table --results "$RES/e2e.json" --match "base=$TAG " --section e2e_headline \
      --markdown REPRODUCTION.md --svg "$RES/e2e_headline_curves.svg"
    ./build/results_table --results "$RES/e2e_lr_sweep.json" --markdown REPRODUCTION.md
    ;;
  *) echo "tools/e2e_headline.sh: unknown stage '$stage' (sweep, runs, zeroshot or table)" >&2; exit 2 ;;
esac
