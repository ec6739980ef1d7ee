#!/usr/bin/env bash
# Packs the header-only dependencies (Eigen, doctest, cxxopts, nlohmann-json, with their Debian
# copyright files) into ONE ignored file, .deps.tar.xz, for a machine that has none of the -dev
# packages and no network (a lent GPU machine; docs/cuda.md, "Running on a GPU machine"). There,
# tools/gpu_check.sh unpacks it into .deps/ and configures with -DLOWRANK_DEPS_DIR=.deps.
#   tools/gpu_pack.sh [PACK]        (default .deps.tar.xz; the unpacked copy stays in .deps/)
# Then prints the size of what travels with the tree: tracked files + untracked files git does not
# ignore + the pack, against the 64 MiB a device call carries. Compressed because the tracked
# files alone are ~62 MB: Eigen's 6.3 MB of headers would not fit raw.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-.deps.tar.xz}
STAGE=.deps
LIMIT=$((64 * 1024 * 1024))

# Debian package -> what of it goes where under $STAGE. Only Eigen/ of libeigen3-dev: nothing here
# includes unsupported/ (checked below, so a future include of it fails here, not on the GPU).
PKGS="libeigen3-dev doctest-dev libcxxopts-dev nlohmann-json3-dev"
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "gpu_pack: Debian package $p is missing (tools/setup.sh installs it)" >&2; exit 1; }
done
if grep -rlq --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' 'unsupported/Eigen' \
     tensor autograd nn lora optim data cuda examples tests; then
  echo "gpu_pack: the sources include unsupported/Eigen, which the pack leaves out: add it below" >&2
  exit 1
fi

rm -rf "$STAGE"
mkdir -p "$STAGE/include" "$STAGE/cmake" "$STAGE/licenses"
cp -r /usr/include/eigen3/Eigen "$STAGE/include/"
cp -r /usr/include/doctest "$STAGE/include/"
cp /usr/include/cxxopts.hpp "$STAGE/include/"
cp -r /usr/include/nlohmann "$STAGE/include/"
# doctest_discover_tests (ctest); doctest.cmake finds doctestAddTests.cmake next to itself.
cp /usr/lib/cmake/doctest/doctest.cmake /usr/lib/cmake/doctest/doctestAddTests.cmake "$STAGE/cmake/"
for p in $PKGS; do
  cp "/usr/share/doc/$p/copyright" "$STAGE/licenses/$p.copyright"
done
{
  echo "Header-only dependencies packed by tools/gpu_pack.sh from these Debian packages"
  echo "(their copyright and licence terms: licenses/<package>.copyright):"
  dpkg-query -W -f='  ${Package} ${Version}\n' $PKGS
} >"$STAGE/README.txt"

# -9e: the smallest pack (a few seconds on this size); cmake -E tar unpacks it anywhere cmake runs.
tar -cf - "$STAGE" | xz -9e -T1 >"$PACK"

# What travels: every tracked file as it is in the working tree, untracked files git does not
# ignore, and the pack (carried by name, being ignored).
sum_sizes() { xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | sum_sizes)
untracked=$(git ls-files -z --others --exclude-standard | sum_sizes)
pack=$(stat -c %s "$PACK")
total=$((tracked + untracked + pack))
printf 'gpu_pack: %s (%d bytes; unpacked in %s/: %s)\n' "$PACK" "$pack" "$STAGE" "$(du -sh "$STAGE" | cut -f1)"
printf '  tracked files     %10d bytes\n  untracked files   %10d bytes\n  the pack          %10d bytes\n' \
  "$tracked" "$untracked" "$pack"
printf '  total             %10d bytes of %d (64 MiB): %d bytes to spare\n' "$total" "$LIMIT" $((LIMIT - total))
if [ "$total" -gt "$LIMIT" ]; then
  echo "gpu_pack: TOO BIG to travel: remove or ignore large untracked files (git status)" >&2
  exit 1
fi
