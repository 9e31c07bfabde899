#!/usr/bin/env bash
# Build every test and run it: installs the missing Debian packages, configures with
# CMake (one -O2 build), builds, and runs CTest.
#
#   scripts/test.sh                 # build in build/test and run all tests
#   BUILD_DIR=/tmp/b scripts/test.sh
#   TYPENET_DATA=/path/to/shared scripts/test.sh   # where data/, weights/, images/ are
#   CMAKE_ARGS="-DTYPENET_LONG_TESTS=ON" scripts/test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/deps.sh"
# curl: the download tests fetch file:// URLs through it, as the library does.
need_packages "${TYPENET_BUILD_PACKAGES[@]}" curl

# The tests run in the build folder: a relative TYPENET_DATA is made absolute here.
if [ -n "${TYPENET_DATA:-}" ]; then
  if [ -d "$TYPENET_DATA" ]; then TYPENET_DATA=$(cd "$TYPENET_DATA" && pwd); fi
  export TYPENET_DATA
fi
data=${TYPENET_DATA:-$ROOT/../shared}
if [ -d "$data/data" ] && [ -d "$data/weights" ] && [ -d "$data/images" ]; then
  echo "typenet: data and weights from $data"
else
  echo "typenet: no data folder at $data (set TYPENET_DATA): the tests that need it will be reported as skipped"
fi

BUILD_DIR=${BUILD_DIR:-$ROOT/build/test}
JOBS=${JOBS:-$(nproc)}
start=$(date +%s)
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2" \
  -DTYPENET_BUILD_TESTS=ON -DTYPENET_BUILD_EXAMPLES=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
built=$(date +%s)
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS" ${CTEST_ARGS:-})
echo "typenet: tests passed (build $((built - start)) s, tests $(( $(date +%s) - built )) s)"
