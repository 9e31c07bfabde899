#!/usr/bin/env bash
# The main job: the rock-paper-scissors transfer-learning workflow, end to end.
# Installs missing Debian packages, builds typenet's examples in release mode, finds
# the data ($TYPENET_DATA, default ../shared beside the checkout; downloads the public
# originals when absent and a network is there), runs examples/rock_paper_scissors and
# prints where its outputs are. Arguments are passed to the example, e.g.
#
#   scripts/demo.sh --epochs 5 --seed 1 --out out/rps
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/deps.sh"
need_packages "${TYPENET_BUILD_PACKAGES[@]}"

DATA=${TYPENET_DATA:-$ROOT/../shared}
if [ ! -d "$DATA/data/rock_paper_scissors" ] && [ ! -d "$DATA/data/rps" ]; then
  echo "typenet: no dataset under $DATA/data; downloading the public originals into $ROOT/out/data-root/data"
  DATA=$ROOT/out/data-root
  need_packages curl unzip
  bash "$ROOT/scripts/download_data.sh" "$DATA/data"
fi
if [ ! -d "$DATA/weights/mobilenet_v2_1.0_224" ] && [ ! -f "$DATA/weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" ]; then
  echo "typenet: no MobileNetV2 weights under $DATA/weights; downloading them"
  need_packages curl
  bash "$ROOT/scripts/download_weights.sh" "$DATA/weights"
fi
export TYPENET_DATA=$(cd "$DATA" && pwd)

BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTYPENET_BUILD_TESTS=OFF -DTYPENET_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target rock_paper_scissors
OUT=$ROOT/out/rock_paper_scissors
"$BUILD_DIR/examples/rock_paper_scissors" --data "$TYPENET_DATA" --out "$OUT" "$@"
# A --out among the arguments wins over the default (the example takes the last one).
prev=
for a in "$@"; do
  [ "$prev" = --out ] && OUT=$a
  prev=$a
done
echo
echo "outputs: $OUT (metrics.json, loss.png, accuracy.png, confusion_matrix.png, predictions.png, model.tnet, ...)"
