#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job: pretrain a small GPT on
# TinyShakespeare with GPT-2 BPE tokens, report val loss against the unigram baseline, sample text.
# Extra arguments go to train_gpt (e.g. --steps 200 for a quicker look).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
mkdir -p out
./build/train_gpt --save out/gpt-mini.safetensors --sample 120 --json out/train_gpt.json "$@"
echo "checkpoint: out/gpt-mini.safetensors   metrics: out/train_gpt.json"
