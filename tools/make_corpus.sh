#!/usr/bin/env bash
# Writes the domain-adaptive pretraining corpus (Gururangan et al., 2020, "Don't Stop Pretraining"):
# general text plus the UNLABELED text of the downstream tasks' TRAINING splits, never dev or test:
#   - E2E NLG train references, without their MRs (the MR -> text pairing is what fine-tuning learns);
#   - GLUE SST-2 train sentences, MRPC train sentence pairs, RTE train premise/hypothesis, all without labels;
#   - TinyShakespeare and the WikiText-2 files the repository carries (general text; WikiText is no task
#     we evaluate on).
# Each document ends with <|endoftext|> (GPT-2 BPE id 50256, the separator and end id of the E2E format,
# data/e2e.h), and an E2E reference is written as " " + ref, exactly the completion's encoding.
# Documents of all sources are interleaved by their relative position in their source (document i of n
# sits at i/n), so that train_gpt's last-10% validation split holds the last tenth of every source.
# Deterministic: awk + a stable numeric sort under LC_ALL=C, no randomness.
#
# COPY_FRAC=F (default 0: the committed base's corpus) and COPY_MODE=spans|repeat|keys turn a fraction F of
# the documents into copy-from-context examples (tools/copy_augment.awk): "spans" precedes a short document
# (4-60 words) with a shuffled list of its own word spans, "repeat" writes it twice, "keys" precedes it with
# the shuffled content phrases of its first text (keywords-to-text denoising, built from the text alone);
# experiments on whether a base that attends across <|endoftext|> adapts better with LoRA (REPRODUCTION.md,
# E2E probes).
#
# E2E_GROUP=G (default 0: one reference per document, the committed base's corpus) writes the references
# of one MR as documents of up to G references each (" ref1 ref2 ..."): different people describing the
# same restaurant, so later sentences repeat the values named earlier in the context, the in-context
# repetition that web text has and this corpus otherwise lacks. The MR only groups; it is never written.
# E2E_SEP=eot (default "space") joins the references of a group with <|endoftext|> instead of a space
# (" ref1<|endoftext|> ref2 ..."): the base then practises "the text after <|endoftext|> repeats the values
# before it", the shape of E2E's "MR<|endoftext|> ref" examples, where with spaces it learns that nothing
# crosses an <|endoftext|> (every document boundary it saw started a new subject).
#
# SOURCES="e2e" (default "e2e sst2 mrpc rte general") keeps only the listed sources: E2E alone is
# task-adaptive pretraining (Gururangan et al., 2020, Section 5: the task's own unlabeled training text).
#
# Usage: tools/make_corpus.sh BUILD_DIR OUT_FILE   (BUILD_DIR holds the extracted assets/ of a build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:?usage: tools/make_corpus.sh BUILD_DIR OUT_FILE}
OUT=${2:?usage: tools/make_corpus.sh BUILD_DIR OUT_FILE}
E2E=$BUILD/assets/e2e/lora_format/train.txt
GLUE=$BUILD/assets/glue
for f in "$E2E" "$GLUE/sst2/train.tsv" "$GLUE/mrpc/train.tsv" "$GLUE/rte/train.tsv"; do
  [ -f "$f" ] || { echo "make_corpus: $f missing (build first: tools/setup.sh $BUILD)" >&2; exit 1; }
done
export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One document per line, newlines inside a document written as \001; then "position<TAB>doc".
COPY_MODE=${COPY_MODE:-spans} COPY_FRAC=${COPY_FRAC:-0}
aug() { awk -v mode="$COPY_MODE" -v frac="$COPY_FRAC" -v seed="$1" -f tools/copy_augment.awk; }
place() { awk -v OFS='\t' '{ d[NR] = $0 } END { for (i = 1; i <= NR; i++) printf "%.9f\t%s\n", (i - 1) / NR, d[i] }'; }

# E2E: "MR||ref " -> " ref" (loralib strips the line; the completion is " " + ref)
case ${E2E_SEP:-space} in
  space) sep="" ;; eot) sep="<|endoftext|>" ;;
  *) echo "make_corpus: E2E_SEP is space or eot, not '$E2E_SEP'" >&2; exit 2 ;;
esac
awk -F '\\|\\|' -v g="${E2E_GROUP:-0}" -v sep="$sep" '
  NF == 2 { r = $2; sub(/[ \t\r]+$/, "", r); r = " " r
            if (g <= 0) { print r; next }
            if (!($1 in id)) id[$1] = ++n
            i = id[$1]; doc[i] = doc[i] (cnt[i] > 0 ? sep : "") r
            if (++cnt[i] == g) { print doc[i]; doc[i] = ""; cnt[i] = 0 } }
  END     { for (i = 1; i <= n; i++) if (cnt[i] > 0) print doc[i] }' "$E2E" | aug 1 | place > "$tmp/e2e"
# SST-2: sentence<TAB>label (header dropped)
awk -F '\t' 'NR > 1 { s = $1; sub(/[ \t\r]+$/, "", s); print s }' "$GLUE/sst2/train.tsv" | aug 2 | place > "$tmp/sst2"
# MRPC: Quality, id, id, sentence 1, sentence 2 (BOM header dropped); the pair as one document
awk -F '\t' 'NR > 1 { print $4 "\001" $5 }' "$GLUE/mrpc/train.tsv" | tr -d '\r' | aug 3 | place > "$tmp/mrpc"
# RTE: index, sentence1, sentence2, label
awk -F '\t' 'NR > 1 { print $2 "\001" $3 }' "$GLUE/rte/train.tsv" | tr -d '\r' | aug 4 | place > "$tmp/rte"
# General text: paragraphs (blank-line separated) of TinyShakespeare and WikiText-2
for f in data/assets/tinyshakespeare/input.txt data/assets/wikitext-2-partial/valid.txt \
         data/assets/wikitext-2-partial/test.txt; do
  awk 'BEGIN { RS = ""; ORS = "\n" } { gsub(/\n/, "\001"); print }' "$f"
done | aug 5 | place > "$tmp/general"

mkdir -p "$(dirname "$OUT")"
SOURCES=${SOURCES:-e2e sst2 mrpc rte general}
files=()
for s in $SOURCES; do
  [ -f "$tmp/$s" ] || { echo "make_corpus: unknown source '$s' in SOURCES (e2e sst2 mrpc rte general)" >&2; exit 2; }
  files+=("$tmp/$s")
done
sort -s -t "$(printf '\t')" -k1,1n "${files[@]}" |
  cut -f2- | awk '{ printf "%s<|endoftext|>", $0 }' | tr '\001' '\n' > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
for s in $SOURCES; do printf '%-8s %7d documents\n' "$s" "$(wc -l < "$tmp/$s")"; done
echo "wrote $OUT ($(wc -c < "$OUT") bytes, sha256 $(sha256sum "$OUT" | cut -c1-16)...)"
