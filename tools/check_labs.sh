#!/usr/bin/env bash
# Checks that the course labs cannot rot (docs/labs/README.md). For every lab N:
#   1. tools/make_lab.sh N writes the student copy into build-labs/tree, and it builds;
#   2. the lab's grader (the -tc filter in its sheet) fails, and every test case that fails in it
#      shows the lab's message "lab N: implement ...", or inspects an error with error_of (it then
#      sees the stub's error instead of the one it expects);
#   3. every other test of the suite passes (-tce with the same filter): the grader names every test
#      that needs the lab's functions.
# Then the solutions are restored (make_lab.sh 0) and the whole suite must pass again.
# One student tree and one build folder serve every lab: make_lab.sh rewrites only the files whose
# content changes, so after the first build each lab recompiles its own few files and relinks.
# Only the targets the tests run are built (lowrank_tests, which depends on train_gpt, finetune_e2e
# and results_table, plus e2e_score). CUDA is off: the labs are CPU code, and the host emulation is
# tested by tools/run_tests.sh --full itself.
# Measured (docs/labs/README.md): 8 min 32 s from nothing at -j1 on the 2-core EPYC, of which 5 min 42 s
# the first build. Usage: tools/check_labs.sh [N...]   (default: every lab). Environment: LOWRANK_CMAKE_ARGS (as for
# tools/setup.sh), LAB_JOBS (build jobs, default: all cores), LAB_DIR (default: build-labs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${LAB_DIR:-build-labs}
TREE=$WORK/tree
JOBS=${LAB_JOBS:-$(nproc)}
TARGETS=(lowrank_tests e2e_score)
LOG=$WORK/logs
# ccache (when installed) then keys on paths relative to the build folder: a rerun, or the
# reference files restored after a lab, are cache hits.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
mkdir -p "$LOG"
problems=()
summary=()

now() { date +%s; }

# Builds the tree in $TREE/build (configured on first use).
build_tree() {
  if [ ! -f "$TREE/build/build.ninja" ]; then
    cmake -S "$TREE" -B "$TREE/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWRANK_CUDA=OFF \
      ${LOWRANK_CMAKE_ARGS:-} > "$LOG/configure.log" 2>&1 || { cat "$LOG/configure.log"; return 1; }
  fi
  cmake --build "$TREE/build" -j "$JOBS" --target "${TARGETS[@]}" > "$1" 2>&1
}

# Failed test cases in doctest's console output $1, one a line: "<kind>\t<name>", kind is
# msg (shows the message $2), error_of (inspects an error) or other.
failed_cases() {
  awk -v msg="$2" '
    function flush() {  # a test case may fail in several blocks: its best evidence wins
      if (name != "" && failed) kind[name] = (hasmsg || kind[name] == "msg") ? "msg" : (errof || kind[name] == "error_of") ? "error_of" : "other"
      name = ""; failed = 0; hasmsg = 0; errof = 0
    }
    /^=====+$/ { flush(); next }
    /^TEST CASE:  / { name = substr($0, 13); next }
    / ERROR: / { failed = 1 }
    index($0, msg) { hasmsg = 1 }
    /error_of\(/ { errof = 1 }
    END { flush(); for (n in kind) print kind[n] "\t" n }
  ' "$1" | sort -t$'\t' -k2
}

# Runs the test binary of the tree with doctest arguments, output into $1; returns its status.
run_tests() {
  local out=$1
  shift
  (cd "$TREE" && ./build/lowrank_tests "$@") > "$out" 2>&1
}

check_lab() {
  local n=$1 filter t0 t1 t2 t3 out cases
  filter=$(tools/make_lab.sh --grader "$n")
  t0=$(now)
  tools/make_lab.sh --force "$n" "$TREE" > "$LOG/lab$n-make.log"
  if ! build_tree "$LOG/lab$n-build.log"; then
    problems+=("lab $n: the student copy does not build ($LOG/lab$n-build.log)"); tail -20 "$LOG/lab$n-build.log"
    return
  fi
  t1=$(now)
  out=$LOG/lab$n-grader.log
  if run_tests "$out" -tc="$filter"; then
    problems+=("lab $n: the grader passes on the student copy ($out)")
  fi
  cases=$(failed_cases "$out" "lab $n: implement")
  t2=$(now)
  if ! grep -q "lab $n: implement" "$out"; then
    problems+=("lab $n: the grader never shows the message 'lab $n: implement' ($out)")
  fi
  if grep -q $'^other\t' <<< "$cases"; then
    problems+=("lab $n: grader tests failing without the lab's message ($out):")
    problems+=("$(grep $'^other\t' <<< "$cases" | cut -f2 | sed 's/^/      /')")
  fi
  if ! run_tests "$LOG/lab$n-others.log" -tce="$filter"; then
    problems+=("lab $n: tests outside the grader fail; add them to its sheet's filter ($LOG/lab$n-others.log):")
    problems+=("$(failed_cases "$LOG/lab$n-others.log" "lab $n: implement" | cut -f2 | sed 's/^/      /')")
  fi
  t3=$(now)
  summary+=("$(printf 'lab %s  build %4ss  grader %3ss (%s fail: %s with the message, %s via error_of)  others %3ss' \
    "$n" $((t1 - t0)) $((t2 - t1)) "$(grep -c . <<< "$cases" || true)" "$(grep -c $'^msg\t' <<< "$cases" || true)" \
    "$(grep -c $'^error_of\t' <<< "$cases" || true)" $((t3 - t2)))")
  echo "${summary[-1]}"
}

check_restored() {
  local t0 t1 t2
  t0=$(now)
  tools/make_lab.sh --force 0 "$TREE" > "$LOG/restore-make.log"
  build_tree "$LOG/restore-build.log" || { problems+=("restored tree does not build"); return; }
  t1=$(now)
  run_tests "$LOG/restore-tests.log" || problems+=("restored tree: tests fail ($LOG/restore-tests.log)")
  t2=$(now)
  summary+=("$(printf 'restored  build %4ss  every test %3ss: %s' $((t1 - t0)) $((t2 - t1)) \
    "$(grep -m1 'test cases:' "$LOG/restore-tests.log" | sed 's/.doctest. //')")")
  echo "${summary[-1]}"
}

if [ -f .lowrank-lab ]; then  # a student copy (make_lab.sh's stamp): its own lab is meant to fail
  echo "==> course labs: a student copy (lab $(cat .lowrank-lab)); the lab check runs in the teacher's repository"
  exit 0
fi
start=$(now)
labs=("$@")
[ ${#labs[@]} -gt 0 ] || mapfile -t labs < <(tools/make_lab.sh --labs)
echo "==> course labs ${labs[*]}: student copies in $TREE/ (logs in $LOG/)"
for n in "${labs[@]}"; do check_lab "$n"; done
check_restored
echo "==> course labs checked in $(($(now) - start)) s"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'check_labs: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "==> every lab: its grader fails with its message, every other test passes; restored: all pass"
