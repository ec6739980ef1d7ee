#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job:
#   LoRA (r=4 on Wq, Wv, the paper's Table 3 setting) fine-tunes the committed domain-adapted base
#   (data/assets/gpt-e2e-base5: a 12.3M-parameter GPT pretrained here on general text plus the unlabeled
#   text of the tasks' training splits, then on E2E's references grouped per MR, then on those groups headed
#   by their keywords with the names swapped; never an MR) on E2E NLG, beam-searches
#   40 test MRs spread over the test set (every 16th: test.txt is sorted by restaurant, so its first 40 MRs
#   are one restaurant) and prints BLEU, NIST, METEOR, ROUGE-L and CIDEr beside the stored full fine-tuning
#   result on the same MRs (docs/results/e2e_outputs/gpt-e2e-base5-ft-seed1.txt, one epoch from the same
#   base, tools/e2e_headline.sh), the trainable-parameter
#   ratio, the optimizer-state bytes and three generated texts beside their MRs.
# Outputs land in out/: the LoRA adapter, the generated texts, the metrics as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
# A CPU-only build of the one binary the demo needs (nvcc, when present, would add minutes of CUDA compiling).
LOWRANK_CMAKE_ARGS="-DLOWRANK_CUDA=OFF ${LOWRANK_CMAKE_ARGS:-}" tools/setup.sh build-demo finetune_e2e
BASE=data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors
want=$(grep -m1 -oE 'sha256: [0-9a-f]{64}' data/assets/gpt-e2e-base5/README.md | cut -d' ' -f2)
have=$(sha256sum "$BASE" | cut -d' ' -f1)
[ "$want" = "$have" ] || { echo "run_demo: $BASE has sha256 $have, its README says $want" >&2; exit 1; }
mkdir -p out
./build-demo/finetune_e2e --init "$BASE" --method lora --rank 4 --alpha 32 --targets q,v \
  --lr "${DEMO_LR:-2e-3}" --steps "${DEMO_STEPS:-1200}" --warmup 60 --test-mrs "${DEMO_MRS:-40}" --test-stride 16 \
  --compare docs/results/e2e_outputs/gpt-e2e-base5-ft-seed1.txt \
  --save-adapter out/lora-e2e.safetensors --outputs out/e2e_outputs.txt --json out/finetune_e2e.json
echo "adapter: out/lora-e2e.safetensors  outputs: out/e2e_outputs.txt  metrics: out/finetune_e2e.json"
