#!/usr/bin/env bash
# MobileNetV2 speed: typenet against ONNX Runtime and PyTorch, measured in one run.
#
#   benchmarks/compare.sh                 # about 4 minutes on a quiet machine, longer on a busy one
#   REPS=7 benchmarks/compare.sh          # more repetitions per figure (default 5)
#   PEERS=/path/to/shared/peers benchmarks/compare.sh
#
# Builds bench_mobilenet (release, -march=native), then runs, alternately:
# typenet, the peers' kit (../shared/peers/peers.sh: ONNX Runtime 1.30 through npm,
# PyTorch 1.13 from Debian with OpenBLAS, and the CPU's fp32 FMA peak), typenet again.
# Where the kit gives no FMA peak (its probe is written for AVX-512), benchmarks/fma_peak
# measures it for the SIMD architecture typenet is compiled for.
# typenet's figures are the medians over both of its runs' repetitions. Prints a table
# with the ratios, and as its LAST line one JSON object:
#   {"typenet": {...}, "onnxruntime": {...}, "pytorch": {...}, "peak": {...}, "ratios": {...}}
# each tool with the medians b1_t1_ms, b1_t2_ms, b64_t2_img_s, train_b32_t2_img_s (null where
# a tool does not measure it). The machine is shared: compare ratios from one run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/deps.sh"
need_packages "${TYPENET_BUILD_PACKAGES[@]}" python3
DATA=${TYPENET_DATA:-$ROOT/../shared}
PEERS=${PEERS:-$DATA/peers}
REPS=${REPS:-5}
BUILD=${BUILD_DIR:-$ROOT/build/bench}
OUT=${OUT:-$ROOT/out/bench}
mkdir -p "$OUT"
rm -f "$OUT/peak.json"
log() { echo "[compare $(date +%H:%M:%S)] $*" >&2; }

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTYPENET_BUILD_TESTS=OFF -DTYPENET_BUILD_EXAMPLES=OFF \
  -DTYPENET_BUILD_CLI=OFF -DTYPENET_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target bench_mobilenet fma_peak >/dev/null

peak=0
if [ -f "$OUT/peers.json" ] && [ -n "${REUSE_PEERS:-}" ]; then
  log "reusing $OUT/peers.json"
fi
log "typenet, first run"
"$BUILD/benchmarks/bench_mobilenet" --reps "$REPS" 2>"$OUT/typenet1.txt" | tail -1 >"$OUT/typenet1.json"
if [ -x "$PEERS/peers.sh" ] && [ -z "${REUSE_PEERS:-}" ]; then
  log "peers (ONNX Runtime, PyTorch, FMA peak): $PEERS/peers.sh"
  REPS=$REPS "$PEERS/peers.sh" 2>"$OUT/peers.log" | tee "$OUT/peers.txt" | tail -1 >"$OUT/peers.json" || log "peers.sh failed: see $OUT/peers.log"
elif [ ! -x "$PEERS/peers.sh" ]; then
  log "no peer kit at $PEERS: typenet alone"
  echo '{}' >"$OUT/peers.json"
fi
peak=$(python3 -c "import json,sys; d=json.load(open('$OUT/peers.json')); print(d.get('peak',{}).get('fma_gflops_2t',0) or 0)" 2>/dev/null || echo 0)
if [ "$peak" = 0 ]; then
  # The kit's probe did not measure it (it is written for AVX-512): measure the peak of
  # the architecture typenet is compiled for with typenet's own probe, and report it as
  # the run's peak (its "source" says whose it is).
  log "peer kit gave no FMA peak: benchmarks/fma_peak"
  if "$BUILD/benchmarks/fma_peak" 2>>"$OUT/typenet1.txt" >"$OUT/peak.json"; then
    peak=$(python3 -c "import json; print(json.load(open('$OUT/peak.json'))['fma_gflops_2t'])")
  fi
fi
log "typenet, second run (FMA peak for 2 threads: $peak GFLOP/s)"
"$BUILD/benchmarks/bench_mobilenet" --reps "$REPS" --peak "$peak" 2>"$OUT/typenet2.txt" | tail -1 >"$OUT/typenet2.json"
cat "$OUT/typenet2.txt" >&2

[ -f "$OUT/peak.json" ] || echo '{}' >"$OUT/peak.json"
python3 - "$OUT/typenet1.json" "$OUT/typenet2.json" "$OUT/peers.json" "$OUT/peak.json" <<'PY'
import json, statistics, sys
t1, t2 = (json.load(open(p)) for p in sys.argv[1:3])
try:
    peers = json.load(open(sys.argv[3]))
except Exception:
    peers = {}
peak = dict(peers.get("peak") or {})
if peak:
    peak["source"] = "peer kit"
else:
    try:
        own = json.load(open(sys.argv[4]))
        peak = {k: own[k] for k in ("fma_gflops_1t", "fma_gflops_2t", "arch")}
        peak["source"] = "typenet fma_peak"
    except Exception:
        peak = {}
def merged(key, field):
    vals = [t[key]["median"] for t in (t1, t2) if key in t]
    return statistics.median(vals) if vals else None
def ms(key):
    v = merged(key, "median")
    return round(v, 3) if v is not None else None
def ips(key, n):
    v = merged(key, "median")
    return round(n / v, 2) if v else None
typenet = {
    "b1_t1_ms": ms("b1_t1"), "b1_t2_ms": ms("b1_t2"),
    "b64_t2_img_s": ips("b64_t2_seconds", 64), "train_b32_t2_img_s": ips("train_b32_t2_seconds", 32),
    "peak_rss_mb_b64_inference": t2.get("peak_rss_mb_after_b64_inference"), "simd_arch": t2.get("simd_arch"),
}
ort = peers.get("onnxruntime", {})
pt = peers.get("pytorch", {})
def ratio(a, b, higher_is_better):
    if a is None or b is None or not b or not a:
        return None
    return round(a / b, 3) if higher_is_better else round(b / a, 3)
ratios = {}
for peer, d in (("onnxruntime", ort), ("pytorch", pt)):
    ratios[peer] = {
        "b1_t1_speedup": ratio(typenet["b1_t1_ms"], d.get("b1_t1_ms"), False),
        "b1_t2_speedup": ratio(typenet["b1_t2_ms"], d.get("b1_t2_ms"), False),
        "b64_t2_speedup": ratio(typenet["b64_t2_img_s"], d.get("b64_t2_img_s"), True),
        "train_b32_t2_speedup": ratio(typenet["train_b32_t2_img_s"], d.get("train_b32_t2_img_s"), True),
    }
print("%-12s %10s %10s %14s %20s" % ("tool", "b1_t1_ms", "b1_t2_ms", "b64_t2_img_s", "train_b32_t2_img_s"))
for name, d in (("typenet", typenet), ("onnxruntime", ort), ("pytorch", pt)):
    print("%-12s %10s %10s %14s %20s" % (name, d.get("b1_t1_ms"), d.get("b1_t2_ms"), d.get("b64_t2_img_s"), d.get("train_b32_t2_img_s")))
print("speedups of typenet (>1: typenet faster):", json.dumps(ratios))
out = {"typenet": typenet, "onnxruntime": {k: ort.get(k) for k in ("b1_t1_ms", "b1_t2_ms", "b64_t2_img_s", "train_b32_t2_img_s")},
       "pytorch": {k: pt.get(k) for k in ("b1_t1_ms", "b1_t2_ms", "b64_t2_img_s", "train_b32_t2_img_s")},
       "peak": peak, "ratios": ratios}
print(json.dumps(out))
PY
