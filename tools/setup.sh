#!/usr/bin/env bash
# Installs the Debian packages lowrank needs (only those missing), then configures and builds.
# Usage: tools/setup.sh [build-dir [target...]]   (default: build, every target). Extra CMake options
# come from $LOWRANK_CMAKE_ARGS, more Debian packages from $LOWRANK_EXTRA_PKGS, the number of build
# jobs from $LOWRANK_JOBS (default: nproc). LOWRANK_MPI=ON installs OpenMPI (openmpi-bin, libopenmpi-dev)
# and builds data-parallel training with it (docs/data_parallel.md), LOWRANK_MPI=OFF builds without it;
# unset, CMake uses MPI where it is installed.
# Re-running is cheap: nothing is reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift
TARGETS=("$@")
# libcpp-httplib-dev: the serve example's HTTP server (optional in CMake: -DLOWRANK_HTTP, docs/serve.md).
PKGS="g++ cmake ninja-build pkg-config libeigen3-dev doctest-dev libcxxopts-dev nlohmann-json3-dev libopenblas-openmp-dev libcpp-httplib-dev ${LOWRANK_EXTRA_PKGS:-}"
# On an AVX-512 CPU the default GEMM backend (LOWRANK_GEMM=auto) is oneDNN: its kernels follow the CPU
# where OpenBLAS may be held to AVX2's by OPENBLAS_CORETYPE (docs/benchmarks.md, "GEMM backends"). It is
# optional: where it cannot be installed, auto builds with OpenBLAS.
OPTIONAL=""
grep -qw avx512f /proc/cpuinfo 2>/dev/null && OPTIONAL="libdnnl-dev"
if [ "${LOWRANK_MPI:-}" = ON ]; then
  PKGS="$PKGS openmpi-bin libopenmpi-dev"
  LOWRANK_CMAKE_ARGS="-DLOWRANK_MPI=ON ${LOWRANK_CMAKE_ARGS:-}"
elif [ "${LOWRANK_MPI:-}" = OFF ]; then
  LOWRANK_CMAKE_ARGS="-DLOWRANK_MPI=OFF ${LOWRANK_CMAKE_ARGS:-}"
fi

missing=""; missing_opt=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
for p in $OPTIONAL; do dpkg -s "$p" >/dev/null 2>&1 || missing_opt="$missing_opt $p"; done
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"; }
if [ -n "$missing" ]; then
  echo "==> installing Debian packages:$missing"
  $SUDO apt-get update -qq
  apt_install $missing
fi
if [ -n "$missing_opt" ]; then
  echo "==> installing Debian packages (optional):$missing_opt"
  { [ -n "$missing" ] || $SUDO apt-get update -qq; } && apt_install $missing_opt \
    || echo "==> note:$missing_opt not installed; the GEMM backend falls back to OpenBLAS"
fi

# A course lab's copy (tools/make_lab.sh leaves its stamp .lowrank-lab) builds without the CUDA backend
# unless asked (LOWRANK_CMAKE_ARGS=-DLOWRANK_CUDA=ON): no lab uses it, and nvcc would add minutes to a
# student's first build wherever the toolkit is installed.
if [ -f .lowrank-lab ] && [[ " ${LOWRANK_CMAKE_ARGS:-}" != *" -DLOWRANK_CUDA="* ]]; then
  LOWRANK_CMAKE_ARGS="-DLOWRANK_CUDA=OFF ${LOWRANK_CMAKE_ARGS:-}"
  echo "==> a course lab's copy: the CUDA backend is off (LOWRANK_CMAKE_ARGS=-DLOWRANK_CUDA=ON builds it)"
fi

echo "==> configuring and building in $BUILD/"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${LOWRANK_CMAKE_ARGS:-} >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; exit 1; }
grep -E "^-- lowrank" "$BUILD/configure.log" || true
cmake --build "$BUILD" -j "${LOWRANK_JOBS:-$(nproc)}" ${TARGETS[@]+--target "${TARGETS[@]}"}
