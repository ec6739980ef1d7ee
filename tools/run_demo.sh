#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job:
#   1. pretrain the `mini` GPT on TinyShakespeare with GPT-2 BPE tokens (train_gpt defaults),
#   2. LoRA-fine-tune it on E2E NLG (r=4 on Wq, Wv, as in the paper's Table 3),
#   3. beam-search the first 100 test MRs and print BLEU, NIST, METEOR, ROUGE-L, CIDEr.
# Outputs land in out/: the base checkpoint, the LoRA adapter, generated texts, JSON metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
mkdir -p out
./build/train_gpt --save out/gpt-mini.safetensors --json out/train_gpt.json --sample 60
./build/finetune_e2e --init out/gpt-mini.safetensors --method lora --rank 4 --targets q,v --lr 2e-3 \
  --save-adapter out/lora-e2e.safetensors --outputs out/e2e_outputs.txt --json out/finetune_e2e.json
echo "base: out/gpt-mini.safetensors  adapter: out/lora-e2e.safetensors  outputs: out/e2e_outputs.txt"
