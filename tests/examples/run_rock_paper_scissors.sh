#!/bin/sh
# usage: run_rock_paper_scissors.sh EXAMPLE_BINARY CHECK_OUTPUTS_BINARY OUT_DIR
# The CI test of the reference workflow on the real data: runs the example (5 epochs;
# the frozen-feature cache makes training after the feature pass take about a second)
# and checks every output and a test accuracy >= 98%. Exits 77 without the data.
set -u
example=$1 check=$2 out=$3
data=${TYPENET_DATA:-../shared}
if [ ! -d "$data/data/rock_paper_scissors" ] || [ ! -d "$data/weights" ]; then
  echo "SKIPPED: $data/data/rock_paper_scissors or $data/weights not found (set TYPENET_DATA)"
  exit 77
fi
rm -rf "$out"
"$example" --data "$data" --out "$out" --epochs 5 --seed 42 || { echo "FAIL: the example exited with $?"; exit 1; }
"$check" "$out" 0.98
