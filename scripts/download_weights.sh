#!/usr/bin/env bash
# Download ImageNet-pretrained MobileNetV2 weights for typenet when ../shared is absent.
#
#   scripts/download_weights.sh [DEST]
#
# DEST defaults to $TYPENET_DATA/weights when TYPENET_DATA is set, else ./weights.
# Fetches Google's post-training-quantized MobileNetV2 1.0/224 (.tflite, Apache-2.0,
# from the google-coral/test_data repository) and the ImageNet labels into
# DEST/tflite/ and DEST/. typenet uses the float TF-slim .npy weights of
# DEST/mobilenet_v2_1.0_224/ when present and falls back to this .tflite model
# (weights dequantized from int8) otherwise. Idempotent; never leaves a partial file.
set -euo pipefail
BASE=${TYPENET_WEIGHTS_URL:-https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41}
dest=${1:-}
if [ -z "$dest" ]; then
  if [ -n "${TYPENET_DATA:-}" ]; then dest=$TYPENET_DATA/weights; else dest=./weights; fi
fi
say() { printf 'download_weights: %s\n' "$*"; }
fail() { printf 'download_weights: error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$dest/tflite" 2>/dev/null || fail "cannot create $dest/tflite"
fetch() {
  local url=$1 out=$2
  [ -s "$out" ] && { say "$out is already there"; return 0; }
  rm -f "$out.part"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 2 --connect-timeout 20 -sS -o "$out.part" "$url" && mv "$out.part" "$out" && return 0
  elif command -v wget >/dev/null 2>&1; then
    wget -q --tries=2 --timeout=20 -O "$out.part" "$url" && mv "$out.part" "$out" && return 0
  else
    fail "neither curl nor wget is installed (apt-get install curl)"
  fi
  rm -f "$out.part"
  fail "could not download $url (no network?). Fetch it by hand and put it at $out"
}
fetch "$BASE/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$dest/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite"
fetch "$BASE/imagenet_labels.txt" "$dest/imagenet_labels.txt"
say "weights in $dest"
