#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with CTest.
# Fails (non-zero) when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
