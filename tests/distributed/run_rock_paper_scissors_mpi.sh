#!/bin/sh
# usage: run_rock_paper_scissors_mpi.sh NP EXAMPLE_BINARY OUT_DIR [EXAMPLE ARGS...]
# The reference workflow on the real data, data-parallel on NP processes: runs the MPI
# example and checks its outputs and a test accuracy of at least 97%. Exits 77
# (skipped) without the data or without mpirun.
set -u
np=$1 example=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
data=${TYPENET_DATA:-../shared}
if [ ! -d "$data/data/rock_paper_scissors" ] || [ ! -d "$data/weights" ]; then
  echo "SKIPPED: $data/data/rock_paper_scissors or $data/weights not found (set TYPENET_DATA)"
  exit 77
fi
rm -rf "$out"
sh "$here/run_mpi.sh" "$np" "$example" --data "$data" --out "$out" "$@"
status=$?
[ $status -eq 77 ] && exit 77
[ $status -eq 0 ] || { echo "FAIL: the example exited with $status"; exit 1; }
for f in history.csv loss.png accuracy.png confusion_matrix.png metrics.json model.tnet; do
  [ -s "$out/$f" ] || { echo "FAIL: $out/$f is missing or empty"; exit 1; }
done
grep -q "\"processes\": $np," "$out/metrics.json" || { echo "FAIL: metrics.json does not say $np processes"; exit 1; }
acc=$(sed -n 's/.*"test_accuracy": \([0-9.e+-]*\).*/\1/p' "$out/metrics.json")
awk -v a="$acc" 'BEGIN { exit !(a + 0 >= 0.97) }' || { echo "FAIL: test accuracy $acc < 0.97"; exit 1; }
echo "OK: $np processes, test accuracy $acc"
