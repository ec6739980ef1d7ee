#!/usr/bin/env bash
# Regenerates the committed base models. Each stage starts from the one before:
#   tools/make_base.sh        # stage 1 -> data/assets/gpt-e2e-base (in git history): the domain-adaptive
#                             # pretraining corpus (tools/make_corpus.sh: general text + the unlabeled text
#                             # of the tasks' training splits), train_gpt from scratch (6 layers, C=192,
#                             # 6 heads, GPT-2 BPE, T=128), 1,400 steps, 2 threads. About 45 minutes.
#   tools/make_base.sh base2  # stage 2 -> out/base/gpt-e2e-base2.safetensors (not committed): stage 1
#                             # continued for 600 steps on the same corpus with E2E's references grouped
#                             # four per MR (E2E_GROUP=4; the MR is never written), one thread. 21 minutes.
#   tools/make_base.sh base3  # stage 3 -> data/assets/gpt-e2e-base3 (in git history, not in the tree):
#                             # stage 2 continued for 600 steps on E2E's grouped references alone
#                             # (SOURCES=e2e: task-adaptive pretraining), one thread. 22 minutes.
#   tools/make_base.sh base4  # stage 4 -> data/assets/gpt-e2e-base4 (in git history, not in the tree):
#                             # gpt-e2e-base3 continued on the same references joined by <|endoftext|>
#                             # inside a group (E2E_SEP=eot), 600 steps (4a), 1,200 more (4b), 2,400
#                             # more, one thread. 9 + 17 + 34 minutes on the 2-core AVX-512 Xeon.
#   tools/make_base.sh base5  # stage 5 -> data/assets/gpt-e2e-base5 (committed, the E2E headline base):
#                             # gpt-e2e-base4 continued for 900 steps on the same groups, each preceded by
#                             # the content phrases of its first reference with its names swapped for other
#                             # names of the corpus (COPY_MODE=swapkeys: keywords-to-text with entity swaps,
#                             # built from the references alone), one thread. 16 minutes on the AMD EPYC.
#   tools/make_base.sh control # -> data/assets/gpt-e2e-control (in git history, not in the tree): the control
#                             # for stage 5. Stage 1 continued for 900 steps (stage 5's 921,600 tokens) on
#                             # stage 5's keywords-to-text objective with swapped names, built from general
#                             # text only (TinyShakespeare, WikiText-2, the SST-2/MRPC/RTE training
#                             # sentences): no E2E reference enters this stage, one thread.
#   tools/make_base.sh glue   # -> out/base/gpt-glue-base.safetensors (not committed): stage 1 continued for
#                             # 1,500 steps (GLUE_STEPS) on the unlabeled training sentences of SST-2, MRPC
#                             # and RTE alone (task-adaptive pretraining for the NLU table), one thread. 36 min.
# Checkpoints every 100 steps in out/base/: rerunning after an interruption resumes where it stopped and
# gives the same file (train_gpt's resume is exact for the same build and thread count). The figures and
# sha256 of each committed file are in its README. Stages base, base3 and base4 are first restored byte
# for byte from git history (tools/restore_base.sh: only gpt-e2e-base5 stays in the tree, so that it
# travels to a GPU machine) and trained only where the clone lacks that history.
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=DIR runs the binaries of DIR (e.g. a copy that a rebuild of build/ cannot change mid-run).
BIN=${BIN:-build}
[ "$BIN" != build ] || tools/setup.sh build train_gpt
mkdir -p out/base
stage=${1:-base}
# restored NAME: the base NAME back from git history, when the clone has it (quietly false otherwise).
restored() { tools/restore_base.sh "$1" 2>/dev/null; }
resume() { [ -f "$1" ] && echo "--resume $1" || true; }
continued() {  # FROM CORPUS NAME OUT [STEPS]: continued pretraining (600 steps) at lr 1e-3, one thread
  local ck=out/base/$3.ckpt.safetensors
  # shellcheck disable=SC2046
  "$BIN"/train_gpt --init "$1" --data "$2" --block-size 128 --batch-size 8 --steps "${5:-600}" --lr 1e-3 --warmup 20 \
    --eval-every 100 --threads 1 --save "$ck" --save-every 100 --export "$4" --json "out/base/$3.json" $(resume "$ck")
  sha256sum "$4"
}
case "$stage" in
  base)
    restored gpt-e2e-base && exit 0
    tools/make_corpus.sh build out/corpus/pretrain.txt
    CKPT=out/base/gpt-e2e-base.safetensors
    # shellcheck disable=SC2046
    "$BIN"/train_gpt --data out/corpus/pretrain.txt --model mini --n-layer 6 --n-head 6 --block-size 128 \
      --batch-size 8 --steps 1400 --lr 2e-3 --warmup 50 --eval-every 200 --eval-batches 20 \
      --save "$CKPT" --save-every 100 --export data/assets/gpt-e2e-base/gpt-e2e-base.safetensors \
      --json out/base/train_gpt.json $(resume "$CKPT")
    sha256sum data/assets/gpt-e2e-base/gpt-e2e-base.safetensors
    ;;
  base2)
    E2E_GROUP=4 tools/make_corpus.sh build out/corpus/group4.txt
    [ -f data/assets/gpt-e2e-base/gpt-e2e-base.safetensors ] || "$0" base
    continued data/assets/gpt-e2e-base/gpt-e2e-base.safetensors out/corpus/group4.txt gpt-e2e-base2 \
      out/base/gpt-e2e-base2.safetensors
    ;;
  base3)
    restored gpt-e2e-base3 && exit 0
    [ -f out/base/gpt-e2e-base2.safetensors ] || "$0" base2
    E2E_GROUP=4 SOURCES=e2e tools/make_corpus.sh build out/corpus/e2e-group4.txt
    continued out/base/gpt-e2e-base2.safetensors out/corpus/e2e-group4.txt gpt-e2e-base3 \
      data/assets/gpt-e2e-base3/gpt-e2e-base3.safetensors
    ;;
  base4)
    restored gpt-e2e-base4 && exit 0
    [ -f data/assets/gpt-e2e-base3/gpt-e2e-base3.safetensors ] || "$0" base3
    E2E_GROUP=4 E2E_SEP=eot SOURCES=e2e tools/make_corpus.sh build out/corpus/e2e-group4-eot.txt
    continued data/assets/gpt-e2e-base3/gpt-e2e-base3.safetensors out/corpus/e2e-group4-eot.txt gpt-e2e-base4a \
      out/base/gpt-e2e-base4a.safetensors
    continued out/base/gpt-e2e-base4a.safetensors out/corpus/e2e-group4-eot.txt gpt-e2e-base4b \
      out/base/gpt-e2e-base4b.safetensors 1200
    continued out/base/gpt-e2e-base4b.safetensors out/corpus/e2e-group4-eot.txt gpt-e2e-base4 \
      data/assets/gpt-e2e-base4/gpt-e2e-base4.safetensors 2400
    ;;
  base5)
    [ -f data/assets/gpt-e2e-base4/gpt-e2e-base4.safetensors ] || "$0" base4
    E2E_GROUP=4 E2E_SEP=eot SOURCES=e2e COPY_MODE=swapkeys COPY_FRAC=1 tools/make_corpus.sh build \
      out/corpus/e2e-group4-swapkeys.txt
    continued data/assets/gpt-e2e-base4/gpt-e2e-base4.safetensors out/corpus/e2e-group4-swapkeys.txt gpt-e2e-base5 \
      data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors 900
    ;;
  control)
    # Does LoRA ~ FT on gpt-e2e-base5 need a stage built from E2E's own references? The same objective and
    # token count from general text answers it (REPRODUCTION.md, "The control base").
    restored gpt-e2e-control && exit 0
    [ -f data/assets/gpt-e2e-base/gpt-e2e-base.safetensors ] || "$0" base
    SOURCES="sst2 mrpc rte general" COPY_MODE=swapkeys COPY_FRAC=1 tools/make_corpus.sh build \
      out/corpus/general-swapkeys.txt
    mkdir -p data/assets/gpt-e2e-control
    continued data/assets/gpt-e2e-base/gpt-e2e-base.safetensors out/corpus/general-swapkeys.txt gpt-e2e-control \
      data/assets/gpt-e2e-control/gpt-e2e-control.safetensors 900
    ;;
  glue)
    # Task-adaptive pretraining for the NLU table: stage 1 continued on the unlabeled training sentences of
    # SST-2, MRPC and RTE alone (never a label, dev or test sentence), one thread.
    [ -f data/assets/gpt-e2e-base/gpt-e2e-base.safetensors ] || "$0" base
    SOURCES="sst2 mrpc rte" tools/make_corpus.sh build out/corpus/glue-tapt.txt
    continued data/assets/gpt-e2e-base/gpt-e2e-base.safetensors out/corpus/glue-tapt.txt gpt-glue-base \
      out/base/gpt-glue-base.safetensors "${GLUE_STEPS:-1500}"
    ;;
  *) echo "tools/make_base.sh: unknown stage '$stage' (base, base2, base3, base4, base5, control or glue)" >&2; exit 2 ;;
esac
