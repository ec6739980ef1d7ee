# The steps of tools/gpu_check.sh (sourced, not run). Each writes its own file in OUT, its JSON (if
# any) in TMP, and one summary row. Sizes depend on MODE: gpu (the real thing, ~7 min on an H200),
# emulation (tiny sizes on the host emulation: proves the script, measures nothing), none (skips).

# Every step but the build needs MODE gpu or emulation; "none" records the skip and returns 1.
gpu_or_skip() {
  [ "$MODE" != none ] && return 0
  echo "skipped: no GPU" | tee -a "$2"
  record "$1" skipped 0 "no GPU"
  return 1
}

# Which CUDA architecture to build for: the GPU's own (9.0 -> 90), else 90 (H100/H200).
cuda_arch() {
  local cap=""
  [ "$MODE" = gpu ] && { cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .') || true; }
  [[ "$cap" =~ ^[0-9]+$ ]] && echo "$cap" || echo "${CUDA_ARCH:-90}"
}

# CMake arguments for BUILD into the array ARGS, and a description into FIGURE. Header-only
# dependencies from .deps.tar.xz (tools/gpu_pack.sh) when present, else the system's; no BLAS: the
# GPU path needs none and the GPU machine has none.
configure_args() {
  ARGS=(-DCMAKE_BUILD_TYPE=Release)
  if [ "$EMU" = 1 ]; then
    FIGURE="host emulation"
    # An emulation folder already configured (CI's build-emu: OpenBLAS, the system's packages) keeps
    # its settings: turning BLAS off there would rebuild the whole library for nothing.
    [ -f "$BIN/CMakeCache.txt" ] && { ARGS+=(-DLOWRANK_CUDA_EMULATION=ON); return 0; }
    ARGS+=(-DLOWRANK_CUDA_EMULATION=ON)
  else
    # nvcc outside PATH is common on bare images; -allow-unsupported-compiler: a g++ newer than this
    # nvcc knows must not cost the run (a no-op when the host compiler is supported).
    command -v nvcc >/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH; }
    local arch
    arch=$(cuda_arch)
    ARGS+=(-DLOWRANK_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch" "-DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler")
    command -v nvcc >/dev/null && ARGS+=("-DCMAKE_CUDA_COMPILER=$(command -v nvcc)")
    FIGURE="sm_$arch"
  fi
  ARGS+=(-DLOWRANK_BLAS=OFF -DLOWRANK_NATIVE=ON)
  [ -f .deps/include/Eigen/Core ] && ARGS+=("-DLOWRANK_DEPS_DIR=$ROOT/.deps")
  command -v ninja >/dev/null && [ ! -f "$BIN/CMakeCache.txt" ] && ARGS+=(-G Ninja)
  return 0
}

# compiler_version LANG: "GNU 12.2.0" for CXX, "13.0.88" for CUDA, as CMake identified them.
compiler_version() {
  local f
  f=$(ls "$BIN"/CMakeFiles/*/CMake"$1"Compiler.cmake 2>/dev/null | tail -n1)
  [ -n "$f" ] || { echo "?"; return 0; }
  local id ver
  id=$(sed -n "s/^set(CMAKE_$1_COMPILER_ID \"\(.*\)\")/\1/p" "$f")
  ver=$(sed -n "s/^set(CMAKE_$1_COMPILER_VERSION \"\(.*\)\")/\1/p" "$f")
  if [ "$1" = CUDA ]; then echo "$ver"; else echo "$id $ver"; fi
}

# 0: configure and build the five binaries the steps run.
step_build() {
  local log=$OUT/0_build.log t0=$SECONDS st=pass figure
  : >"$log"
  if [ -f .deps.tar.xz ]; then
    { rm -rf .deps && cmake -E tar xf .deps.tar.xz; } >>"$log" 2>&1 || echo "gpu_check: unpacking .deps.tar.xz failed" >>"$log"
  fi
  configure_args
  figure=$FIGURE
  { echo "$ c++ --version; nvcc --version"; c++ --version; nvcc --version; } >>"$log" 2>&1 || true
  st=$(bounded "$(limit_for 120)" "$log" cmake -S . -B "$BUILD" "${ARGS[@]}")
  if [ "$EMU" != 1 ] && ! grep -q "lowrank: CUDA backend ON" "$log"; then st=fail figure="no CUDA compiler found"; fi
  if [ "$st" = pass ]; then
    local keep_going=(-k)  # build what can be built: a step whose binary exists still runs
    grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$BIN/CMakeCache.txt" && keep_going=(-k 0)
    st=$(bounded "$(limit_for "${BUILD_LIMIT:-330}")" "$log" cmake --build "$BUILD" -j "$JOBS" \
      --target lowrank_tests bench_ops bench_step latency_table finetune_e2e -- "${keep_going[@]}")
  fi
  BUILT=""
  for b in lowrank_tests bench_ops bench_step latency_table finetune_e2e; do [ -x "$BIN/$b" ] && BUILT+="$b "; done
  figure+=", $(compiler_version CXX)"
  [ "$EMU" = 1 ] || figure+=", nvcc $(compiler_version CUDA)"
  [ "$st" = pass ] || figure+=", built: ${BUILT:-nothing}"
  record build "$st" $((SECONDS - t0)) "$figure"
  mkdir -p "$TMP"
  # A build log of warnings could outgrow what comes back (16 MiB a file): keep its ends.
  if [ "$(stat -c %s "$log")" -gt 8000000 ]; then
    { head -c 3000000 "$log"; echo "... (cut) ..."; tail -c 3000000 "$log"; } >"$log.cut" && mv "$log.cut" "$log"
  fi
}

# 1: what the GPU is, and its two ceilings measured through the backend: copy GB/s, sgemm fp32/TF32.
step_device() {
  local log=$OUT/1_device.txt t0=$SECONDS st j=$TMP/bench_ops.json size=()
  gpu_or_skip device "$log" || return 0
  if [ "$MODE" = gpu ]; then
    { nvidia-smi; nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm,power.limit \
        --format=csv; } >>"$log" 2>&1 || true
  else
    size=(--gemm-n 64 --copy-mb 4 --repeats 2)
  fi
  st=$(bounded "$(limit_for 60)" "$log" "$BIN/bench_ops" --device cuda --json "$j" "${size[@]}")
  record device "$st" $((SECONDS - t0)) "copy $(fmt_num "$(json_num "$j" copy_gbs)" %.0f) GB/s, sgemm fp32 \
$(fmt_num "$(json_num "$j" sgemm_fp32_tflops)" %.1f) / TF32 $(fmt_num "$(json_num "$j" sgemm_tf32_tflops)" %.1f) TFLOP/s"
}

# 3: GPT-2 124M training step, FT vs LoRA at B*T = 8*1024 (bench_step's cuda default), fp32 then TF32,
# then LoRA alone with --precision bf16 (its frozen weights through cuBLAS's bf16 GemmEx; its figure adds
# the bf16 GEMMs per step, which must be above 0).
step_bench_step() {
  local log=$OUT/3_bench_step.txt t0=$SECONDS st=skipped s size=(--steps 3 --warmup 1) figure=""
  gpu_or_skip bench_step "$log" || return 0
  [ "$MODE" = emulation ] && size=(--model tiny --batch 2 --seq 32 --steps 1 --warmup 0)
  for prec in fp32 tf32 bf16; do
    local j=$TMP/bench_step_$prec.json flag=()
    [ "$prec" = tf32 ] && flag=(--tf32)
    [ "$prec" = bf16 ] && flag=(--precision bf16 --methods lora)
    s=$(bounded "$(limit_for 100)" "$log" "$BIN/bench_step" --device cuda "${flag[@]}" "${size[@]}" --json "$j")
    if [ "$prec" = bf16 ] && [ "$s" = pass ] && ! grep -Eq '"bf16_gemms_per_step": [1-9]' "$j"; then
      echo "bench_step --precision bf16: no bf16 GEMM ran on the GPU" >>"$log"
      s=fail
    fi
    st=$(worse "$st" "$s")
    figure+="$prec tok/s $(awk '/"method": /{gsub(/[",]/,"",$2); m=$2} /"tokens_per_s": /{gsub(/,/,"",$2); \
printf "%s%s %.0f", sep, m, $2; sep=" "} /"bf16_gemms_per_step": [1-9]/{gsub(/,/,"",$2); g=$2} \
END{if (g != "") printf ", %.0f bf16 GEMMs/step", g}' "$j" 2>/dev/null || true); "
  done
  record bench_step "$st" $((SECONDS - t0)) "${figure%; }"
}

# 4: the paper's Table 1 latency grid (32x512, 16x256, 1x128) on GPT-2 medium.
step_latency() {
  local log=$OUT/4_latency.txt t0=$SECONDS st j=$TMP/latency_table.json size=(--grid full --repeats 3 --warmup 1)
  gpu_or_skip latency "$log" || return 0
  [ "$MODE" = emulation ] && size=(--model tiny --grid 1x16 --repeats 1 --warmup 0)
  st=$(bounded "$(limit_for 100)" "$log" "$BIN/latency_table" --device cuda "${size[@]}" --json "$j")
  record latency "$st" $((SECONDS - t0)) "$(cat "$j" 2>/dev/null | grep -c '"median_ms"' || true) timings, \
$(fmt_num "$(json_num "$j" total_s)" %.0f) s"
}

source "$ROOT/tools/gpu_check_tests.sh"
