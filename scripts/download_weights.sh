#!/usr/bin/env bash
# Download ImageNet-pretrained MobileNetV2 weights for typenet when ../shared is absent.
#
#   scripts/download_weights.sh [DEST]
#
# DEST defaults to $TYPENET_DATA/weights when TYPENET_DATA is set, else ../shared/weights
# beside the checkout. Fetches Google's post-training-quantized MobileNetV2 1.0/224
# (.tflite, Apache-2.0, from the google-coral/test_data repository) and the ImageNet labels
# into DEST/tflite/ and DEST/. typenet uses the float TF-slim .npy weights of
# DEST/mobilenet_v2_1.0_224/ when present and falls back to this .tflite model (weights
# dequantized from int8) otherwise. Idempotent; never leaves a partial file, and a file
# that is not what it should be (a proxy's error page saved under the name, say) is
# refused and fetched again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${TYPENET_WEIGHTS_URL:-https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41}
if [ $# -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dest=${1:-}
if [ -z "$dest" ]; then
  if [ -n "${TYPENET_DATA:-}" ]; then dest=$TYPENET_DATA/weights; else dest=$ROOT/../shared/weights; fi
fi
say() { printf 'download_weights: %s\n' "$*"; }
fail() { printf 'download_weights: error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$dest/tflite" || fail "cannot create $dest/tflite"
if [ -t 2 ]; then CURL_PROGRESS=--progress-bar WGET_PROGRESS=--show-progress; else CURL_PROGRESS=-sS WGET_PROGRESS=; fi

# What each file must look like: a TFLite flatbuffer has the identifier "TFL3" at byte 4
# (the model is about 3.5 MB); the labels are 1001 lines, the first "background".
valid() {  # valid KIND FILE: prints the reason and fails when FILE is not a KIND
  local kind=$1 f=$2
  case $kind in
    tflite)
      [ "$(dd if="$f" bs=1 skip=4 count=4 2>/dev/null)" = TFL3 ] || { echo "no TFLite identifier (TFL3) at byte 4"; return 1; }
      [ "$(wc -c <"$f")" -gt 1000000 ] || { echo "only $(wc -c <"$f") bytes"; return 1; }
      ;;
    labels)
      [ "$(head -n 1 "$f" | tr -d '\r')" = background ] || { echo "the first line is not 'background'"; return 1; }
      [ "$(wc -l <"$f")" -ge 1000 ] || { echo "only $(wc -l <"$f") lines (1001 expected)"; return 1; }
      ;;
  esac
}

fetch() {  # fetch KIND URL FILE
  local kind=$1 url=$2 out=$3 why
  if [ -s "$out" ]; then
    if why=$(valid "$kind" "$out"); then say "$out is already there"; return 0; fi
    say "$out is not a valid $kind file ($why): fetching it again"
  fi
  say "downloading $url"
  rm -f "$out.part"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 2 --connect-timeout 20 $CURL_PROGRESS -o "$out.part" "$url" || { rm -f "$out.part"; fail "could not download $url (no network?). Fetch it by hand and put it at $out"; }
  elif command -v wget >/dev/null 2>&1; then
    wget -q $WGET_PROGRESS --tries=2 --timeout=20 -O "$out.part" "$url" || { rm -f "$out.part"; fail "could not download $url (no network?). Fetch it by hand and put it at $out"; }
  else
    fail "neither curl nor wget is installed (apt-get install ca-certificates curl)"
  fi
  if ! why=$(valid "$kind" "$out.part"); then
    rm -f "$out.part"
    fail "$url did not give a $kind file ($why): a proxy's page? Fetch it by hand and put it at $out"
  fi
  mv "$out.part" "$out"
}
fetch tflite "$BASE/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$dest/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite"
fetch labels "$BASE/imagenet_labels.txt" "$dest/imagenet_labels.txt"
say "weights in $dest"
