# Steps 2 and 5 of tools/gpu_check.sh (sourced, not run): the cuda* doctests, and the E2E run on
# both devices.

# One test case in its own process: a sticky CUDA error (an illegal address poisons the context) or
# a hang then costs that test only. Prints "STATUS WORST" (WORST: the largest error/tolerance of its
# comparisons, from the [cuda-err] lines tests/cuda_test_util.h prints under LOWRANK_TEST_REPORT_ERRORS).
one_test() {
  local name=$1 lim=$2 out=$TMP/test.out st worst
  : >"$out"
  # doctest splits -tc on commas; a backslash keeps one in the name.
  st=$(LOWRANK_TEST_REPORT_ERRORS=1 bounded "$lim" "$out" "$BIN/lowrank_tests" -tc="${name//,/\\,}")
  if [ "$st" = pass ] && grep -q "no CUDA device: skipped" "$out"; then st=skipped; fi
  if [ "$st" = pass ] && ! grep -Eq "test cases: +1 \| +1 passed" "$out"; then st=fail; fi  # matched no test
  worst=$(awk '/^\[cuda-err\]/ { r = $NF + 0; if (r > w) w = r } END { printf "%.3g", w }' "$out")
  echo "$st $worst"
}

# 2: every cuda* test case, listed by the runner itself, one line each; the full output of any that
# did not pass follows its line.
step_tests() {
  local log=$OUT/2_tests.txt t0=$SECONDS pass=0 fail=0 other=0 worst=0 name res st w lim
  gpu_or_skip tests "$log" || return 0
  [ -x "$BIN/lowrank_tests" ] || { echo "not built" >>"$log"; record tests fail 0 "lowrank_tests not built"; return 0; }
  "$BIN/lowrank_tests" -ltc -tc='cuda*' </dev/null 2>&1 | grep -v -e '^\[doctest\]' -e '^=*$' >"$TMP/tests.lst" || true
  echo "$(wc -l <"$TMP/tests.lst") cuda* test cases, each in its own process ($MODE)" >>"$log"
  echo "err/tol: the worst |got - want| / (atol + rtol |want|) of the test's comparisons with the CPU (1 = at the tolerance)" >>"$log"
  printf '%-8s %6s %9s  %s\n' status sec err/tol "test case" >>"$log"
  # Each test gets TEST_LIMIT s, all of them together TESTS_LIMIT: hung tests must not eat the steps after.
  local until=$((SECONDS + ${TESTS_LIMIT:-180}))
  while IFS= read -r name; do
    lim=$(limit_for "${TEST_LIMIT:-90}")
    [ $((until - SECONDS)) -lt "$lim" ] && lim=$((until - SECONDS))
    [ "$lim" -lt 0 ] && lim=0
    local t1=$SECONDS
    res=$(one_test "$name" "$lim")
    st=${res% *} w=${res#* }
    printf '%-8s %6s %9s  %s\n' "$st" $((SECONDS - t1)) "$w" "$name" >>"$log"
    case $st in pass) pass=$((pass + 1)) ;; fail | timeout) fail=$((fail + 1)) ;; *) other=$((other + 1)) ;; esac
    if [ "$st" != pass ] && [ "$st" != skipped ]; then sed 's/^/    | /' "$TMP/test.out" >>"$log"; fi
    worst=$(awk -v a="$worst" -v b="$w" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
  done <"$TMP/tests.lst"
  st=pass
  [ "$fail" -gt 0 ] && st=fail
  [ "$pass" -eq 0 ] && st=$([ "$fail" -gt 0 ] && echo fail || echo skipped)
  record tests "$st" $((SECONDS - t0)) "$pass passed, $fail failed, $other skipped; worst err/tol $worst"
}

# 5: a short LoRA fine-tune of the E2E base in the tree (gpt-e2e-base5) on the GPU, then the same on the CPU (same
# seed, so the same data order and dropout masks): the losses should agree to float rounding.
step_e2e() {
  local log=$OUT/5_e2e.txt t0=$SECONDS st=skipped s dev figure
  local size=(--steps 200 --eval-every 50 --test-mrs 8 --beam 1)
  gpu_or_skip e2e "$log" || return 0
  # Emulation: each valid-loss evaluation (50 batches) costs ~20 s on a 2-core CI machine: only the final one.
  [ "$MODE" = emulation ] && size=(--steps 2 --eval-every 0 --test-mrs 1 --beam 1 --max-new-tokens 8)
  for dev in cuda cpu; do
    s=$(bounded "$(limit_for 120)" "$log" "$BIN/finetune_e2e" --init data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors \
      --method lora --device "$dev" "${size[@]}" --show 0 --outputs "$TMP/e2e_$dev.txt" --json "$TMP/e2e_$dev.json")
    st=$(worse "$st" "$s")
  done
  {
    echo "---- losses side by side (step, train loss cuda / cpu, valid loss cuda / cpu)"
    paste <(e2e_curve "$TMP/e2e_cuda.json") <(e2e_curve "$TMP/e2e_cpu.json") |
      awk '{ printf "%6s  %.5f / %.5f  %.5f / %.5f\n", $1, $2, $5, $3, $6 }'
    echo "seconds training cuda $(json_num "$TMP/e2e_cuda.json" train_seconds), cpu $(json_num "$TMP/e2e_cpu.json" train_seconds)"
  } | tee -a "$log" >/dev/null
  figure="final train loss cuda $(fmt_num "$(json_num "$TMP/e2e_cuda.json" final_train_loss)" %.5f)"
  figure+=" / cpu $(fmt_num "$(json_num "$TMP/e2e_cpu.json" final_train_loss)" %.5f)"
  figure+=", train s $(fmt_num "$(json_num "$TMP/e2e_cuda.json" train_seconds)" %.1f) / $(fmt_num "$(json_num "$TMP/e2e_cpu.json" train_seconds)" %.1f)"
  record e2e "$st" $((SECONDS - t0)) "$figure"
}
