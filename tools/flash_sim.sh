#!/usr/bin/env bash
# Runs the fused attention kernels' device code on the CPU, no GPU or nvcc needed (docs/cuda.md,
# "Host emulation"): copies cuda/flash_attention_{fwd,bwd,dkdv}.cu with each `extern __shared__`
# buffer and each `kernel<<<grid, threads, smem, stream>>>(args)` launch rewritten for the host shim
# tools/flash_sim/shim/cuda/common.cuh (a std::thread per CUDA thread), builds them with the harness
# tools/flash_sim/harness.cpp under AddressSanitizer and UBSan (SANITIZE=thread: ThreadSanitizer,
# which sees the shim's barriers, so a missing __syncthreads/__syncwarp shows as a data race), and runs it.
# Usage: tools/flash_sim.sh [WORKDIR]   (default: a temporary folder; CXX overrides g++)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
for f in fwd bwd dkdv; do
  sed -E -e 's/extern __shared__ float4 smem4\[\];/float4* smem4 = sim_smem();/' \
    -e 's/^( *)([A-Za-z_:]+(<[A-Za-z0-9_]+>)?)<<<(.*), (kThreads), ([A-Za-z0-9_]+), stream\(\)>>>\((.*)\);$/\1sim_launch(\4, \5, \6, [\&] { \2(\7); });/' \
    "cuda/flash_attention_$f.cu" >"$work/flash_attention_$f.cpp"
  n=$(grep -c '<<<\|extern __shared__' "$work/flash_attention_$f.cpp" || true)
  [ "$n" = 0 ] || { echo "flash_sim: $f: $n launches or shared buffers not rewritten" >&2; exit 1; }
done
nice "${CXX:-g++}" -std=c++17 -O1 -g -fsanitize="${SANITIZE:-address,undefined}" -fno-omit-frame-pointer -Wno-unknown-pragmas \
  -I tools/flash_sim/shim -I . tools/flash_sim/harness.cpp "$work"/flash_attention_{fwd,bwd,dkdv}.cpp -pthread \
  -o "$work/flash_sim"
"$work/flash_sim"
