#!/usr/bin/env bash
# A bounded loopback load test of serve: 4 adapters (r = 4 on Wq, Wv, random as after training) on the
# committed E2E base, CLIENTS concurrent clients x REQUESTS completions each (default 8 x 200), spread
# over the adapters, prompts from E2E's validation MRs; p50/p99 latency, throughput, failed requests.
#   tools/bench_serve.sh [docs/results/serve_load.json]
# The server decodes with THREADS threads (default 2); nothing else should run beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/results/serve_load.json}
BASE=data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors
DIR=out/bench-serve
[ -x build/serve ] && [ -x build/bench_serve ] || tools/setup.sh build serve bench_serve
mkdir -p "$DIR"
./build/bench_serve --make-adapters "$DIR" --init "$BASE" --count 4
sed -E 's/ *\|\|.*$//' build/assets/e2e/lora_format/valid.txt | sort -u | sed 's/$/<|endoftext|>/' > "$DIR/prompts.txt"
adapters=()
for i in 0 1 2 3; do adapters+=(--adapter "a$i=$DIR/a$i.safetensors"); done
./build/serve --init "$BASE" "${adapters[@]}" --port 0 --threads "${THREADS:-2}" --max-batch 16 > "$DIR/serve.out" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$DIR/serve.out" && break; sleep 0.2; done
port=$(sed -nE 's|.*listening on http://[^:]+:([0-9]+).*|\1|p' "$DIR/serve.out")
[ -n "$port" ] || { echo "bench_serve.sh: serve did not start" >&2; exit 1; }
./build/bench_serve --port "$port" --models a0,a1,a2,a3 --prompts "$DIR/prompts.txt" \
  --clients "${CLIENTS:-8}" --requests "${REQUESTS:-200}" --max-tokens 16 --json "$OUT"
