#!/bin/sh
# usage: check_classify_image.sh CLASSIFY_IMAGE_BINARY
# The acceptance check of examples/classify_image on the three photos of
# $TYPENET_DATA/images: top-1 is the table's of weights/README.md and the table's
# top-3 classes are all in the top-5; an unreadable image is named, the others are
# still classified, and the exit status is 1; missing weights are downloaded (from a
# file:// copy of the shared ones) and then used. Exits 77 (skipped) without the data.
set -u
bin=$1
data=${TYPENET_DATA:-../shared}
if [ ! -d "$data/images" ] || [ ! -d "$data/weights" ]; then
  echo "SKIPPED: $data/images or $data/weights not found (set TYPENET_DATA)"
  exit 77
fi
out=$("$bin" --json "$data/images/chelsea.png" "$data/images/coffee.png" /nonexistent/missing.png "$data/images/grace_hopper.bmp" 2>/tmp/classify_err.$$)
status=$?
err=$(cat /tmp/classify_err.$$); rm -f /tmp/classify_err.$$
echo "$out"
fail=0
[ $status -eq 1 ] || { echo "FAIL: exit status $status, expected 1 (one unreadable image)"; fail=1; }
echo "$err" | grep -q "/nonexistent/missing.png" || { echo "FAIL: the unreadable image is not named: $err"; fail=1; }
check() {  # photo top1 other1 other2
  line=$(echo "$out" | grep "\"$1\"")
  [ -n "$line" ] || { echo "FAIL: no result for $1"; fail=1; return; }
  echo "$line" | grep -q "\"top5\": \[{\"class\": $2," || { echo "FAIL: $1: top-1 is not $2"; fail=1; }
  for c in $3 $4; do
    echo "$line" | grep -q "\"class\": $c," || { echo "FAIL: $1: class $c not in the top-5"; fail=1; }
  done
}
check "$data/images/chelsea.png" 283 282 286
check "$data/images/coffee.png" 968 926 961
check "$data/images/grace_hopper.bmp" 653 668 401

# Without weights in --weights DIR: Google's PTQ model and the labels are downloaded
# there (here from a file:// "server" holding the shared copies, via TYPENET_WEIGHTS_URL),
# then used: the whole dequantized model puts the table's top-1 first for the coffee.
if command -v curl >/dev/null 2>&1; then
  work=$(mktemp -d)
  mkdir -p "$work/srv"
  ln -s "$(cd "$data/weights" && pwd)/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$work/srv/"
  ln -s "$(cd "$data/weights" && pwd)/imagenet_labels.txt" "$work/srv/"
  out=$(TYPENET_WEIGHTS_URL="file://$work/srv" "$bin" --json --weights "$work/w" "$data/images/coffee.png" 2>"$work/err")
  status=$?
  [ $status -eq 0 ] || { echo "FAIL: with downloaded weights: exit status $status: $(cat "$work/err")"; fail=1; }
  grep -q "downloading file://$work/srv/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$work/err" ||
    { echo "FAIL: no download reported: $(cat "$work/err")"; fail=1; }
  echo "$out" | grep -q '"top5": \[{"class": 968,' || { echo "FAIL: with downloaded weights, coffee's top-1 is not 968: $out"; fail=1; }
  [ -z "$(find "$work/w" -name '*.part*' -o -name '*.check')" ] || { echo "FAIL: temporaries left in $work/w"; fail=1; }
  # --no-download: the missing weights are an error naming the folder, nothing fetched.
  TYPENET_WEIGHTS_URL="file://$work/srv" "$bin" --no-download --weights "$work/none" "$data/images/coffee.png" >/dev/null 2>"$work/err2"
  status=$?
  [ $status -ne 0 ] && grep -q "$work/none" "$work/err2" && [ ! -e "$work/none" ] ||
    { echo "FAIL: --no-download with no weights: status $status: $(cat "$work/err2")"; fail=1; }
  [ $fail -eq 0 ] && echo "ok: missing weights downloaded, then used; --no-download refuses"
  rm -rf "$work"
else
  echo "FAIL: curl not installed (scripts/test.sh installs it)"; fail=1
fi
[ $fail -eq 0 ] && echo "ok: classify_image gives the table's answers"
exit $fail
