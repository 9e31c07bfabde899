#!/usr/bin/env bash
# usage: check_download.sh WORK_DIR
# scripts/download_data.sh and scripts/download_weights.sh against a local "server"
# (file:// URLs, no network): a whole download, an idempotent second run, and the
# failures that must leave nothing behind that could later pass for data: a proxy's
# page instead of a zip or a model, a zip short of images, no server at all.
# Exits 77 (skipped) without curl or python3 (which makes the zips).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${1:?usage: check_download.sh WORK_DIR}
command -v curl >/dev/null 2>&1 || { echo "SKIPPED: curl not installed"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIPPED: python3 not installed (makes the test zips)"; exit 77; }
rm -rf "$work"
mkdir -p "$work/srv" "$work/bad"
unset TYPENET_DATA
fail=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
# run OUTFILE CMD...: runs with stdout+stderr to OUTFILE, prints the status
run() { local out=$1; shift; "$@" >"$out" 2>&1; echo $?; }

# The server: rps.zip (840 images per class) and rps-test-set.zip (124), tiny files.
python3 - "$work" <<'PY'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
def make(name, folder, n, short=None):
    with zipfile.ZipFile(work / name, "w") as z:
        for cls in ("rock", "paper", "scissors"):
            count = n - 1 if cls == short else n
            for i in range(count):
                z.writestr(f"{folder}/{cls}/{cls}{i:03d}.png", b"not decoded here")
make("srv/rps.zip", "rps", 840)
make("srv/rps-test-set.zip", "rps-test-set", 124)
make("bad/rps.zip", "rps", 840, short="paper")            # one image short
(work / "bad/rps-test-set.zip").write_text("<html>proxy login</html>\n")  # not a zip
# weights: a file with the TFLite identifier, and the labels
(work / "srv/tf2_mobilenet_v2_1.0_224_ptq.tflite").write_bytes(b"\x1c\0\0\0TFL3" + bytes(1100000))
(work / "srv/imagenet_labels.txt").write_text("background\n" + "".join(f"class {i}\n" for i in range(1000)))
(work / "bad/tf2_mobilenet_v2_1.0_224_ptq.tflite").write_text("<html>proxy login</html>\n")
(work / "bad/imagenet_labels.txt").write_text("background\n")
PY
[ -f "$work/srv/rps.zip" ] || { echo "FAIL: could not make the test zips"; exit 1; }

leftovers() {  # leftovers DIR: no .part file, no zip, no unpacking folder
  [ -z "$(find "$1" \( -name '*.part' -o -name '*.zip' -o -name '.unpack.*' \) 2>/dev/null)" ]
}
count() { find "$1" -maxdepth 1 -type f | wc -l; }

# --- data
d=$work/data
check "--check fails on a missing folder" test "$(run "$work/o0" bash "$ROOT/scripts/download_data.sh" --check "$d")" = 1
st=$(run "$work/o1" env TYPENET_RPS_URL="file://$work/srv" bash "$ROOT/scripts/download_data.sh" "$d")
check "a whole download succeeds" test "$st" = 0
check "840 training and 124 test images per class" test "$(count "$d/rps/paper")/$(count "$d/rps-test-set/scissors")" = 840/124
check "no zip, .part or unpacking folder left" leftovers "$d"
check "--check passes on the result" test "$(run "$work/o2" bash "$ROOT/scripts/download_data.sh" --check "$d")" = 0
st=$(run "$work/o3" env TYPENET_RPS_URL="file:///nonexistent" bash "$ROOT/scripts/download_data.sh" "$d")
check "a second run needs no server" test "$st" = 0
check "and says it skipped both splits" test "$(grep -c 'is complete: skipping' "$work/o3")" = 2

b=$work/data-bad
st=$(run "$work/o4" env TYPENET_RPS_URL="file://$work/bad" bash "$ROOT/scripts/download_data.sh" "$b")
check "a zip one image short fails" test "$st" = 1
check "naming the zip and the count" grep -q "rps.zip does not hold 840 images" "$work/o4"
check "and leaves no rps folder" test ! -e "$b/rps"
check "and no unpacking folder" test -z "$(find "$b" -name '.unpack.*')"
rm -f "$b/rps.zip"
cp -r "$d/rps" "$b/rps"   # the train split present: the test split's page is the failure now
st=$(run "$work/o5" env TYPENET_RPS_URL="file://$work/bad" bash "$ROOT/scripts/download_data.sh" "$b")
check "a page instead of a zip fails" test "$st" = 1
check "saying what it got" grep -q "did not give a whole zip archive" "$work/o5"
check "and removes it" leftovers "$b"
st=$(run "$work/o6" env TYPENET_RPS_URL="file://$work/nowhere" bash "$ROOT/scripts/download_data.sh" "$b")
check "no server: fails" test "$st" = 1
check "naming where to put the zip by hand" grep -q "copy it to $b/rps-test-set.zip" "$work/o6"
check "--check fails on a partial dataset" test "$(run "$work/o7" bash "$ROOT/scripts/download_data.sh" --check "$b")" = 1

# --- weights
w=$work/weights
st=$(run "$work/o8" env TYPENET_WEIGHTS_URL="file://$work/srv" bash "$ROOT/scripts/download_weights.sh" "$w")
check "the weights download" test "$st" = 0
check "both files in place" test -s "$w/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" -a -s "$w/imagenet_labels.txt"
check "no .part left" leftovers "$w"
st=$(run "$work/o9" env TYPENET_WEIGHTS_URL="file:///nonexistent" bash "$ROOT/scripts/download_weights.sh" "$w")
check "a second run needs no server" test "$st" = 0

wb=$work/weights-bad
st=$(run "$work/o10" env TYPENET_WEIGHTS_URL="file://$work/bad" bash "$ROOT/scripts/download_weights.sh" "$wb")
check "a page instead of a model fails" test "$st" = 1
check "saying why" grep -q "did not give a tflite file (no TFLite identifier" "$work/o10"
check "and leaves no model file" test ! -e "$wb/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite"
check "nor a .part" leftovers "$wb"
# A page saved under the model's name earlier (by another tool) is fetched again.
mkdir -p "$wb/tflite"
cp "$work/bad/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$wb/tflite/"
cp "$work/bad/imagenet_labels.txt" "$wb/"
st=$(run "$work/o11" env TYPENET_WEIGHTS_URL="file://$work/srv" bash "$ROOT/scripts/download_weights.sh" "$wb")
check "invalid files already there are replaced" test "$st" = 0
check "the model now valid" cmp -s "$wb/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$work/srv/tf2_mobilenet_v2_1.0_224_ptq.tflite"
check "the labels now valid" cmp -s "$wb/imagenet_labels.txt" "$work/srv/imagenet_labels.txt"
check "saying why it refetched" grep -q "is not a valid labels file (only 1 lines" "$work/o11"

if [ $fail -ne 0 ]; then
  for f in "$work"/o*; do echo "--- $f"; cat "$f"; done
  exit 1
fi
echo "download scripts: all checks passed"
