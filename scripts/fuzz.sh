#!/usr/bin/env bash
# Fuzz typenet's readers of outside bytes with libFuzzer (Debian's clang 14, with
# AddressSanitizer and UndefinedBehaviorSanitizer). One target per reader, each
# tests/fuzz/fuzz_TARGET.cpp; a target accepts a valid result or a typenet::error, and
# anything else (another exception, a crash, a sanitizer report, a hang, a leak, running
# out of memory) is a finding.
#
#   scripts/fuzz.sh --list              # the targets, one per line
#   scripts/fuzz.sh TARGET SECONDS      # build (cached in build/fuzz) and fuzz TARGET for SECONDS
#   scripts/fuzz.sh all SECONDS         # every target in turn, SECONDS each
#   scripts/fuzz.sh --build [TARGET]    # only build (all targets by default)
#   scripts/fuzz.sh --corpus            # regenerate the seeds tests/fuzz/corpus/* (tools/make_fuzz_corpus.cpp)
#
# The fuzzer starts from the seeds in tests/fuzz/corpus/TARGET (read only) and keeps what
# it finds in build/fuzz/corpus/TARGET, so a later run continues where the last one
# stopped. A crashing input is saved as build/fuzz/artifacts/TARGET/crash-* (or timeout-*,
# leak-*, oom-*); replay it with  build/fuzz/bin/fuzz_TARGET FILE.  The full log is
# build/fuzz/logs/TARGET.log. Exit status: 0 when nothing was found, non-zero otherwise.
#
# Environment: FUZZ_DIR (build/fuzz), FUZZ_CXX (clang++-14), FUZZ_TIMEOUT (seconds one
# input may take before it counts as a hang, 10), FUZZ_RSS_MB (memory limit, also the
# largest single allocation, 2048), FUZZ_ARGS (more libFuzzer flags, e.g. "-max_len=65536").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

TARGETS=(image npy npz tflite archive model labels)

FUZZ_DIR=${FUZZ_DIR:-$ROOT/build/fuzz}
FUZZ_CXX=${FUZZ_CXX:-clang++-14}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_ARGS=${FUZZ_ARGS:-}
# No OpenMP (the pragmas compile to nothing): deterministic, single-threaded runs.
CXXFLAGS_FUZZ=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=all -Wall -Wextra -I"$ROOT/include" -I"$ROOT/tests/fuzz")

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

