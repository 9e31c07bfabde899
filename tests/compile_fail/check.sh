#!/bin/sh
# usage: check.sh COMPILER SOURCE INCLUDE_DIR
# Passes when SOURCE fails to compile AND the compiler's messages match the
# extended regular expression written after "// EXPECT: " in SOURCE.
set -u
cxx=$1 src=$2 inc=$3
expect=$(sed -n 's|^// EXPECT: ||p' "$src" | head -1)
[ -n "$expect" ] || { echo "check.sh: $src has no '// EXPECT: ' line"; exit 2; }
out=$("$cxx" -std=c++20 -fsyntax-only -fopenmp -I"$inc" "$src" 2>&1)
status=$?
if [ $status -eq 0 ]; then
  echo "FAIL: $src compiled, but it must not"
  exit 1
fi
if printf '%s\n' "$out" | grep -Eq -- "$expect"; then
  echo "ok: $src is rejected with: $(printf '%s\n' "$out" | grep -E -m1 -- "$expect")"
  echo "($(printf '%s\n' "$out" | grep -c 'error') error lines in all)"
  exit 0
fi
echo "FAIL: $src was rejected, but no message matches /$expect/. Compiler said:"
printf '%s\n' "$out" | head -40
exit 1
