#!/usr/bin/env bash
# Regenerates the committed base model data/assets/gpt-e2e-base/gpt-e2e-base.safetensors: the domain-
# adaptive pretraining corpus (tools/make_corpus.sh: general text + the unlabeled text of the tasks'
# training splits), then train_gpt from scratch (6 layers, C=192, 6 heads, GPT-2 BPE, T=128), exported as
# bfloat16. Checkpoints every 100 steps in out/base/: rerunning after an interruption resumes where it
# stopped and gives the same file (train_gpt's resume is exact for the same build and thread count).
# Takes about 45 minutes on 2 cores (AVX2). See data/assets/gpt-e2e-base/README.md for the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build train_gpt
tools/make_corpus.sh build out/corpus/pretrain.txt
mkdir -p out/base
CKPT=out/base/gpt-e2e-base.safetensors
RESUME=()
[ -f "$CKPT" ] && RESUME=(--resume "$CKPT")
./build/train_gpt --data out/corpus/pretrain.txt --model mini --n-layer 6 --n-head 6 --block-size 128 \
  --batch-size 8 --steps 1400 --lr 2e-3 --warmup 50 --eval-every 200 --eval-batches 20 \
  --save "$CKPT" --save-every 100 --export data/assets/gpt-e2e-base/gpt-e2e-base.safetensors \
  --json out/base/train_gpt.json "${RESUME[@]}"
sha256sum data/assets/gpt-e2e-base/gpt-e2e-base.safetensors
