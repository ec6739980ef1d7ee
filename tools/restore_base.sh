#!/usr/bin/env bash
# Restores E2E bases that left the working tree from git history, byte for byte. Only the base the
# main job and the headline use (gpt-e2e-base5) travels with every clone; the others were committed
# once and stay in history, so the rows measured from them keep their commands:
#   tools/restore_base.sh gpt-e2e-base [gpt-e2e-base3 gpt-e2e-base4 ...]    (default: all three)
# For each NAME: the blob data/assets/NAME/NAME.safetensors of the last commit that added or changed
# it (git log --diff-filter=AM), checked against the sha256 line of data/assets/NAME/README.md.
# A file already present and matching is left alone. A clone without that history (a shallow clone,
# a lab copy) fails here: tools/make_base.sh regenerates each base instead (tens of minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- gpt-e2e-base gpt-e2e-base3 gpt-e2e-base4
die() { echo "restore_base: $*" >&2; exit 1; }
for name in "$@"; do
  dir=data/assets/$name
  file=$dir/$name.safetensors
  [ -f "$dir/README.md" ] || die "no $dir/README.md: $name is not a base of this repository"
  want=$(sed -nE 's/^sha256: ([0-9a-f]{64}).*/\1/p' "$dir/README.md" | head -n1)
  [ -n "$want" ] || die "$dir/README.md has no line 'sha256: <64 hex digits>'"
  if [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$want" ]; then
    echo "restore_base: $file already present (sha256 $want)"
    continue
  fi
  git rev-parse --git-dir >/dev/null 2>&1 || die "not a git clone: regenerate $name with tools/make_base.sh"
  commit=$(git log -1 --format=%H --diff-filter=AM -- "$file" 2>/dev/null || true)
  [ -n "$commit" ] || die "$file is in no commit this clone has (shallow?): regenerate it with tools/make_base.sh"
  git show "$commit:$file" > "$file.tmp" || { rm -f "$file.tmp"; die "git show $commit:$file failed"; }
  got=$(sha256sum "$file.tmp" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$file.tmp"
    die "$file from ${commit:0:7} has sha256 $got, its README says $want"
  fi
  mv "$file.tmp" "$file"
  echo "restore_base: $file restored from ${commit:0:7} (sha256 $want)"
done
