#!/bin/sh
# usage: check_arguments.sh CUSTOM_MODEL ROCK_PAPER_SCISSORS FINE_TUNE
# The example programs refuse a bad command line before doing any work: an unknown
# option, a missing value, or a number that is not one ("abc", "5x", "-1", "") gives
# one line on stderr and exit status 2. Needs no data.
set -u
fail=0
expect2() {  # description, command...
  what=$1; shift
  err=$("$@" 2>&1 >/dev/null)
  status=$?
  if [ $status -ne 2 ]; then
    echo "FAIL: $what: exit status $status, expected 2 ($*)"
    fail=1
  elif [ -z "$err" ]; then
    echo "FAIL: $what: nothing on stderr ($*)"
    fail=1
  else
    echo "ok: $what: $(echo "$err" | head -n 1)"
  fi
}
for bin in "$@"; do
  name=$(basename "$bin")
  expect2 "$name unknown option" "$bin" --no-such-option
  expect2 "$name missing value" "$bin" --epochs
  for v in abc 5x -1 ""; do
    expect2 "$name --epochs '$v'" "$bin" --epochs "$v"
  done
  expect2 "$name --seed 1.5" "$bin" --seed 1.5
done
[ $fail -eq 0 ] && echo "ok: every bad command line refused with status 2"
exit $fail
