#!/usr/bin/env bash
# The main job. For now: build the examples in release mode and run custom_model
# (a network composed as a type, with a user-written layer, trained on spirals).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/deps.sh"
need_packages "${TYPENET_BUILD_PACKAGES[@]}"
BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTYPENET_BUILD_TESTS=OFF -DTYPENET_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target custom_model
"$BUILD_DIR/examples/custom_model" "$@"
