#!/usr/bin/env bash
# Course labs (docs/labs/README.md): writes a student copy of this repository in which lab N's marked
# function bodies are replaced by a stub that throws, every other lab's solution left in place.
#
#   tools/make_lab.sh N DIR      lab N into DIR, a new or empty folder
#   tools/make_lab.sh 0 DIR      the reference, every solution in place ("restore the solution")
#   tools/make_lab.sh --force N DIR   update a copy this script made earlier in place (a student's edits
#                                to the cut functions are overwritten: without --force it refuses)
#   tools/make_lab.sh --list     the labs, the functions each cuts and the command that grades it
#   tools/make_lab.sh --grader N the doctest filter that grades lab N (for tools/check_labs.sh)
#   tools/make_lab.sh --labs     the lab numbers, one a line (from markers and sheets)
#
# A region is a comment pair inside a function body in the real sources:
#     // LAB 2 begin: layernorm_backward_dx (what to write)
#     ...the solution...
#     // LAB 2 end
# The stub keeps both markers and puts, at the begin marker's indentation,
#     throw lowrank::Error("lab 2: implement layernorm_backward_dx (see docs/labs/02-layernorm.md)");
# The grader is the first line of the sheet that starts with ./build/lowrank_tests -tc="...".
# Updating in place (--force) rewrites only the files whose content changes, so a build folder inside
# DIR rebuilds incrementally (tools/check_labs.sh relies on this). A folder this script did not make is
# never written into, --force or not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC_DIRS=(autograd lora optim nn)  # where markers may live: the teaching code
BEGIN_RE='^[[:space:]]*// LAB [0-9]+ begin: '
STAMP=.lowrank-lab                 # in DIR: the lab it holds, and proof that this script made DIR

usage() { sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "make_lab: $*" >&2; exit 1; }

# The sheet docs/labs/NN-*.md of lab N (exactly one).
sheet_of() {
  local nn sheets
  nn=$(printf '%02d' "$1")
  sheets=(docs/labs/"$nn"-*.md)
  [ -e "${sheets[0]}" ] || die "lab $1 has no sheet docs/labs/$nn-*.md"
  [ "${#sheets[@]}" -eq 1 ] || die "lab $1 has several sheets: ${sheets[*]}"
  echo "${sheets[0]}"
}

# Lab numbers that have markers in the sources, ascending.
labs_in_sources() {
  grep -rhoE "$BEGIN_RE" "${SRC_DIRS[@]}" | sed -E 's/.*LAB ([0-9]+) begin: /\1/' | sort -un
}

# Lab numbers with markers or a sheet: a sheet without markers is listed, and make_copy refuses it.
all_labs() {
  { labs_in_sources; ls docs/labs/ | sed -nE 's/^0*([0-9]+)-.*\.md$/\1/p'; } | sort -un
}

# Source files holding lab N's regions.
files_of() { grep -rlE "^[[:space:]]*// LAB $1 begin: " "${SRC_DIRS[@]}" | sort; }

# The doctest filter in lab N's sheet.
grader_of() {
  local sheet line
  sheet=$(sheet_of "$1")
  line=$(grep -m1 -E '^\./build/lowrank_tests -tc="[^"]+"' "$sheet") || die "$sheet has no line ./build/lowrank_tests -tc=\"...\""
  echo "$line" | sed -E 's/^[^"]*"([^"]+)".*/\1/'
}

list_labs() {
  local n sheet
  for n in $(labs_in_sources); do
    sheet=$(sheet_of "$n")
    printf 'lab %s: %s  (%s)\n' "$n" "$(grep -m1 '^# ' "$sheet" | sed -E 's/^# (Lab [0-9]+: )?//')" "$sheet"
    grep -rnE "^[[:space:]]*// LAB $n begin: " "${SRC_DIRS[@]}" | sort -t: -k1,1 -k2,2n |
      sed -E 's/^([^:]+):([0-9]+):.*begin: ([^ ,(]+).*/    cuts \3  (\1:\2)/'
    printf '    graded by: ./build/lowrank_tests -tc="%s"\n' "$(grader_of "$n")"
  done
}

