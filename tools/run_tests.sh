#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
cd build
ctest -j "$(nproc)" --output-on-failure --timeout 1500
