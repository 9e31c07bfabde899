#!/bin/sh
# usage: check_cli.sh TYPENET_BINARY WORK_DIR
# The typenet command-line tool: bad arguments give one line and exit status 2; on a
# small folder of real images (20 per class from the rock-paper-scissors test split),
# train (with fine-tuning) -> info -> evaluate -> predict --json, checking what each
# prints. Exits 77 (skipped) without the shared data.
set -u
bin=$1 work=$2
fail=0
expect() {  # expect STATUS PATTERN command...
  want=$1 pattern=$2; shift 2
  out=$("$@" 2>&1); got=$?
  if [ "$got" != "$want" ]; then echo "FAIL: '$*' exited $got, expected $want: $out"; fail=1; return; fi
  if ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then echo "FAIL: '$*' output lacks /$pattern/: $out"; fail=1; return; fi
  echo "ok: $*"
}
expect 2 "train needs exactly one DATA_DIR" "$bin" train
expect 2 "unknown option --bogus" "$bin" train x --bogus
expect 2 "--epochs: \"x\" is not a whole number" "$bin" train x --out m --epochs x
expect 2 "--epochs: \"-1\" is not a whole number" "$bin" train x --out m --epochs -1
expect 2 "--epochs: \"5x\" is not a whole number" "$bin" train x --out m --epochs 5x
expect 2 "is not a whole number" "$bin" train x --out m --epochs 99999999999999999999999
expect 2 "--fine-tune-from: .*no layer named \"expanded_conv12\"" "$bin" train x --out m --fine-tune-from expanded_conv12
expect 2 "--fine-tune-from: block 17 is not one of" "$bin" train x --out m --fine-tune-from 17
expect 2 "--fine-tune-from: .*no layer named \"-1\"" "$bin" train x --out m --fine-tune-from -1
expect 2 "unknown command" "$bin" frobnicate
expect 1 "cannot open for reading" "$bin" info /nonexistent/model.tnet
data=${TYPENET_DATA:-../shared}
src=$data/data/rock_paper_scissors/test
if [ ! -d "$src" ] || [ ! -d "$data/weights" ]; then
  echo "SKIPPED: $src or $data/weights not found (set TYPENET_DATA)"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
rm -rf "$work"; mkdir -p "$work/images"
for c in rock paper scissors; do
  mkdir -p "$work/images/$c"
  ls "$src/$c" | head -20 | while read -r f; do ln -s "$src/$c/$f" "$work/images/$c/$f"; done
done
printf 'not an image' > "$work/images/rock/broken.png"
expect 1 "broken.png" "$bin" train "$work/images" --out "$work/m.tnet" --epochs 1
rm "$work/images/rock/broken.png"
expect 0 "saved .*m.tnet" "$bin" train "$work/images" --out "$work/m.tnet" --epochs 4 --val-split 0.25 \
  --fine-tune-from 15 --fine-tune-epochs 1 --seed 3
for f in history.csv loss.png loss.svg accuracy.png accuracy.svg confusion_matrix.png metrics.json; do
  [ -s "$work/m.tnet.report/$f" ] || { echo "FAIL: report $f missing"; fail=1; }
done
expect 0 "classes: +paper, rock, scissors" "$bin" info "$work/m.tnet"
expect 0 "fine_tune_from +15" "$bin" info "$work/m.tnet"
expect 0 "accuracy 0\.[89]|accuracy 1\.0" "$bin" evaluate "$work/m.tnet" "$work/images"
one=$(ls "$work/images/paper" | head -1)
expect 1 "\"label\": \"paper\"" "$bin" predict "$work/m.tnet" "$work/images/paper/$one" /nonexistent.png --json --top 3
[ $fail -eq 0 ] && echo "ok: typenet CLI"
exit $fail
