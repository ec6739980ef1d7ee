#!/usr/bin/env bash
# The short E2E probes of REPRODUCTION.md ("Why LoRA lags: probes"): LoRA r=4 for 1,000 steps of 8 from
# gpt-e2e-base with one thing changed each, and from bases continued for a few hundred steps on a
# copy-augmented corpus (tools/make_corpus.sh COPY_MODE/COPY_FRAC, train_gpt --init). One thread per run,
# two at a time; logs and bases in out/probe/, rows in docs/results/e2e_probes.json (valid loss on the 400
# validation examples; BLEU of 20 test MRs decoded greedily, a rough check only).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=data/assets/gpt-e2e-base/gpt-e2e-base.safetensors
[ -f "$BASE" ] || tools/restore_base.sh gpt-e2e-base  # in git history, not in the tree
[ -x build/finetune_e2e ] && [ -x build/train_gpt ] || tools/setup.sh build finetune_e2e train_gpt
mkdir -p out/probe out/corpus
lora() {  # NAME BASE EXTRA-OPTIONS...
  local name=$1 base=$2; shift 2
  ./build/finetune_e2e --init "$base" --method lora --lr "${LR:-2e-3}" --steps 1000 --eval-every 250 --test-mrs 20 \
    --beam 1 --show 3 --threads 1 --outputs "out/probe/$name-out.txt" --results docs/results/e2e_probes.json \
    "$@" > "out/probe/$name-ft.log" 2>&1
}
pretrain() {  # NAME INIT STEPS [LR]: continued pretraining of INIT on out/corpus/NAME.txt -> out/probe/NAME.safetensors
  ./build/train_gpt --init "$2" --data "out/corpus/$1.txt" --block-size 128 --batch-size 8 --steps "$3" \
    --lr "${4:-1e-3}" --warmup 20 --eval-every 100 --threads 1 --export "out/probe/$1.safetensors" > "out/probe/$1-pre.log" 2>&1
}
copy_base() {  # NAME MODE FRAC STEPS [E2E_GROUP]: continued pretraining of the committed base on another corpus
  COPY_MODE=$2 COPY_FRAC=$3 E2E_GROUP=${5:-0} tools/make_corpus.sh build "out/corpus/$1.txt" > /dev/null
  pretrain "$1" "$BASE" "$4"
  lora "$1" "out/probe/$1.safetensors"
}
lora qv "$BASE" & lora ls0 "$BASE" --label-smoothing 0 & wait
lora all "$BASE" --targets q,k,v,o,mlp & copy_base spans spans 0.3 300 & wait
copy_base repeat repeat 0.3 300 & copy_base spans6 spans 0.6 600 & wait
# Control for the two above: 600 more steps on the plain corpus (COPY_FRAC=0), and rank 16 on Wq, Wv.
copy_base plain spans 0 600 & lora qv-r16 "$BASE" --rank 16 & wait
# Not the rank? Not the lr? Rank 64 on Wq, Wv (not the rank?), lr 1e-2 (not the lr?), and a base continued for 600 steps
# on the corpus whose E2E references are grouped four per MR (E2E_GROUP=4: in-context repetition).
lora qv-r64 "$BASE" --rank 64 --alpha 64 & LR=1e-2 lora qv-lr1e-2 "$BASE" & wait
copy_base group4 spans 0 600 4   # = stage 2 of gpt-e2e-base3 (tools/make_base.sh base2)
# Task-adaptive pretraining on top of it (= stage 3, gpt-e2e-base3): 600 more steps on the grouped E2E references alone.
E2E_GROUP=4 SOURCES=e2e tools/make_corpus.sh build out/corpus/tapt.txt > /dev/null
pretrain tapt out/probe/group4.safetensors 600
lora tapt out/probe/tapt.safetensors
# Longer task-adaptive pretraining of gpt-e2e-base3 (600 more steps), with the references of a group joined by
# spaces as before (s4-e2e-group4) or by <|endoftext|> (E2E_SEP=eot, s4-e2e-group4-eot = stage 4a of
# gpt-e2e-base4), then 1,200 more steps of the latter (s5-eot = stage 4b) and 2,400 more (s6-eot = gpt-e2e-base4).
BASE3=data/assets/gpt-e2e-base3/gpt-e2e-base3.safetensors   # in git history, not in the tree
[ -f "$BASE3" ] || tools/make_base.sh base3  # restores it from history when it can
E2E_GROUP=4 SOURCES=e2e tools/make_corpus.sh build out/corpus/s4-e2e-group4.txt > /dev/null
E2E_GROUP=4 E2E_SEP=eot SOURCES=e2e tools/make_corpus.sh build out/corpus/s4-e2e-group4-eot.txt > /dev/null
pretrain s4-e2e-group4 "$BASE3" 600 & pretrain s4-e2e-group4-eot "$BASE3" 600 & wait
lora s4-e2e-group4 out/probe/s4-e2e-group4.safetensors & lora s4-e2e-group4-eot out/probe/s4-e2e-group4-eot.safetensors & wait
cp out/corpus/s4-e2e-group4-eot.txt out/corpus/s5-eot.txt && pretrain s5-eot out/probe/s4-e2e-group4-eot.safetensors 1200
lora s5-eot out/probe/s5-eot.safetensors
cp out/corpus/s4-e2e-group4-eot.txt out/corpus/s6-eot.txt && pretrain s6-eot out/probe/s5-eot.safetensors 2400
lora s6-eot out/probe/s6-eot.safetensors
# Keywords-to-text from gpt-e2e-base4: each group preceded by the content phrases of its first reference
# (COPY_MODE=keys) on half the groups (600 steps, lr 3e-4) or all (900 steps, lr 1e-3), and the same with
# the names swapped for other names of the corpus (swapkeys: = gpt-e2e-base5, tools/make_base.sh base5).
BASE4=data/assets/gpt-e2e-base4/gpt-e2e-base4.safetensors
[ -f "$BASE4" ] || tools/restore_base.sh gpt-e2e-base4  # in git history, not in the tree
keys() {  # NAME MODE FRAC STEPS LR
  E2E_GROUP=4 E2E_SEP=eot SOURCES=e2e COPY_MODE=$2 COPY_FRAC=$3 tools/make_corpus.sh build "out/corpus/$1.txt" > /dev/null
  pretrain "$1" "$BASE4" "$4" "$5"
  lora "$1" "out/probe/$1.safetensors"
}
keys keys50 keys 0.5 600 3e-4 & keys keys100 keys 1 900 1e-3 & wait
keys swap100 swapkeys 1 900 1e-3
