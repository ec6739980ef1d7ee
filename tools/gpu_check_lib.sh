# Helpers of tools/gpu_check.sh (sourced, not run): the time budget, bounded commands, the summary
# table and results.json. Uses the caller's OUT, TMP, START, BUDGET and SUMMARY.

# Seconds a step may take: its own limit, cut to what is left of the budget (10 s kept for the
# summary). 0 when nothing is left: the step is then recorded as "timeout" without running.
limit_for() {
  local want=$1 left=$((BUDGET - (SECONDS - START) - 10))
  [ "$left" -lt 0 ] && left=0
  if [ "$want" -lt "$left" ]; then echo "$want"; else echo "$left"; fi
}

# bounded LIMIT LOG CMD...: runs CMD with stdout and stderr appended to LOG, killed after LIMIT
# seconds (SIGKILL 5 s later if it ignores SIGTERM); prints its status word: pass, fail or timeout.
bounded() {
  local lim=$1 log=$2 rc=0
  shift 2
  if [ "$lim" -le 0 ]; then
    echo "gpu_check: no time left in the ${BUDGET} s budget: not run: $*" >>"$log"
    echo timeout
    return 0
  fi
  echo "\$ $* (limit ${lim} s)" >>"$log"
  timeout -k 5 "$lim" "$@" >>"$log" 2>&1 </dev/null || rc=$?
  echo "exit $rc" >>"$log"
  case $rc in
    0) echo pass ;;
    124 | 137) echo timeout ;;
    *) echo fail ;;
  esac
}

# worse A B: the worse of two status words (timeout > fail > pass > skipped).
worse() {
  local rank_a rank_b
  rank() { case $1 in timeout) echo 3 ;; fail) echo 2 ;; pass) echo 1 ;; *) echo 0 ;; esac; }
  rank_a=$(rank "$1") rank_b=$(rank "$2")
  if [ "$rank_a" -ge "$rank_b" ]; then echo "$1"; else echo "$2"; fi
}

# record STEP STATUS SECONDS FIGURE: one row of the summary table.
record() {
  SUMMARY+=("$(printf '%-11s %-9s %5s  %s' "$1" "$2" "$3" "$4")")
}

print_summary() {
  echo "gpu_check summary ($(date -u '+%Y-%m-%d %H:%M UTC'), mode $MODE, $((SECONDS - START)) s in all)"
  printf '%-11s %-9s %5s  %s\n' step status sec "key figure"
  local row
  for row in "${SUMMARY[@]}"; do echo "$row"; done
}

# json_num FILE KEY: the first number stored under "KEY" in a JSON file (dump(2) layout, one key a
# line); empty when absent. Plain grep/sed, so no Python is needed on either machine.
json_num() {
  [ -f "$1" ] || return 0
  grep -m1 "\"$2\": " "$1" | sed -E 's/.*": *(-?[0-9.eE+-]+).*/\1/' || true
}

# fmt_num X [PRINTF-FORMAT]: X formatted, or "?" when empty.
fmt_num() {
  if [ -n "$1" ]; then awk -v x="$1" -v f="${2:-%.3g}" 'BEGIN { printf f, x }'; else echo "?"; fi
}

# results.json: every JSON a step wrote, under its name (null when the step made none).
write_results_json() {
  local f="$OUT/results.json" first=1 name path
  echo "{" >"$f"
  echo "  \"mode\": \"$MODE\", \"date\": \"$(date -u '+%Y-%m-%dT%H:%M:%SZ')\"," >>"$f"
  for name in bench_ops bench_step_fp32 bench_step_tf32 bench_step_bf16 latency_table e2e_cuda e2e_cpu; do
    path=$TMP/$name.json
    [ "$first" = 1 ] || echo "," >>"$f"
    first=0
    printf '  "%s": ' "$name" >>"$f"
    if [ -s "$path" ]; then cat "$path" >>"$f"; else printf 'null\n' >>"$f"; fi
  done
  echo "}" >>"$f"
}

# E2E curve rows "step train_loss valid_loss" from a finetune_e2e --json file's "curve" array.
e2e_curve() {
  [ -f "$1" ] || return 0
  awk '/"curve": \[/ { on = 1 } on && /^  \]/ { on = 0 }
       on && /"step": /        { gsub(/[^0-9]/, "", $2); step = $2 }
       on && /"train_loss": /  { gsub(/,/, "", $2); train = $2 }
       on && /"valid_loss": /  { gsub(/,/, "", $2); print step, train, $2 }' "$1"
}
