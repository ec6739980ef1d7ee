#!/usr/bin/env bash
# The control for the E2E headline: does LoRA match FT on gpt-e2e-base5 only because its last stage was
# built from E2E's own references? Builds gpt-e2e-control (tools/make_base.sh control: stage 5's objective
# and token count from general text only), scores it zero-shot on the 630 test MRs, then trains LoRA and FT
# at the headline recipe (one epoch, 3 seeds), one run at a time so that the other core stays free:
#   tools/e2e_control.sh          # about 6 hours on one core; rerun after an interruption to resume
#   tools/e2e_control.sh table    # the tables and docs/results/e2e_bases.svg from docs/results/e2e.json
# Every stage checkpoints and skips what is finished, so a rerun continues where the last one stopped.
# It runs a copy of the binaries (out/control-bin), which a rebuild of build/ cannot change mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=data/assets/gpt-e2e-control/gpt-e2e-control.safetensors
if [ "${1:-runs}" = table ]; then  # the full E2E table, and the bars of every base (zero-shot, LoRA, FT)
  [ -x build/results_table ] || tools/setup.sh build results_table
  ./build/results_table --results docs/results/e2e.json --markdown REPRODUCTION.md --svg docs/results/e2e_curves.svg \
    --bases-svg docs/results/e2e_bases.svg
  exit 0
fi
BIN=out/control-bin
if [ ! -x $BIN/finetune_e2e ]; then
  tools/setup.sh build train_gpt finetune_e2e results_table
  mkdir -p $BIN && cp build/train_gpt build/finetune_e2e build/results_table $BIN/
fi
export BIN
tools/make_base.sh control
BASE=$BASE tools/e2e_headline.sh zeroshot
BASE=$BASE JOBS=1 METHODS="lora ft" SEEDS="1 2 3" tools/e2e_headline.sh runs