is_target() {
  local t
  for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

need_tools() {
  . "$ROOT/scripts/lib/deps.sh"
  need_packages clang-14 libclang-rt-14-dev zlib1g-dev libxtensor-dev libxsimd-dev libstb-dev
}

# Build build/fuzz/bin/fuzz_$1 unless it is newer than every file it was compiled from
# (the compiler's dependency list) and was built with the same flags.
build_target() {
  local t=$1 src="$ROOT/tests/fuzz/fuzz_$1.cpp" bin="$FUZZ_DIR/bin/fuzz_$1"
  local flags="$FUZZ_CXX ${CXXFLAGS_FUZZ[*]}"
  mkdir -p "$FUZZ_DIR/bin"
  if [ -x "$bin" ] && [ -f "$bin.d" ] && [ "$(cat "$bin.flags" 2>/dev/null)" = "$flags" ]; then
    local dep stale=0
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$bin.d"); do
      if [ ! -e "$dep" ] || [ "$dep" -nt "$bin" ]; then stale=1; break; fi
    done
    [ $stale = 0 ] && return 0
  fi
  echo "fuzz: building fuzz_$t" >&2
  "$FUZZ_CXX" "${CXXFLAGS_FUZZ[@]}" -MMD -MF "$bin.d" "$src" -o "$bin.tmp" -lz
  mv "$bin.tmp" "$bin"
  printf '%s' "$flags" >"$bin.flags"
}

# Fuzz target $1 for $2 seconds and print a summary; returns libFuzzer's status.
run_target() {
  local t=$1 secs=$2 bin="$FUZZ_DIR/bin/fuzz_$1" log="$FUZZ_DIR/logs/$1.log"
  mkdir -p "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/artifacts/$t" "$FUZZ_DIR/logs"
  local args=(-max_total_time="$secs" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB"
    -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$t/")
  [ -f "$ROOT/tests/fuzz/$t.dict" ] && args+=(-dict="$ROOT/tests/fuzz/$t.dict")
  # shellcheck disable=SC2206
  args+=($FUZZ_ARGS)
  echo "fuzz: running $t for $secs s (log: $log)" >&2
  local start status=0
  start=$(date +%s)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" "${args[@]}" "$FUZZ_DIR/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  local took=$(($(date +%s) - start))
  local runs speed rss last cov ft corp
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  if [ -z "$runs" ]; then runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1); fi
  printf 'fuzz %-8s %6s s  %10s execs  %6s exec/s  cov %5s  ft %6s  corpus %-12s peak %s MB  %s\n' \
    "$t" "$took" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" \
    "$([ $status = 0 ] && echo OK || echo "FINDING (status $status)")"
  if [ $status != 0 ]; then
    echo "---- end of $log ----" >&2
    grep -vE '^#[0-9]+' "$log" | tail -40 >&2
    ls -t "$FUZZ_DIR/artifacts/$t" 2>/dev/null | head -3 | sed "s|^|artifact: $FUZZ_DIR/artifacts/$t/|" >&2
  fi
  return $status
}

make_corpus() {
  # jpegtran (libjpeg-turbo-progs) makes the progressive and restart-marker JPEG seeds,
  # which stb_image_write cannot write.
  need_packages g++ libxtensor-dev libxsimd-dev libstb-dev zlib1g-dev libjpeg-turbo-progs
  local exe="$FUZZ_DIR/make_fuzz_corpus" img="$ROOT/tests/fuzz/corpus/image"
  mkdir -p "$FUZZ_DIR"
  g++ -std=c++20 -O1 -DTYPENET_SOURCE_DIR="\"$ROOT\"" -I"$ROOT/include" -I"$ROOT/tests" \
    "$ROOT/tools/make_fuzz_corpus.cpp" -o "$exe" -lz
  "$exe" "$ROOT/tests/fuzz/corpus"
  # Each seed written beside its name, then renamed: a failed jpegtran leaves no empty seed.
  jpeg_seed() {  # jpeg_seed OUT jpegtran-args...
    local out=$1
    shift
    jpegtran "$@" >"$out.tmp" && mv "$out.tmp" "$out" || { rm -f "$out.tmp"; return 1; }
  }
  jpeg_seed "$img/progressive_restart_16x16.jpg" -progressive -restart 1 "$img/color_16x16.jpg"
  jpeg_seed "$img/progressive_gray_8x8.jpg" -progressive "$img/gray_8x8.jpg"
  jpeg_seed "$img/restart_16x16.jpg" -restart 1B "$img/color_16x16.jpg"
}

[ $# -ge 1 ] || usage
case $1 in
  --list)
    printf '%s\n' "${TARGETS[@]}"
    ;;
  --build)
    need_tools
    if [ $# -ge 2 ]; then
      is_target "$2" || { echo "fuzz: unknown target '$2' (see --list)" >&2; exit 2; }
      build_target "$2"
    else
      for t in "${TARGETS[@]}"; do build_target "$t"; done
    fi
    ;;
  --corpus)
    . "$ROOT/scripts/lib/deps.sh"
    make_corpus
    ;;
  -h | --help)
    usage
    ;;
  *)
    [ $# -eq 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
    if [ "$1" = all ]; then
      todo=("${TARGETS[@]}")
    else
      is_target "$1" || { echo "fuzz: unknown target '$1' (see --list)" >&2; exit 2; }
      todo=("$1")
    fi
    need_tools
    for t in "${todo[@]}"; do build_target "$t"; done
    failed=0
    for t in "${todo[@]}"; do run_target "$t" "$2" || failed=1; done
    exit $failed
    ;;
esac
