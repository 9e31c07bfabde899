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
if [ -d "$DATA" ]; then DATA=$(cd "$DATA" && pwd); fi
# The whole dataset (both splits, every image), not just a folder of its name.
if ! bash "$ROOT/scripts/download_data.sh" --check "$DATA/data"; then
  ORIG=$DATA
  DATA=$ROOT/out/data-root
  echo "typenet: the rock-paper-scissors dataset is not (all) under $ORIG/data; downloading the public originals into $DATA/data"
  need_packages "${TYPENET_DOWNLOAD_PACKAGES[@]}"
  mkdir -p "$DATA"
  # Weights and photos already there are used where they are (the float .npy weights
  # give the README's figures; the download has only the quantized model).
  if { [ -d "$ORIG/weights/mobilenet_v2_1.0_224" ] || [ -f "$ORIG/weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" ]; } &&
     [ ! -e "$DATA/weights" ]; then
    ln -s "$ORIG/weights" "$DATA/weights"
  fi
  if [ -d "$ORIG/images" ] && [ ! -e "$DATA/images" ]; then ln -s "$ORIG/images" "$DATA/images"; fi
  bash "$ROOT/scripts/download_data.sh" "$DATA/data"
fi
if [ ! -d "$DATA/weights/mobilenet_v2_1.0_224" ] && [ ! -f "$DATA/weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" ]; then
  echo "typenet: no MobileNetV2 weights under $DATA/weights; downloading them"
  need_packages "${TYPENET_DOWNLOAD_PACKAGES[@]}"
  bash "$ROOT/scripts/download_weights.sh" "$DATA/weights"
fi
TYPENET_DATA=$(cd "$DATA" && pwd)
export TYPENET_DATA

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
