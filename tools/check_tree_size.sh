#!/usr/bin/env bash
# Fails when the tracked tree outgrows what travels: every file git tracks, at its size in the working
# tree, must sum to at most LIMIT bytes (default 48 MB = 48,000,000). A lent GPU machine receives the
# tree, the untracked files and tools/gpu_pack.sh's pack in one 64 MiB transfer, so the tree keeps
# room for the pack (~3 MB) and for what a session adds. Bases that no default command reads live in
# git history (tools/restore_base.sh), not in the tree.
# Usage: tools/check_tree_size.sh [LIMIT]   (ctest "tree: ..."; exits 77, skipped, outside a git clone)
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-48000000}
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1 || [ "$(git rev-parse --show-toplevel)" != "$PWD" ]; then
  echo "check_tree_size: not a git clone of lowrank (a lab copy or a tarball): nothing to measure"
  exit 77
fi
sizes=$(git ls-files -z | xargs -0 -r stat -c '%s %n' -- 2>/dev/null || true)
total=$(awk '{s += $1} END {print s + 0}' <<< "$sizes")
printf 'check_tree_size: %d tracked bytes of %d allowed (%d files)\n' "$total" "$LIMIT" "$(grep -c . <<< "$sizes")"
if [ "$total" -gt "$LIMIT" ]; then
  echo "check_tree_size: the tracked tree is too big to travel; the largest files:" >&2
  sort -rn <<< "$sizes" | head -5 | awk '{printf "  %10d  %s\n", $1, $2}' >&2
  exit 1
fi