# Writes file $1 to stdout with lab $2's regions replaced by the stub naming sheet $3, and
# tensor/error.h included when the file does not include it itself. Checks that every lab's
# markers pair up, so a broken marker fails here, not as a puzzling student build.
cut_regions() {
  local need_include=1
  grep -q '^#include "tensor/error.h"' "$1" && need_include=0
  awk -v lab="$2" -v sheet="$3" -v file="$1" -v need_include="$need_include" '
    function fail(msg) { printf "make_lab: %s:%d: %s\n", file, FNR, msg > "/dev/stderr"; bad = 1; exit 1 }
    /^#include / && need_include {  # the stub needs lowrank::Error declared
      print "#include \"tensor/error.h\"  // make_lab.sh: the lab stub throws lowrank::Error"
      need_include = 0
    }
    /^[[:space:]]*\/\/ LAB [0-9]+ begin: / {
      if (open != "") fail("LAB " $3 " begins inside LAB " open)
      open = $3
      if (open == lab) {
        print
        indent = $0; sub(/\/\/.*/, "", indent)
        fn = $0; sub(/.*begin: /, "", fn); sub(/[ ,(].*/, "", fn)
        printf "%sthrow lowrank::Error(\"lab %s: implement %s (see %s)\");\n", indent, lab, fn, sheet
        next
      }
    }
    /^[[:space:]]*\/\/ LAB [0-9]+ end/ {
      if ($3 != open) fail("LAB " $3 " end without its begin")
      open = ""
      print; next
    }
    open != "" && open == lab { next }
    { print }
    END { if (!bad && open != "") fail("LAB " open " is never closed") }
  ' "$1"
}

# Tracked files and new ones git does not ignore (a sheet not yet committed), as they are in the
# working tree; without git, every file outside build folders.
source_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\n' "$f"; done
  else
    find . -type f ! -path './.git/*' ! -path './build*' ! -path './out/*' | sed 's|^\./||'
  fi
}

# Copies $1 to DIR/$2 unless identical: unchanged files keep their time stamps (incremental builds).
install_file() {
  if ! cmp -s "$1" "$DIR/$2"; then
    mkdir -p "$(dirname "$DIR/$2")"
    cp "$1" "$DIR/$2"
  fi
}

make_copy() {
  local lab=$1 sheet="" f
  if [ "$lab" -ne 0 ]; then
    sheet=$(sheet_of "$lab")
    labs_in_sources | grep -qx "$lab" || die "lab $lab has a sheet but no '// LAB $lab begin:' marker in ${SRC_DIRS[*]}"
  fi
  if [ -e "$DIR" ] && [ ! -f "$DIR/$STAMP" ] && [ -n "$(ls -A "$DIR")" ]; then
    die "$DIR exists and was not made by make_lab.sh: refusing to write into it"
  fi
  if [ -f "$DIR/$STAMP" ] && [ "$FORCE" != 1 ]; then
    die "$DIR already holds a copy (lab $(cat "$DIR/$STAMP")): writing lab $lab would put the stubs back over" \
        "any edited function; give --force to update it in place, or choose a new DIR"
  fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  case "$DIR/" in "$ROOT"/*) [ "$DIR" = "$ROOT" ] && die "DIR is the repository itself" ;; esac
  tmp=$(mktemp); manifest=$(mktemp)  # globals: the EXIT trap runs after this function returns
  trap 'rm -f "$tmp" "$manifest"' EXIT
  source_files | grep -v -e '^build' -e "^${DIR#"$ROOT"/}/" > "$manifest" || true
  while IFS= read -r f; do
    if [ "$lab" -ne 0 ] && grep -qE "^[[:space:]]*// LAB $lab begin: " "$f" 2>/dev/null; then
      cut_regions "$f" "$lab" "$sheet" > "$tmp"
      install_file "$tmp" "$f"
    else
      install_file "$f" "$f"
    fi
  done < "$manifest"
  # Files the previous run wrote that the repository no longer has (CMake globs would still build them).
  if [ -f "$DIR/$STAMP.files" ]; then
    grep -vxF -f "$manifest" "$DIR/$STAMP.files" | while IFS= read -r f; do rm -f "$DIR/$f"; done || true
  fi
  cp "$manifest" "$DIR/$STAMP.files"
  echo "$lab" > "$DIR/$STAMP"
  if [ "$lab" -eq 0 ]; then
    echo "make_lab: $DIR holds the reference (every solution in place)"
  else
    echo "make_lab: $DIR holds lab $lab; sheet: $sheet"
    echo "make_lab: cut: $(files_of "$lab" | tr '\n' ' ')"
    echo "make_lab: grade it with: tools/setup.sh build && ./build/lowrank_tests -tc=\"$(grader_of "$lab")\""
  fi
}

FORCE=0
if [ "${1:-}" = --force ]; then FORCE=1; shift; fi
case "${1:-}" in
  --list) list_labs ;;
  --grader) [ $# -eq 2 ] || usage; grader_of "$2" ;;
  --labs) all_labs ;;
  ''|-h|--help) usage ;;
  *)
    [ $# -eq 2 ] || usage
    [[ "$1" =~ ^[0-9]+$ ]] || usage
    DIR=$2
    make_copy "$((10#$1))" ;;
esac
