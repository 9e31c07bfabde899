/// @file kernels/depthwise.hpp
/// Depthwise 2-D convolution over NHWC tensors (channel multiplier 1): forward with a
/// fused epilogue, and the input and weight gradients.
///
/// Weights are `[kh][kw][c]`. The kernels work directly on NHWC, vectorised over
/// channels (the channel tail uses masked loads), one output row at a time:
/// - rows above / below the input point at a shared row of zeros, and output columns
///   whose window is inside the input (the interior) run without any test; only the
///   few border columns check each tap;
/// - 3x3 kernels (MobileNetV2) keep the nine weight vectors in registers and compute
///   two output rows at once (they share input rows); other kernel sizes use the
///   same code reading the weights from L1.
/// - Inputs too large for the caches are prefetched a block of rows ahead, and large
///   aligned outputs are written with non-temporal stores.
/// - The input gradient is a forward pass of the flipped kernel for stride 1, a
///   single sweep per row for 3-wide kernels with stride 2, a generic gather otherwise.
/// Threads split the output rows (n x oh) statically; the weight gradient sums fixed
/// chunks of rows into separate partials and adds them in chunk order. Every result
/// is therefore independent of the thread count, bit for bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/function_ref.hpp"
#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/row_consumer.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {
namespace detail {

/// Largest kernel height the depthwise kernels accept.
inline constexpr std::size_t max_kernel = 64;

/// Full-vector (`Full`) or partial (`n` lanes) unaligned load.
template <bool Full>
TYPENET_INLINE vfloat ldv(const float* p, std::size_t n) noexcept {
    if constexpr (Full) {
        (void)n;
        return vfloat::load_unaligned(p);
    } else {
        return load_partial(p, n);
    }
}

/// Full-vector (`Full`) or partial (`n` lanes) unaligned store.
template <bool Full>
TYPENET_INLINE void stv(float* p, const vfloat& v, std::size_t n) noexcept {
    if constexpr (Full) {
        (void)n;
        v.store_unaligned(p);
    } else {
        store_partial(p, v, n);
    }
}

/// The epilogue of a channel-vectorised convolution (bias is the accumulator's start).
struct ChannelEpilogue {
    const float* bias = nullptr;
    const float* residual = nullptr;  ///< at pixel 0 of the output (pixel stride `ldr`)
    std::size_t ldr = 0;
    bool accumulate = false;
    bool clamp = false;
    bool stream = false;  ///< full vectors stored non-temporally (large, aligned output)
    bool prefetch = false;  ///< prefetch the next rows' input (input streams from memory)
    bool cold = false;      ///< input and output do not fit in L2 together (`dw_data_cold`)
    float lo = -INFINITY, hi = INFINITY;

    ChannelEpilogue() = default;
    ChannelEpilogue(const Epilogue& e, std::size_t c)
        : bias(e.bias), residual(e.residual), ldr(e.ldr ? e.ldr : c), accumulate(e.accumulate),
          clamp(e.clamps()), lo(e.lo), hi(e.hi) {}
};

/// Do a depthwise layer's input and output together exceed the L2 cache? Then its data
/// comes from L3 or memory, and stride 1 takes the channels-inside interior
/// (`dw_interior_channels`) on every machine (see there).
inline bool dw_data_cold(const ConvGeometry& g) noexcept {
    return (g.input_size() + g.output_pixels() * g.c) * sizeof(float) > l2_cache_bytes();
}

/// Flags for a layer whose input is read from its tensor (not from a cache-sized ring or
/// staging buffer): prefetch its next rows when it is large, and `cold` (`dw_data_cold`).
inline void dw_input_in_memory(ChannelEpilogue& e, const ConvGeometry& g) noexcept {
    e.prefetch = g.input_size() * sizeof(float) >= (std::size_t(8) << 20);
    e.cold = dw_data_cold(g);
}

/// Finish one output vector: accumulate, residual, clamp, store.
template <bool Full>
TYPENET_INLINE void finish_channels(vfloat a, float* y, const float* res, const ChannelEpilogue& e,
                                    const vfloat& lo, const vfloat& hi, std::size_t n) noexcept {
    if (e.accumulate) a += ldv<Full>(y, n);
    if (res) a += ldv<Full>(res, n);
    if (e.clamp) a = clamp(a, lo, hi);
    if constexpr (Full) {
        if (e.stream) return store_stream(y, a);
    }
    stv<Full>(y, a, n);
}

/// Output columns [lo, hi) whose whole window lies inside the input columns.
struct Interior {
    std::size_t lo, hi;
};

/// The interior columns of an axis: input extent `in`, kernel `k`, stride `s`, padding
/// `pad`, output extent `out`.
inline Interior interior(std::size_t in, std::size_t k, std::size_t s, std::size_t pad, std::size_t out) noexcept {
    std::size_t lo = std::min(out, (pad + s - 1) / s);
    std::size_t hi = in + pad >= k ? std::min(out, (in + pad - k) / s + 1) : 0;
    if (hi < lo) hi = lo;
    return {lo, hi};
}

/// Software prefetch spread over a row sweep: `lines` cache lines from `p`, `per_iter`
/// of them per output column (used when the input streams from memory).
struct RowPrefetch {
    const char* p = nullptr;
    std::size_t lines = 0, per_iter = 0;

    /// Issue the share of `cols` output columns starting `col` columns into the sweep.
    void issue(std::size_t col, std::size_t cols) const noexcept {
        if (!p) return;
        const std::size_t l0 = std::min(lines, col * per_iter), l1 = std::min(lines, (col + cols) * per_iter);
        if (l1 > l0) prefetch_span(p, l0 * 64, (l1 - l0) * 64);
    }
};

/// The prefetch for a block of `rb` output rows starting at `oy` of an image whose
/// input starts at `ximg`: the input rows the next block needs and this one does not.
inline RowPrefetch next_rows_prefetch(const ConvGeometry& g, const float* ximg, std::size_t oy, std::size_t rb,
                                      Interior in) noexcept {
    RowPrefetch pf;
    if (in.hi <= in.lo || oy + 2 * rb > g.oh) return pf;
    const std::size_t cur_end = (oy + rb - 1) * g.sh + g.kh;  // padded row index (exclusive)
    const std::size_t next_end = (oy + 2 * rb - 1) * g.sh + g.kh;
    const std::size_t first = std::max(cur_end, (oy + rb) * g.sh);
    const std::ptrdiff_t a = std::ptrdiff_t(first) - std::ptrdiff_t(g.pad_top);
    const std::ptrdiff_t b =
        std::min<std::ptrdiff_t>(std::ptrdiff_t(next_end) - std::ptrdiff_t(g.pad_top), std::ptrdiff_t(g.h));
    if (a < 0 || b <= a) return pf;
    pf.p = reinterpret_cast<const char*>(ximg + std::size_t(a) * g.w * g.c);
    pf.lines = std::size_t(b - a) * g.w * g.c * sizeof(float) / 64;
    pf.per_iter = ceil_div(pf.lines, in.hi - in.lo);
    return pf;
}

/// Output columns the 3x3 depthwise interiors compute per step.
inline constexpr std::size_t dw_cols = 4;

/// Output columns [lo, hi) already computed for every full channel vector; nothing is
/// `{in.lo, in.lo}`, so the columns left are [0, lo) and [hi, ow) either way.
struct ColumnRange {
    std::size_t lo, hi;
};

/// The distinct input rows of `RB` consecutive output rows of a 3x3 stride-`S` kernel
/// (`xr[b * 3 + i]` as in `dw_forward_vec`): row q is kernel row q of output row 0, the
/// last ones kernel rows q - (RB - 1) * S of the last output row.
template <std::size_t S, int RB>
TYPENET_INLINE void dw_distinct_rows(const float* const* xr, const float** rp) noexcept {
#pragma GCC unroll 8
    for (std::size_t q = 0; q < std::size_t(RB - 1) * S + 3; ++q)
        rp[q] = q < 3 ? xr[q] : xr[std::size_t(RB - 1) * 3 + q - std::size_t(RB - 1) * S];
}

/// One step of a 3x3 stride-`S` depthwise interior: `OX` output columns of `RB`
/// rows over one full channel vector (input column `Pad` of the step, if any, lies in
/// the padding and is skipped), the first column at input offset `base` (floats,
/// the vector's first channel included) of every row in `rp` and at the pointers `yr`
/// (one per output row); `wv` the vector's nine taps, `b0` its bias. Every input
/// vector is loaded once and multiplied into each output it feeds; each output still
/// adds its taps to the bias in row-major (i, j) order, so its value is bit for bit the
/// one-column loop's. The epilogue is at most a clamp to [lo, hi] (`clamps`). Full
/// channel vectors only (a partial last vector keeps the one-column loop): each
/// instantiation is large, and compile time counts (the sanitizer build especially).
template <std::size_t S, int RB, std::size_t OX = dw_cols, int Pad = -1>
TYPENET_INLINE void dw_cols_step(const float* const* rp, const vfloat* wv, const vfloat& b0, float* const* yr,
                                 bool clamps, const vfloat& lo, const vfloat& hi, std::size_t C,
                                 std::ptrdiff_t base) noexcept {
    constexpr std::size_t NR = std::size_t(RB - 1) * S + 3, NC = (OX - 1) * S + 3;
    vfloat a[RB][OX];
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b)
#pragma GCC unroll 4
        for (std::size_t o = 0; o < OX; ++o) a[b][o] = b0;
#pragma GCC unroll 8
    for (std::size_t q = 0; q < NR; ++q) {
#pragma GCC unroll 12
        for (std::size_t c = 0; c < NC; ++c) {
            if (int(c) == Pad) continue;
            // Input row q feeds kernel row i = q - b * S of output row b; input column c
            // feeds kernel column j = c - o * S of output column o.
            const vfloat x = vfloat::load_unaligned(rp[q] + (base + std::ptrdiff_t(c * C)));
#pragma GCC unroll 4
            for (std::size_t b = 0; b < std::size_t(RB); ++b) {
                if (q < b * S || q - b * S > 2) continue;
#pragma GCC unroll 4
                for (std::size_t o = 0; o < OX; ++o) {
                    if (c < o * S || c - o * S > 2) continue;
                    a[b][o] = xsimd::fma(x, wv[(q - b * S) * 3 + (c - o * S)], a[b][o]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b)
#pragma GCC unroll 4
        for (std::size_t o = 0; o < OX; ++o)
            (clamps ? clamp(a[b][o], lo, hi) : a[b][o]).store_unaligned(yr[b] + o * C);
}

/// The interior columns [in.lo, in.hi) of a stride-1 3x3 depthwise sweep over the full
/// channel vector at c0 of `RB` consecutive output rows, `dw_cols` columns per step, the
/// weights held in registers. Returns the first column left. Not inlined: inlined, it
/// slowed the one-column loop of short rows (7x7x960). Machines with 32 vector registers
/// only, and data in L2: with 16 registers, or data beyond L2 (`ChannelEpilogue::cold`),
/// stride 1 takes `dw_interior_channels` (see there).
template <int RB>
__attribute__((noinline)) std::size_t dw_interior_s1(const float* const* xr, const float* wt, const float* bias,
                                                     float* const* yr, bool clamps, float lo_, float hi_, Interior in,
                                                     std::size_t C, std::size_t pl, std::size_t c0,
                                                     RowPrefetch pf) noexcept {
    vfloat wv[9];
#pragma GCC unroll 9
    for (std::size_t t = 0; t < 9; ++t) wv[t] = vfloat::load_unaligned(wt + t * C + c0);
    const vfloat b0 = bias ? vfloat::load_unaligned(bias + c0) : vfloat(0.0f), lo(lo_), hi(hi_);
    const float* rp[RB + 2];
    dw_distinct_rows<1, RB>(xr, rp);
    // Walk the rows (`opaque_pointers`): six columns of four rows otherwise take 24
    // addresses of their own, kept on the stack. One core of a Xeon (AVX-512), batch 1,
    // medians of 61 interleaved calls (this and the change in `dw_channels_step`, old and
    // new kernels built side by side): 14x14x384 35.7 -> 38.0, 14x14x576 37.4 -> 40.4
    // GFLOP/s; the network's depthwise layers together 1.38 -> 1.36, 1.97 -> 1.88, 1.91
    // -> 1.81 ms in three runs (at batch 8, all but 7x7 beyond L2: 22.9 -> 23.2 ms, noise);
    // MobileNetV2 batch 1, one thread, 31 interleaved pairs: median paired ratio 0.987.
    float* yp[RB];
    for (int q = 0; q < RB + 2; ++q) rp[q] += (in.lo - pl) * C + c0;  // in.lo >= pl with stride 1
    for (int b = 0; b < RB; ++b) yp[b] = yr[b] + in.lo * C + c0;
    std::size_t ox = in.lo;
    for (; ox + dw_cols <= in.hi; ox += dw_cols) {
        pf.issue(ox - in.lo, dw_cols);
        opaque_pointers(rp);
        opaque_pointers(yp);
        dw_cols_step<1, RB>(rp, wv, b0, yp, clamps, lo, hi, C, 0);
        for (int q = 0; q < RB + 2; ++q) rp[q] += dw_cols * C;
        for (int b = 0; b < RB; ++b) yp[b] += dw_cols * C;
    }
    return ox;
}

/// `OX` output columns from column `ox` of a 3x3 stride-`S` depthwise sweep of `RB` rows
/// over every full channel vector (see `dw_interior_channels`); input column `Pad` of
/// the step (if any) is padding.
template <std::size_t S, int RB, std::size_t OX = dw_cols, int Pad = -1>
TYPENET_INLINE void dw_channels_step(const float* const* rp, const float* wt, const float* bias, float* const* yr,
                                     bool clamps, const vfloat& lo, const vfloat& hi, std::size_t C, std::size_t pl,
                                     std::size_t ox) noexcept {
    constexpr std::size_t W = simd_width, NR = std::size_t(RB - 1) * S + 3;
    // The rows walk along the channels (`opaque_pointers`, as in `dw_interior_s1`, where
    // the measurements are): stride 2 at batch 1 28x28x192 29.7 -> 30.8, 56x56x144 18.9 ->
    // 19.6 GFLOP/s. A step whose first input column is padding starts its pointers one
    // column on (never before a row).
    const std::ptrdiff_t skip = Pad == 0 ? std::ptrdiff_t(C) : 0;
    const std::ptrdiff_t col = (std::ptrdiff_t(ox * S) - std::ptrdiff_t(pl)) * std::ptrdiff_t(C) + skip;
    const float* p[NR];
    float* yp[RB];
    for (std::size_t q = 0; q < NR; ++q) p[q] = rp[q] + col;
    for (int b = 0; b < RB; ++b) yp[b] = yr[b] + ox * C;
    for (std::size_t c0 = 0; c0 + W <= C; c0 += W) {
        opaque_pointers(p);
        opaque_pointers(yp);
        vfloat wv[9];
#pragma GCC unroll 9
        for (std::size_t t = 0; t < 9; ++t) wv[t] = vfloat::load_unaligned(wt + t * C + c0);
        const vfloat b0 = bias ? vfloat::load_unaligned(bias + c0) : vfloat(0.0f);
        dw_cols_step<S, RB, OX, Pad>(p, wv, b0, yp, clamps, lo, hi, C, -skip);
        for (std::size_t q = 0; q < NR; ++q) p[q] += W;
        for (int b = 0; b < RB; ++b) yp[b] += W;
    }
}

/// The interior columns of a stride-`S` 3x3 depthwise sweep of `RB` consecutive output
/// rows over all C channels, `dw_cols` columns per step and the channel vectors inside,
/// the weights reloaded from L1 each step and the pixels read in memory order. Stride 2
/// shares fewer inputs between neighbouring columns, and this order measured faster than
/// a sweep per channel vector (6x112x96 41 -> 53, 28x28x192 42 -> 51 GFLOP/s). Stride 1
/// takes it too on 16-register machines, where the per-vector sweep (`dw_interior_s1`)
/// pays its setup (nine taps, a dozen row pointers) for every channel vector and, with
/// two rows, spills taps anyway: one core of an AMD EPYC (AVX2), batch 1, medians of
/// interleaved runs: 14x14x576 28 -> 37, 28x28x192 23-29 -> 27-37, 56x56x144 26-33 ->
/// 29-38, 7x7x960 27 -> 31 GFLOP/s; with `pf` (an input streaming from memory, its next
/// rows prefetched a share per step), block 0 of a training step (112x112x32, batch 32,
/// 2 threads) forward 22.4-24.4 -> 20.2-21.9 ms in six interleaved pairs. The interior
/// columns left over by the 4-column steps take a 2- and a 1-column step, and the two
/// border columns of SAME padding (one input column in the padding) a 1-column step
/// without that column, rather than the one-column loop per channel vector, which
/// reloads the nine taps for every vector and ran at half the interior's rate (a quarter
/// of 28x28x192's time for a seventh of its columns). Same machine, batch 1, medians of
/// in-process A/B runs: stride 1 56x56x144 32.0-33.9 -> 34.3-35.8, 28x28x192 28.0-30.6
/// -> 30.6-34.4, 14x14x576 28.1-30.2 -> 33.4-34.5, 7x7x960 20.1-21.5 -> 27.3-28.7;
/// stride 2 28x28x192 19.7-20.7 -> 22.1-22.7 GFLOP/s.
/// With 32 registers stride 1 takes it too when the layer's data does not fit in L2
/// (`ChannelEpilogue::cold`): it reads the input in memory order, which the hardware
/// prefetchers follow, where the per-vector sweep reads one vector per cache line.
/// One core of a Xeon with AVX-512 (2 MB of L2), medians of 15 interleaved calls, per-vector
/// sweep -> this: batch 64 112x112x32 18.7 -> 24.7, 56x56x144 13.6 -> 15.8, 28x28x192
/// 8.8 -> 11.4, 14x14x576 9.5 -> 13.3 GFLOP/s; batch 1 112x112x32 29.8 -> 42.8,
/// 56x56x144 19.5 -> 22.8; but batch 1 28x28x192 40.9 -> 37.8 and 14x14x576 47.6 -> 36.2
/// with the data in L2, where the per-vector sweep stays. The full channel vectors only:
/// [0, C / W * W). Returns the columns computed.
template <std::size_t S, int RB>
__attribute__((noinline)) ColumnRange dw_interior_channels(const float* const* xr, const float* wt, const float* bias,
                                                           float* const* yr, bool clamps, float lo_, float hi_,
                                                           Interior in, std::size_t C, std::size_t pl, std::size_t w,
                                                           std::size_t ow, RowPrefetch pf = {}) noexcept {
    const vfloat lo(lo_), hi(hi_);
    const float* rp[std::size_t(RB - 1) * S + 3];
    dw_distinct_rows<S, RB>(xr, rp);
    ColumnRange done{in.lo, in.lo};
    std::size_t ox = in.lo;
    for (; ox + dw_cols <= in.hi; ox += dw_cols) {
        pf.issue(ox - in.lo, dw_cols);
        dw_channels_step<S, RB>(rp, wt, bias, yr, clamps, lo, hi, C, pl, ox);
    }
    if (ox + 2 <= in.hi) {
        dw_channels_step<S, RB, 2>(rp, wt, bias, yr, clamps, lo, hi, C, pl, ox);
        ox += 2;
    }
    if (ox < in.hi) dw_channels_step<S, RB, 1>(rp, wt, bias, yr, clamps, lo, hi, C, pl, ox);
    done.hi = in.hi;
    // The border columns of SAME padding: the first with its first input column in the
    // padding, the last with its last.
    if (in.lo == 1 && pl == 1) {
        dw_channels_step<S, RB, 1, 0>(rp, wt, bias, yr, clamps, lo, hi, C, pl, 0);
        done.lo = 0;
    }
    if (in.hi + 1 == ow && in.hi * S + 2 == w + pl) {
        dw_channels_step<S, RB, 1, 2>(rp, wt, bias, yr, clamps, lo, hi, C, pl, in.hi);
        done.hi = ow;
    }
    return done;
}

/// Depthwise forward of one channel vector [c0, c0 + n) of `RB` consecutive output rows
/// of one image at once (neighbouring rows share input rows, which then come from L1).
/// `xr[b * kh + i]` is input row `oy_b * sh - pad_top + i` (or zeros) of output row b.
/// Columns `done` are already computed (`dw_interior_channels`); `plain`: the
/// epilogue is at most a bias and a clamp (no residual, accumulate or streaming stores).
template <int K, int RB, bool Full>
TYPENET_INLINE void dw_forward_vec(const ConvGeometry& g, const float* const* xr, const float* wt,
                                   float* const* yr, const float* const* rr, const ChannelEpilogue& e,
                                   Interior in, ColumnRange done, std::size_t c0, std::size_t n,
                                   RowPrefetch pf = {}, bool plain = false) noexcept {
    const std::size_t C = g.c, KH = K ? K : g.kh, KW = K ? K : g.kw, sw = g.sw, pl = g.pad_left;
    const vfloat lo(e.lo), hi(e.hi);
    vfloat wv[K ? K * K : 1];
    if constexpr (K != 0) {
#pragma GCC unroll 9
        for (std::size_t t = 0; t < std::size_t(K * K); ++t) wv[t] = ldv<Full>(wt + t * C + c0, n);
    }
    auto wtap = [&](std::size_t i, std::size_t j) -> vfloat {
        if constexpr (K != 0)
            return wv[i * K + j];
        else
            return ldv<Full>(wt + (i * KW + j) * C + c0, n);
    };
    const vfloat b0 = e.bias ? ldv<Full>(e.bias + c0, n) : vfloat(0.0f);
    auto store = [&](const vfloat* a, std::size_t ox) {
#pragma GCC unroll 4
        for (int b = 0; b < RB; ++b)
            finish_channels<Full>(a[b], yr[b] + ox * C + c0, rr[b] ? rr[b] + ox * e.ldr + c0 : nullptr, e, lo, hi,
                                  n);
    };
    // Interior: no tests. A 3x3 kernel with stride 1 takes `dw_cols` output columns at a
    // time, each input vector loaded once for all the outputs it feeds (stride 2, and
    // stride 1 with 16 registers or cold data, have their own interior, run before this
    // for all channels: `done`).
    std::size_t ox = std::max(in.lo, done.hi);
    if constexpr (K == 3 && simd_registers >= 32) {
        // Rows of fewer than 2 x dw_cols interior columns measured slower that way
        // (7x7x960); a partial channel vector and the other epilogues (residual,
        // accumulate, streaming stores) keep this loop.
        if (plain && Full && sw == 1 && ox == in.lo && in.hi - in.lo >= 2 * dw_cols) ox = dw_interior_s1<RB>(xr, wt, e.bias, yr, e.clamp, e.lo, e.hi, in, C, pl, c0, pf);
    }
    for (; ox < in.hi; ++ox) {
        const std::size_t base = (ox * sw - pl) * C + c0;
        pf.issue(ox - in.lo, 1);
        vfloat a[RB];
#pragma GCC unroll 4
        for (int b = 0; b < RB; ++b) a[b] = b0;
#pragma GCC unroll 3
        for (std::size_t i = 0; i < KH; ++i)
#pragma GCC unroll 3
            for (std::size_t j = 0; j < KW; ++j) {
                const vfloat wij = wtap(i, j);
#pragma GCC unroll 4
                for (int b = 0; b < RB; ++b)
                    a[b] = xsimd::fma(ldv<Full>(xr[b * KH + i] + base + j * C, n), wij, a[b]);
            }
        store(a, ox);
    }
    // Borders: test each column tap. Taps in row-major (i, j) order, as every other path
    // adds them (the blocked border steps of `dw_interior_channels` give the same bits).
    auto border = [&](std::size_t ox) {
        vfloat a[RB];
        for (int b = 0; b < RB; ++b) a[b] = b0;
        for (std::size_t i = 0; i < KH; ++i)
            for (std::size_t j = 0; j < KW; ++j) {
                const std::ptrdiff_t iw = std::ptrdiff_t(ox * sw + j) - std::ptrdiff_t(pl);
                if (iw < 0 || iw >= std::ptrdiff_t(g.w)) continue;
                for (int b = 0; b < RB; ++b)
                    a[b] = xsimd::fma(ldv<Full>(xr[b * KH + i] + std::size_t(iw) * C + c0, n), wtap(i, j), a[b]);
            }
        store(a, ox);
    };
    for (std::size_t ox = 0; ox < done.lo; ++ox) border(ox);
    for (std::size_t ox = std::max(in.hi, done.hi); ox < g.ow; ++ox) border(ox);
}

/// Depthwise forward of `RB` output rows given their input row pointers
/// (`rows[b * kh + i]`, zeros for padding rows), output rows `yr[b]` and residual rows
/// `rr[b]` (or nullptr): every channel vector.
template <int K, int RB>
TYPENET_INLINE void dw_forward_channels(const ConvGeometry& g, const float* const* rows, const float* wt,
                                        float* const* yr, const float* const* rr, const ChannelEpilogue& e,
                                        Interior in, RowPrefetch pf = {}) noexcept {
    constexpr std::size_t W = simd_width;
    const std::size_t C = g.c;
    ColumnRange done{in.lo, in.lo};  // columns computed for every full channel vector
    // The column-blocked interiors take epilogues of at most a bias and a clamp.
    bool plain = !e.accumulate && !e.stream;
    for (int b = 0; b < RB; ++b) plain = plain && !rr[b];
    if constexpr (K == 3) {
        if (plain && g.sw == 2 && in.hi - in.lo >= 2 * dw_cols && !pf.p)
            done = dw_interior_channels<2, RB>(rows, wt, e.bias, yr, e.clamp, e.lo, e.hi, in, C, g.pad_left, g.w, g.ow);
        // Stride 1 across channels: always with 16 registers; with 32 only for cold data
        // and rows of at least 2 x dw_cols interior columns (shorter ones keep the one-column
        // loop: 7x7x960 at batch 32 measured 0.43 -> 0.58 ms taking it).
        const std::size_t cols = in.hi - in.lo;
        const bool across_s1 = simd_registers < 32 ? cols >= dw_cols : e.cold && cols >= 2 * dw_cols;
        if (plain && g.sw == 1 && across_s1)
            done = dw_interior_channels<1, RB>(rows, wt, e.bias, yr, e.clamp, e.lo, e.hi, in, C, g.pad_left, g.w, g.ow, pf);
    }
    std::size_t c0 = 0;
    for (; c0 + W <= C; c0 += W) {
        dw_forward_vec<K, RB, true>(g, rows, wt, yr, rr, e, in, done, c0, W, pf, plain);
        pf = {};  // the first channel sweep issues every prefetch
    }
    if (c0 < C) dw_forward_vec<K, RB, false>(g, rows, wt, yr, rr, e, in, {in.lo, in.lo}, c0, C - c0);  // all its columns
}

/// Depthwise forward of `RB` consecutive output rows starting at row `r` (same image).
template <int K, int RB>
TYPENET_INLINE void dw_forward_block(const ConvGeometry& g, const float* x, const float* wt, float* y,
                                     const ChannelEpilogue& e, const float* zeros, Interior in, std::size_t r,
                                     std::size_t y_row0 = 0, std::size_t x_row0 = 0) {
    const std::size_t C = g.c, KH = g.kh;
    const float* rows[RB * (K ? K : max_kernel)];
    float* yr[RB];
    const float* rr[RB];
    for (int b = 0; b < RB; ++b) {
        const std::size_t img = (r + b) / g.oh, oy = (r + b) % g.oh;
        for (std::size_t i = 0; i < KH; ++i) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.pad_top);
            rows[b * KH + i] =
                (iy < 0 || iy >= std::ptrdiff_t(g.h)) ? zeros : x + ((img * g.h + std::size_t(iy) - x_row0) * g.w) * C;
        }
        yr[b] = y + (r + b - y_row0) * g.ow * C;
        rr[b] = e.residual ? e.residual + (r + b) * g.ow * e.ldr : nullptr;
    }
    RowPrefetch pf;
    if (e.prefetch) pf = next_rows_prefetch(g, x + (r / g.oh) * g.h * g.w * C, r % g.oh, RB, in);
    dw_forward_channels<K, RB>(g, rows, wt, yr, rr, e, in, pf);
}

/// Depthwise forward of output rows [r0, r1) (row = image * oh + oy); output row r is
/// written at `y + (r - y_row0) * ow * c`, input row `img * h + iy` read at
/// `x + (img * h + iy - x_row0) * w * c`.
template <int K>
void dw_forward_rows(const ConvGeometry& g, const float* x, const float* wt, float* y, const ChannelEpilogue& e,
                     const float* zeros, std::size_t r0, std::size_t r1, std::size_t y_row0 = 0,
                     std::size_t x_row0 = 0) noexcept {
    const Interior in = interior(g.w, g.kw, g.sw, g.pad_left, g.ow);
    std::size_t r = r0;
    if constexpr (K != 0) {
        // Pairs of rows of the same image.
        while (r + 1 < r1) {
            if ((r + 1) % g.oh == 0) {  // r is an image's last row
                dw_forward_block<K, 1>(g, x, wt, y, e, zeros, in, r, y_row0, x_row0);
                r += 1;
            } else {
                dw_forward_block<K, 2>(g, x, wt, y, e, zeros, in, r, y_row0, x_row0);
                r += 2;
            }
        }
    }
    for (; r < r1; ++r) dw_forward_block<K, 1>(g, x, wt, y, e, zeros, in, r, y_row0, x_row0);
}

/// Depthwise forward over all rows with `threads` threads.
///
/// A streamed output (large: `ChannelEpilogue::stream`) of stride 1 without residual or
/// accumulation is made a few rows at a time in a per-thread buffer in cache, with the
/// column-blocked interiors, and copied out with non-temporal stores: made in place,
/// streaming stores would need the one-column loop (one 9-long FMA chain per column). The
/// same bits. One core of a Xeon (AVX-512), batch 64, alternating runs: 112x112x32 18.3-20.3
/// -> 23.3-24.0, 56x56x144 18.7-18.8 -> 21.5-21.8, 28x28x192 18.0-18.2 -> 20.6-21.4 GFLOP/s.
/// Stride 2 keeps the one-column loop: its input, four times its output, bounds it, and
/// staging measured 5-7% slower there (112x112x96). Scratch: `Slot::stage` of the calling
/// thread.
inline void dw_forward_impl(const ConvGeometry& g, const float* x, const float* wt, float* y,
                            const ChannelEpilogue& e, int threads) {
    const float* zeros = zero_floats(g.w * g.c);
    const std::size_t R = g.n * g.oh;
    if (e.stream && !e.residual && !e.accumulate && g.sh == 1 && g.sw == 1) {
        const std::size_t rowlen = g.ow * g.c;  // a multiple of 16 (streaming stores)
        const std::size_t G = std::max<std::size_t>(2, 16384 / std::max<std::size_t>(rowlen, 1)) / 2 * 2;
        const int T = std::max(1, std::min<int>(threads, int(R)));
        const std::size_t ssize = round_up(G * rowlen, 16);
        float* stages = scratch(Slot::stage, std::size_t(T) * ssize);
        ChannelEpilogue ep = e;
        ep.stream = false;
        run_parallel(T, [&](int t, int nt) {
            const Range rr = split_range(R, std::size_t(nt), std::size_t(t));
            float* st = stages + std::size_t(t) * ssize;
            for (std::size_t r = rr.begin; r < rr.end; r += G) {
                const std::size_t r1 = std::min(rr.end, r + G);
                if (g.kh == 3 && g.kw == 3)
                    dw_forward_rows<3>(g, x, wt, st, ep, zeros, r, r1, r);
                else
                    dw_forward_rows<0>(g, x, wt, st, ep, zeros, r, r1, r);
                stream_copy(st, y + r * rowlen, (r1 - r) * rowlen);
            }
            stream_fence();
        });
        return;
    }
    parallel_ranges(threads, R, [&](std::size_t r0, std::size_t r1) {
        if (g.kh == 3 && g.kw == 3)
            dw_forward_rows<3>(g, x, wt, y, e, zeros, r0, r1);
        else
            dw_forward_rows<0>(g, x, wt, y, e, zeros, r0, r1);
        if (e.stream) stream_fence();
    });
}

/// Throw unless the pointers needed by a kernel are there and the kernel is not
/// taller than `max_kernel`.
inline void check_dw(const char* who, const ConvGeometry& g, std::initializer_list<const void*> ptrs) {
    g.check(who);
    if (g.kh > max_kernel)
        throw shape_error(std::string(who) + ": kernel height " + std::to_string(g.kh) + " exceeds " +
                          std::to_string(max_kernel));
    for (const void* p : ptrs)
        if (!p) throw shape_error(std::string(who) + ": null tensor pointer");
}

/// The kernel rotated by 180 degrees (`wf[kh-1-i][kw-1-j] = w[i][j]`): with it, the input
/// gradient of a stride-1 depthwise convolution is a forward convolution of dy.
inline void dw_flip_kernel(const ConvGeometry& g, const float* w, float* wf) noexcept {
    const std::size_t C = g.c, KH = g.kh, KW = g.kw;
    for (std::size_t i = 0; i < KH; ++i)
        for (std::size_t j = 0; j < KW; ++j)
            std::copy(w + (i * KW + j) * C, w + (i * KW + j + 1) * C, wf + ((KH - 1 - i) * KW + (KW - 1 - j)) * C);
}

/// For the gather form of the input gradient: per input column ix, the `ncols[ix]` (kernel
/// column, output column) pairs whose window covers it, at `cols[ix * 2 * kw]`.
inline void dw_gather_columns(const ConvGeometry& g, std::vector<std::uint32_t>& cols,
                              std::vector<std::uint32_t>& ncols) {
    const std::size_t KW = g.kw;
    if (cols.size() < g.w * 2 * KW) cols.resize(g.w * 2 * KW);
    if (ncols.size() < g.w) ncols.resize(g.w);
    for (std::size_t ix = 0; ix < g.w; ++ix) {
        std::uint32_t cnt = 0;
        for (std::size_t j = 0; j < KW; ++j) {
            const std::ptrdiff_t t = std::ptrdiff_t(ix + g.pad_left) - std::ptrdiff_t(j);
            if (t < 0 || t % std::ptrdiff_t(g.sw) != 0 || std::size_t(t) / g.sw >= g.ow) continue;
            cols[ix * 2 * KW + 2 * cnt] = std::uint32_t(j);
            cols[ix * 2 * KW + 2 * cnt + 1] = std::uint32_t(std::size_t(t) / g.sw);
            ++cnt;
        }
        ncols[ix] = cnt;
    }
}

/// Gather form of the input gradient, any stride: rows [r0, r1) of dx (row = image * h + iy).
template <bool Full>
TYPENET_INLINE void dw_bwd_input_vec(const ConvGeometry& g, const float* const* dyr, const std::size_t* ki,
                                     std::size_t nrows, const std::uint32_t* cols, const std::uint32_t* ncols,
                                     const float* wt, float* dxr, std::size_t c0, std::size_t n) noexcept {
    const std::size_t C = g.c, KW = g.kw;
    for (std::size_t ix = 0; ix < g.w; ++ix) {
        vfloat a(0.0f);
        const std::uint32_t* cp = cols + ix * 2 * KW;
        for (std::size_t q = 0; q < nrows; ++q) {
            const float* d = dyr[q] + c0;
            const float* wr = wt + ki[q] * KW * C + c0;
            for (std::uint32_t t = 0; t < ncols[ix]; ++t) {
                const std::size_t j = cp[2 * t], ox = cp[2 * t + 1];
                a = xsimd::fma(ldv<Full>(d + ox * C, n), ldv<Full>(wr + j * C, n), a);
            }
        }
        stv<Full>(dxr + ix * C + c0, a, n);
    }
}

/// A vector of dx: non-temporal when `Stream` (full vectors of a large aligned output).
template <bool Full, bool Stream>
TYPENET_INLINE void dw_store(float* p, const vfloat& v, std::size_t n) noexcept {
    if constexpr (Full && Stream) store_stream(p, v);
    else stv<Full>(p, v, n);
}

/// Input gradient of one dx row for 3-wide kernels with column stride 2, one channel
/// vector: walks the dy columns once; dy column ox feeds dx columns 2*ox - pl + {0,1,2},
/// the third is carried into the next step. `NRW` contributing kernel rows.
template <int NRW, bool Full, bool Stream>
TYPENET_INLINE void dw_bwd_input_k3s2_vec(const ConvGeometry& g, const float* const* dyr, const std::size_t* ki,
                                          const float* wt, float* dxr, std::size_t c0, std::size_t n) noexcept {
    const std::size_t C = g.c;
    const std::ptrdiff_t Wd = std::ptrdiff_t(g.w), pl = std::ptrdiff_t(g.pad_left);
    vfloat w0[NRW], w1[NRW], w2[NRW];
    for (int q = 0; q < NRW; ++q) {
        const float* wr = wt + ki[q] * 3 * C + c0;
        w0[q] = ldv<Full>(wr, n);
        w1[q] = ldv<Full>(wr + C, n);
        w2[q] = ldv<Full>(wr + 2 * C, n);
    }
    vfloat carry(0.0f);
    std::ptrdiff_t ix = -pl;
    for (std::size_t ox = 0; ox < g.ow; ++ox, ix += 2) {
        vfloat a0 = carry, a1(0.0f), a2(0.0f);
#pragma GCC unroll 4
        for (int q = 0; q < NRW; ++q) {
            const vfloat d = ldv<Full>(dyr[q] + ox * C + c0, n);
            a0 = xsimd::fma(d, w0[q], a0);
            a1 = xsimd::fma(d, w1[q], a1);
            a2 = xsimd::fma(d, w2[q], a2);
        }
        if (ix >= 0 && ix < Wd) dw_store<Full, Stream>(dxr + std::size_t(ix) * C + c0, a0, n);
        if (ix + 1 >= 0 && ix + 1 < Wd) dw_store<Full, Stream>(dxr + std::size_t(ix + 1) * C + c0, a1, n);
        carry = a2;
    }
    if (ix >= 0 && ix < Wd) dw_store<Full, Stream>(dxr + std::size_t(ix) * C + c0, carry, n);
    for (std::ptrdiff_t z = std::max<std::ptrdiff_t>(0, ix + 1); z < Wd; ++z)
        dw_store<Full, Stream>(dxr + std::size_t(z) * C + c0, vfloat(0.0f), n);
}

/// One dx row of a 3-wide, column-stride-2 kernel with `nr` contributing rows.
template <bool Full, bool Stream = false>
TYPENET_INLINE bool dw_bwd_input_k3s2(const ConvGeometry& g, const float* const* dyr, const std::size_t* ki,
                                      std::size_t nr, const float* wt, float* dxr, std::size_t c0,
                                      std::size_t n) noexcept {
    switch (nr) {
        case 0:
            for (std::size_t ix = 0; ix < g.w; ++ix) dw_store<Full, Stream>(dxr + ix * g.c + c0, vfloat(0.0f), n);
            return true;
        case 1:
            dw_bwd_input_k3s2_vec<1, Full, Stream>(g, dyr, ki, wt, dxr, c0, n);
            return true;
        case 2:
            dw_bwd_input_k3s2_vec<2, Full, Stream>(g, dyr, ki, wt, dxr, c0, n);
            return true;
        case 3:
            dw_bwd_input_k3s2_vec<3, Full, Stream>(g, dyr, ki, wt, dxr, c0, n);
            return true;
        default:
            return false;
    }
}

}  // namespace detail

/// Depthwise convolution forward: `y[n][oy][ox][ch] = epilogue(sum_{i,j} x[n][oy*sh-pt+i][ox*sw-pl+j][ch] * w[i][j][ch])`.
/// x is NHWC (g.n, g.h, g.w, g.c), w is `[kh][kw][c]`, y is (g.n, g.oh, g.ow, g.c); the
/// epilogue's bias is per channel and its residual has y's shape (pixel stride `ldr`,
/// default c). y must not overlap x.
inline void depthwise_forward(const ConvGeometry& g, const float* x, const float* w, float* y,
                              const Epilogue& ep = {}) {
    detail::check_dw("depthwise_forward", g, {x, w, y});
    const double flops = 2.0 * double(g.n * g.oh * g.ow) * double(g.c) * double(g.kh * g.kw);
    detail::ChannelEpilogue e(ep, g.c);
    e.stream = detail::use_streaming_stores(y, g.c, g.output_pixels(), g.c, ep.accumulate);
    detail::dw_input_in_memory(e, g);
    detail::dw_forward_impl(g, x, w, y, e, threads_for(flops, 1.0e5));
}

/// Output rows of `depthwise_forward` (no epilogue) made on demand, on the calling thread:
/// `rows(r0, r1, out)` writes rows [r0, r1) (row = image * oh + oy) to `out`, one after
/// the other, for callers that produce the output piecewise (`produce_channel_mean_var`).
/// Construct it on the thread that opens the parallel region (it takes this thread's row
/// of zeros and, with an input map, one staging buffer per thread from `Slot::im2col`).
///
/// With `map`, the input is read through it (`ChannelMap`): the input rows a group of up to
/// `group` output rows needs are mapped into the thread's buffer first (rows shared by two
/// groups are mapped by both).
class DepthwiseRows {
public:
    static constexpr std::size_t group = 8;

    DepthwiseRows(const ConvGeometry& g, const float* x, const float* w, const ChannelMap* map = nullptr)
        : g_(g), x_(x), w_(w), zeros_(nullptr), e_(Epilogue{}, g.c) {
        detail::check_dw("DepthwiseRows", g, {x, w});
        zeros_ = zero_floats(g.w * g.c);
        if (map) {
            if (!map->scale || !map->shift) throw shape_error("DepthwiseRows: input map without scale or shift");
            map_ = *map;
            stage_size_ = detail::round_up(std::min(g.h, (group - 1) * g.sh + g.kh) * g.w * g.c, 16);
            stage_ = scratch(Slot::im2col, std::size_t(max_threads()) * stage_size_);
        } else {
            detail::dw_input_in_memory(e_, g);
        }
    }
    void operator()(std::size_t r0, std::size_t r1, float* out) const noexcept {
        if (!stage_) return rows(x_, r0, r1, out, r0, 0);
        float* buf = stage_ + std::size_t(thread_index()) * stage_size_;
        const std::size_t rowlen = g_.w * g_.c;
        for (std::size_t r = r0; r < r1;) {
            const std::size_t img = r / g_.oh, oy = r % g_.oh;
            const std::size_t n = std::min({r1 - r, group, g_.oh - oy});  // within one image
            // Input rows of output rows [oy, oy + n).
            const std::ptrdiff_t a = std::ptrdiff_t(oy * g_.sh) - std::ptrdiff_t(g_.pad_top);
            const std::size_t i0 = std::size_t(std::max<std::ptrdiff_t>(0, a));
            const std::size_t i1 = std::min<std::size_t>(g_.h, std::size_t(std::max<std::ptrdiff_t>(
                                                                   0, a + std::ptrdiff_t((n - 1) * g_.sh + g_.kh))));
            if (i1 > i0)
                detail::map_rows(map_, x_ + (img * g_.h + i0) * rowlen, g_.c, g_.c, (i1 - i0) * g_.w, buf);
            rows(buf, r, r + n, out + (r - r0) * g_.ow * g_.c, r, img * g_.h + i0);
            r += n;
        }
    }

private:
    void rows(const float* x, std::size_t r0, std::size_t r1, float* out, std::size_t y_row0,
              std::size_t x_row0) const noexcept {
        if (g_.kh == 3 && g_.kw == 3) detail::dw_forward_rows<3>(g_, x, w_, out, e_, zeros_, r0, r1, y_row0, x_row0);
        else detail::dw_forward_rows<0>(g_, x, w_, out, e_, zeros_, r0, r1, y_row0, x_row0);
    }

    ConvGeometry g_;
    const float* x_;
    const float* w_;
    const float* zeros_;
    detail::ChannelEpilogue e_;
    ChannelMap map_;
    float* stage_ = nullptr;
    std::size_t stage_size_ = 0;
};

/// Depthwise convolution input gradient: `dx = sum over the windows containing each
/// input pixel of dy * w` (dx is overwritten).
inline void depthwise_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
    using namespace detail;
    check_dw("depthwise_backward_input", g, {dy, w, dx});
    const std::size_t C = g.c, KH = g.kh, KW = g.kw;
    const double flops = 2.0 * double(g.n * g.oh * g.ow) * double(C) * double(KH * KW);
    const int T = threads_for(flops, 1.0e5);
    if (g.sh == 1 && g.sw == 1) {
        // Stride 1: a forward depthwise convolution of dy with the flipped kernel.
        float* wf = scratch(Slot::dw_tmp, KH * KW * C);
        dw_flip_kernel(g, w, wf);
        ConvGeometry t{g.n, g.oh, g.ow, C, KH, KW, 1, 1, KH - 1 - g.pad_top, KW - 1 - g.pad_left, g.h, g.w};
        ChannelEpilogue e;
        e.cold = dw_data_cold(t);
        dw_forward_impl(t, dy, wf, dx, e, T);
        return;
    }
    // Any stride: gather, per input column, the (kernel column, output column) pairs.
    thread_local std::vector<std::uint32_t> cols, ncols;
    dw_gather_columns(g, cols, ncols);
    const std::uint32_t* cp = cols.data();
    const std::uint32_t* np = ncols.data();
    const bool k3s2 = KW == 3 && g.sw == 2;
    parallel_ranges(T, g.n * g.h, [&](std::size_t r0, std::size_t r1) {
        const float* dyr[max_kernel];
        std::size_t ki[max_kernel];
        for (std::size_t r = r0; r < r1; ++r) {
            const std::size_t img = r / g.h, iy = r % g.h;
            std::size_t nr = 0;
            for (std::size_t i = 0; i < KH; ++i) {
                const std::ptrdiff_t t = std::ptrdiff_t(iy + g.pad_top) - std::ptrdiff_t(i);
                if (t < 0 || t % std::ptrdiff_t(g.sh) != 0 || std::size_t(t) / g.sh >= g.oh) continue;
                dyr[nr] = dy + (img * g.oh + std::size_t(t) / g.sh) * g.ow * C;
                ki[nr] = i;
                ++nr;
            }
            float* dxr = dx + r * g.w * C;
            std::size_t c0 = 0;
            if (k3s2) {
                for (; c0 + simd_width <= C; c0 += simd_width)
                    if (!dw_bwd_input_k3s2<true>(g, dyr, ki, nr, w, dxr, c0, simd_width))
                        dw_bwd_input_vec<true>(g, dyr, ki, nr, cp, np, w, dxr, c0, simd_width);
                if (c0 < C && !dw_bwd_input_k3s2<false>(g, dyr, ki, nr, w, dxr, c0, C - c0))
                    dw_bwd_input_vec<false>(g, dyr, ki, nr, cp, np, w, dxr, c0, C - c0);
                continue;
            }
            for (; c0 + simd_width <= C; c0 += simd_width)
                dw_bwd_input_vec<true>(g, dyr, ki, nr, cp, np, w, dxr, c0, simd_width);
            if (c0 < C) dw_bwd_input_vec<false>(g, dyr, ki, nr, cp, np, w, dxr, c0, C - c0);
        }
    });
}

namespace detail {

/// Weight gradient of one channel vector over one output row, added to `part` ([kh][kw][c]).
template <int K, bool Full>
TYPENET_INLINE void dw_bwd_weight_vec(const ConvGeometry& g, const float* const* xr, const float* dyr, float* part,
                                      Interior in, std::size_t c0, std::size_t n) noexcept {
    const std::size_t C = g.c, sw = g.sw, pl = g.pad_left;
    if constexpr (K != 0) {
        vfloat acc[K * K];
#pragma GCC unroll 9
        for (std::size_t t = 0; t < std::size_t(K * K); ++t) acc[t] = vfloat(0.0f);
        for (std::size_t ox = in.lo; ox < in.hi; ++ox) {
            const vfloat d = ldv<Full>(dyr + ox * C + c0, n);
            const std::size_t base = (ox * sw - pl) * C + c0;
#pragma GCC unroll 3
            for (std::size_t i = 0; i < std::size_t(K); ++i)
#pragma GCC unroll 3
                for (std::size_t j = 0; j < std::size_t(K); ++j)
                    acc[i * K + j] = xsimd::fma(ldv<Full>(xr[i] + base + j * C, n), d, acc[i * K + j]);
        }
        auto border = [&](std::size_t ox) {
            const vfloat d = ldv<Full>(dyr + ox * C + c0, n);
            for (std::size_t j = 0; j < std::size_t(K); ++j) {
                const std::ptrdiff_t iw = std::ptrdiff_t(ox * sw + j) - std::ptrdiff_t(pl);
                if (iw < 0 || iw >= std::ptrdiff_t(g.w)) continue;
                for (std::size_t i = 0; i < std::size_t(K); ++i)
                    acc[i * K + j] = xsimd::fma(ldv<Full>(xr[i] + std::size_t(iw) * C + c0, n), d, acc[i * K + j]);
            }
        };
        for (std::size_t ox = 0; ox < in.lo; ++ox) border(ox);
        for (std::size_t ox = in.hi; ox < g.ow; ++ox) border(ox);
#pragma GCC unroll 9
        for (std::size_t t = 0; t < std::size_t(K * K); ++t) {
            float* p = part + t * C + c0;
            stv<Full>(p, ldv<Full>(p, n) + acc[t], n);
        }
    } else {
        // Any kernel size: one tap at a time over the columns where it is inside the input.
        for (std::size_t i = 0; i < g.kh; ++i)
            for (std::size_t j = 0; j < g.kw; ++j) {
                vfloat a(0.0f);
                for (std::size_t ox = 0; ox < g.ow; ++ox) {
                    const std::ptrdiff_t iw = std::ptrdiff_t(ox * sw + j) - std::ptrdiff_t(pl);
                    if (iw < 0 || iw >= std::ptrdiff_t(g.w)) continue;
                    a = xsimd::fma(ldv<Full>(xr[i] + std::size_t(iw) * C + c0, n), ldv<Full>(dyr + ox * C + c0, n), a);
                }
                float* p = part + (i * g.kw + j) * C + c0;
                stv<Full>(p, ldv<Full>(p, n) + a, n);
            }
    }
}

/// Weight gradient summed over output rows [r0, r1) into `part` (zeroed here).
template <int K>
void dw_bwd_weight_rows(const ConvGeometry& g, const float* x, const float* dy, float* part, const float* zeros,
                        std::size_t r0, std::size_t r1) {
    constexpr std::size_t W = simd_width;
    const std::size_t C = g.c;
    std::fill(part, part + g.kh * g.kw * C, 0.0f);
    const Interior in = interior(g.w, g.kw, g.sw, g.pad_left, g.ow);
    const float* rows[max_kernel];
    for (std::size_t r = r0; r < r1; ++r) {
        const std::size_t img = r / g.oh, oy = r % g.oh;
        for (std::size_t i = 0; i < g.kh; ++i) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.pad_top);
            rows[i] = (iy < 0 || iy >= std::ptrdiff_t(g.h)) ? zeros : x + ((img * g.h + std::size_t(iy)) * g.w) * C;
        }
        const float* dyr = dy + r * g.ow * C;
        std::size_t c0 = 0;
        for (; c0 + W <= C; c0 += W) dw_bwd_weight_vec<K, true>(g, rows, dyr, part, in, c0, W);
        if (c0 < C) dw_bwd_weight_vec<K, false>(g, rows, dyr, part, in, c0, C - c0);
    }
}

}  // namespace detail

/// The fixed chunks of output rows whose weight-gradient sums the depthwise kernels keep
/// apart and then add in order: at least ~64 KFLOP each, at most 32, fixed by the shape
/// alone (so the result does not depend on the thread count).
inline std::size_t depthwise_backward_chunks(const ConvGeometry& g) noexcept {
    const std::size_t R = g.n * g.oh, per_row = std::max<std::size_t>(1, g.ow * g.c * g.kh * g.kw * 2);
    return std::max<std::size_t>(1, std::min<std::size_t>({R, 32, R * per_row / 65536 + 1}));
}

/// Depthwise convolution weight gradient: `dw[i][j][ch] = sum_{n,oy,ox} x[n][oy*sh-pt+i][ox*sw-pl+j][ch] * dy[n][oy][ox][ch]`
/// (`[kh][kw][c]`; overwritten, or added to with `accumulate`). Rows are summed in
/// fixed chunks whose partial sums are added in order: the result does not depend on
/// the number of threads.
inline void depthwise_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                      bool accumulate = false) {
    using namespace detail;
    check_dw("depthwise_backward_weight", g, {x, dy, dw});
    const std::size_t C = g.c, taps = g.kh * g.kw, R = g.n * g.oh;
    const double flops = 2.0 * double(R * g.ow) * double(C) * double(taps);
    const std::size_t nch = depthwise_backward_chunks(g);
    const std::size_t stride = round_up(taps * C, 16);
    float* part = scratch(Slot::dw_tmp, nch * stride);
    const float* zeros = zero_floats(g.w * C);
    const int T = std::min<int>(threads_for(flops, 1.0e5), int(nch));
    parallel_ranges(T, nch, [&](std::size_t q0, std::size_t q1) {
        for (std::size_t q = q0; q < q1; ++q) {
            const Range rr = split_range(R, nch, q);
            if (g.kh == 3 && g.kw == 3)
                dw_bwd_weight_rows<3>(g, x, dy, part + q * stride, zeros, rr.begin, rr.end);
            else
                dw_bwd_weight_rows<0>(g, x, dy, part + q * stride, zeros, rr.begin, rr.end);
        }
    });
    for (std::size_t t = 0; t < taps * C; ++t) {
        float s = part[t];
        for (std::size_t q = 1; q < nch; ++q) s += part[q * stride + t];
        dw[t] = accumulate ? dw[t] + s : s;
    }
}

namespace detail {
/// The first input row whose output-row owner (`min(oh - 1, (iy + pad_top) / sh)`) is at
/// least `oy`: input rows [first(oy0), first(oy1)) belong to output rows [oy0, oy1).
inline std::size_t dw_first_input_row(const ConvGeometry& g, std::size_t oy) noexcept {
    if (oy == 0) return 0;
    if (oy >= g.oh) return g.h;
    const std::size_t t = oy * g.sh;
    return t <= g.pad_top ? 0 : std::min(g.h, t - g.pad_top);
}
}  // namespace detail

/// Both gradients of a depthwise convolution from an output gradient that is *produced*
/// row by row instead of read from memory (the depthwise counterpart of
/// `pointwise_backward`): `dy_rows(r0, r1, out)` writes output-gradient rows [r0, r1)
/// (row = image * oh + oy, ow x c floats each) to `out`, one after the other, on the
/// calling thread. Each thread makes a band of rows at a time into a small ring that stays
/// in its cache and computes from there the weight gradient of those rows and the input
/// gradient of the input rows they complete, so the output gradient never reaches memory.
/// `dw` ([kh][kw][c]) and `dx` (the input's shape) are overwritten, each skipped when null.
///
/// The output rows are split into the same fixed chunks as `depthwise_backward_weight`
/// (the weight gradient's chunk sums are added in chunk order) and every input row is
/// computed whole by one chunk: no result depends on the thread count. Rows of the output
/// gradient next to a chunk's edge that both chunks need are produced by each (within a
/// chunk, the ring keeps the rows the next band shares).
/// Scratch of the calling thread: `Slot::fused` (the rings), `Slot::partial` (the chunk
/// sums), `Slot::conv_tmp` (flipped weights), `Slot::im2col` and `Slot::stage` (see
/// below); `dy_rows` may rely on any other slot.
///
/// With `xmap`, the weight gradient reads `x` through it (`ChannelMap`: the previous
/// layer's activation recomputed from its pre-normalisation tensor), a few rows at a time
/// into a per-thread buffer (`Slot::im2col`).
///
/// With `dx_sums` (needs `dx` or `dx_rows`, and `xmap`), also the previous layer's batch-norm backward
/// sums (`DxBatchNormSums`, as `pointwise_backward` takes them): each row of dx is summed
/// with its row of x as soon as it is complete, while both are in cache (a dx large enough
/// to be streamed is made a row at a time in a per-thread buffer, summed there, then
/// streamed out). Each chunk sums its rows in order and the chunks' sums are added in
/// chunk order: the sums do not depend on the thread count either. Scratch:
/// `Slot::stage` (the chunks' sums and the rows of dx).
///
/// With `dx_rows` instead of `dx`, the input gradient is not stored: each row of it
/// (`g.w` pixels of `g.c` floats, row index `(image * h + iy) * w` in pixels) is made in
/// a per-thread buffer, summed there (with `dx_sums`), then handed to
/// `dx_rows->consume` (chunk index < `depthwise_backward_chunks(g)`), which may overwrite
/// it.
/// With `dx_clamp` (needs `dx` or `dx_rows`; not with `xmap`), each row of the input
/// gradient is masked by the clamp that made x (`DxClamp`) as soon as it is complete, while
/// its row of x is in cache.
/// (`dy_rows` is type-erased: it is called once per band of rows, and a template over it
/// compiled the whole kernel again for every producer a program uses.)
inline void depthwise_backward_produced(const ConvGeometry& g, const float* x, const float* w,
                                        FunctionRef<void(std::size_t, std::size_t, float*)> dy_rows, float* dw,
                                        float* dx, const ChannelMap* xmap = nullptr,
                                        const DxBatchNormSums* dx_sums = nullptr, RowConsumer* dx_rows = nullptr,
                                        const DxClamp* dx_clamp = nullptr) {
    using namespace detail;
    if (dx && dx_rows) throw shape_error("depthwise_backward_produced: dx both stored and handed over");
    const bool want_dx = dx || dx_rows;
    if (dx_clamp && (!want_dx || xmap))
        throw shape_error("depthwise_backward_produced: masking dx by x's clamp needs dx and x itself (no input map)");
    if (dx_sums && (!want_dx || !xmap || !xmap->scale || !xmap->shift || !dx_sums->mean || !dx_sums->invstd ||
                    !dx_sums->out))
        throw shape_error(
            "depthwise_backward_produced: the sums of dx need dx, the input map, the statistics and an output");
    if (!dw && !want_dx) return;
    check_dw("depthwise_backward_produced", g, {w});
    if ((dw || dx_sums || dx_clamp) && !x) throw shape_error("depthwise_backward_produced: x is null");
    constexpr std::size_t W = simd_width;
    const std::size_t C = g.c, KH = g.kh, KW = g.kw, taps = KH * KW, R = g.n * g.oh, rowlen = g.ow * C;
    const std::size_t nch = depthwise_backward_chunks(g);  // as depthwise_backward_weight's
    const std::size_t stride = round_up(taps * C, 16);
    const std::size_t B = std::clamp<std::size_t>(65536 / std::max<std::size_t>(rowlen, 1), 2, 16);
    const std::size_t cap = B + KH + 2, ring_size = round_up(cap * rowlen, 16);
    const double flops = 2.0 * double(R * g.ow) * double(C) * double(taps) * ((dw ? 1 : 0) + (want_dx ? 1 : 0));
    const int T = std::min<int>(threads_for(flops, 1.0e5), int(nch));
    // Buffers of the calling thread, shared with the team.
    float* part = dw ? scratch(Slot::partial, nch * stride) : nullptr;
    float* rings = scratch(Slot::fused, std::size_t(T) * ring_size);
    // The mapped input rows of up to XG output rows of the weight gradient, per thread.
    constexpr std::size_t XG = 4;
    const std::size_t xstage_size = round_up(std::min(g.h, (XG - 1) * g.sh + KH) * g.w * C, 16);
    float* xstages = dw && xmap ? scratch(Slot::im2col, std::size_t(T) * xstage_size) : nullptr;
    if (xstages && (!xmap->scale || !xmap->shift))
        throw shape_error("depthwise_backward_produced: input map without scale or shift");
    const float* zeros = zero_floats(std::max(g.w, g.ow) * C);
    const bool s1 = g.sh == 1 && g.sw == 1, k3 = KH == 3 && KW == 3;
    // Stride 1: the input gradient is a forward convolution of dy with the flipped kernel.
    float* wf = nullptr;
    ConvGeometry t{g.n, g.oh, g.ow, C, KH, KW, 1, 1, KH - 1 - g.pad_top, KW - 1 - g.pad_left, g.h, g.w};
    if (want_dx && s1) {
        wf = scratch(Slot::conv_tmp, taps * C);
        dw_flip_kernel(g, w, wf);
    }
    // Other strides: per input column, its (kernel column, output column) pairs.
    thread_local std::vector<std::uint32_t> cols, ncols;
    if (want_dx && !s1) dw_gather_columns(g, cols, ncols);
    const std::uint32_t* cp = cols.data();
    const std::uint32_t* np = ncols.data();
    const Interior in_w = interior(g.w, KW, g.sw, g.pad_left, g.ow);
    const Interior in_t = interior(t.w, KW, 1, t.pad_left, t.ow);
    // A large input gradient is stored non-temporally: it is not read again before the
    // next layer's pass over all of it, and the stores then skip reading its lines first.
    ChannelEpilogue dx_ep;
    dx_ep.stream = dx && use_streaming_stores(dx, C, g.n * g.h * g.w, C, false, training_stream_bytes());
    // The sums of dx: per chunk, two sums per channel (in double); then, when dx is
    // streamed or handed over, a row of dx per thread (made there in cache, summed there,
    // then streamed out or consumed). Streamed rows go through it even without sums: made
    // in place, they would need the row kernels' streaming-store form, which has no
    // column-blocked interior (one 9-long FMA chain per column). MobileNetV2's block 0 in a
    // training step (112x112x32, batch 32, AVX2, 2 threads, 4 interleaved pairs): its
    // backward 44-54 -> 36-40 ms.
    const std::size_t cpad = round_up(C, 16), rowx = g.w * C;
    const std::size_t srow = dx_ep.stream || dx_rows ? round_up(rowx, 16) : 0;
    const std::size_t ssums = dx_sums ? nch * 4 * cpad : 0;
    float* sstage = ssums + srow ? scratch(Slot::stage, ssums + std::size_t(T) * srow) : nullptr;
    double* chunk_sums = reinterpret_cast<double*>(sstage);
    BatchNormInputGrad<ClampMaskFrom::affine> gmap;
    if (dx_sums) gmap = {nullptr, nullptr, nullptr, xmap->scale, xmap->shift, xmap->lo, xmap->hi, C};

    UnitQueue queue(nch);
    run_parallel(T, [&](int th, int) {
        float* ring = rings + std::size_t(th) * ring_size;
        float* staged = srow ? sstage + ssums + std::size_t(th) * srow : nullptr;
        // Rows of dx go to memory directly (non-temporally when large), or through the stage.
        ChannelEpilogue row_ep = dx_ep;
        row_ep.stream = dx_ep.stream && !staged;
        // Each chunk has its own partial sums and makes its own rows of dy: the chunks go
        // to the threads as they become free.
        std::size_t q;
        while (queue.next(q)) {
            const Range cr = split_range(R, nch, q);
            float* pq = dw ? part + q * stride : nullptr;
            if (pq) std::fill(pq, pq + taps * C, 0.0f);
            double* sq = dx_sums ? chunk_sums + q * 2 * cpad : nullptr;
            if (sq) std::fill(sq, sq + 2 * cpad, 0.0);
            // Image segments of the chunk.
            for (std::size_t r = cr.begin; r < cr.end;) {
                const std::size_t img = r / g.oh, oy0 = r % g.oh;
                const std::size_t oy1 = std::min(g.oh, oy0 + (cr.end - r));
                r += oy1 - oy0;
                std::size_t p_hi = 0;  // dy rows of this image up to p_hi have been produced
                auto dyrow = [&](std::ptrdiff_t oy) -> const float* {
                    if (oy < 0 || oy >= std::ptrdiff_t(g.oh)) return zeros;
                    return ring + (std::size_t(oy) % cap) * rowlen;
                };
                auto produce = [&](std::size_t a, std::size_t b) {  // rows [a, b) into the ring
                    while (a < b) {
                        const std::size_t slot = a % cap, n = std::min(b - a, cap - slot);
                        dy_rows(img * g.oh + a, img * g.oh + a + n, ring + slot * rowlen);
                        a += n;
                    }
                };
                for (std::size_t b0 = oy0; b0 < oy1; b0 += B) {
                    const std::size_t b1 = std::min(oy1, b0 + B);
                    const std::size_t i0 = dw_first_input_row(g, b0), i1 = dw_first_input_row(g, b1);
                    // dy rows this band needs: its own (weight gradient) and those of its input rows.
                    std::size_t d_lo = b0, d_hi = b1;
                    if (want_dx && i1 > i0) {
                        const std::ptrdiff_t lo_t = std::ptrdiff_t(i0 + g.pad_top) - std::ptrdiff_t(KH - 1);
                        const std::size_t lo = lo_t <= 0 ? 0 : ceil_div(std::size_t(lo_t), g.sh);
                        const std::size_t hi = std::min(g.oh, (i1 - 1 + g.pad_top) / g.sh + 1);
                        d_lo = std::min(d_lo, lo);
                        d_hi = std::max(d_hi, hi);
                    }
                    // Rows [d_lo, p_hi) are still in the ring (d_hi - d_lo <= cap); make the rest.
                    p_hi = std::max(p_hi, d_lo);
                    if (d_hi > p_hi) {
                        produce(p_hi, d_hi);
                        p_hi = d_hi;
                    }
                    // The band in groups of XG output rows (one mapping of their input rows each):
                    // after a group's weight gradient, the input-gradient rows it completes, while the
                    // input rows just read are still in cache (the batch norm sums and the row consumer
                    // read them again). The same rows in the same order as one pass per band.
                    const std::size_t G = pq ? XG : b1 - b0;
                    const float* xbase = x + img * g.h * g.w * C;  // input row iy at xbase + (iy - xrow0) * w * C
                    std::size_t xrow0 = 0;
                    for (std::size_t g0 = b0; g0 < b1; g0 += G) {
                        const std::size_t g1 = std::min(b1, g0 + G);
                        if (pq) {
                            if (xstages) {
                                // Map the input rows of the group's output rows [g0, g1).
                                const std::ptrdiff_t a = std::ptrdiff_t(g0 * g.sh) - std::ptrdiff_t(g.pad_top);
                                const std::size_t i0 = std::size_t(std::max<std::ptrdiff_t>(0, a));
                                const std::size_t i1 = std::min<std::size_t>(
                                    g.h, std::size_t(std::max<std::ptrdiff_t>(
                                             0, a + std::ptrdiff_t((g1 - g0 - 1) * g.sh + KH))));
                                float* xs = xstages + std::size_t(th) * xstage_size;
                                if (i1 > i0)
                                    map_rows(*xmap, x + (img * g.h + i0) * g.w * C, C, C, (i1 - i0) * g.w, xs);
                                xbase = xs;
                                xrow0 = i0;
                            }
                            const float* xr[max_kernel];
                            for (std::size_t oy = g0; oy < g1; ++oy) {
                                for (std::size_t i = 0; i < KH; ++i) {
                                    const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.pad_top);
                                    xr[i] = (iy < 0 || iy >= std::ptrdiff_t(g.h))
                                                ? zeros
                                                : xbase + (std::size_t(iy) - xrow0) * g.w * C;
                                }
                                const float* d = dyrow(std::ptrdiff_t(oy));
                                std::size_t c0 = 0;
                                if (k3) {
                                    for (; c0 + W <= C; c0 += W) dw_bwd_weight_vec<3, true>(g, xr, d, pq, in_w, c0, W);
                                    if (c0 < C) dw_bwd_weight_vec<3, false>(g, xr, d, pq, in_w, c0, C - c0);
                                } else {
                                    for (; c0 + W <= C; c0 += W) dw_bwd_weight_vec<0, true>(g, xr, d, pq, in_w, c0, W);
                                    if (c0 < C) dw_bwd_weight_vec<0, false>(g, xr, d, pq, in_w, c0, C - c0);
                                }
                            }
                        }
                        if (want_dx) {
                            const std::size_t iy1 = dw_first_input_row(g, g1);
                            for (std::size_t iy = dw_first_input_row(g, g0); iy < iy1; ++iy) {
                                const std::size_t xoff = (img * g.h + iy) * rowx;
                                float* dxr = staged ? staged : dx + xoff;
                                if (s1) {
                                    const float* rows[max_kernel];
                                    for (std::size_t i = 0; i < KH; ++i)
                                        rows[i] = dyrow(std::ptrdiff_t(iy + i) - std::ptrdiff_t(t.pad_top));
                                    float* yr[1] = {dxr};
                                    const float* rr[1] = {nullptr};
                                    if (k3) dw_forward_channels<3, 1>(t, rows, wf, yr, rr, row_ep, in_t);
                                    else dw_forward_channels<0, 1>(t, rows, wf, yr, rr, row_ep, in_t);
                                } else {
                                    const float* dyr[max_kernel];
                                    std::size_t ki[max_kernel];
                                    std::size_t nr = 0;
                                    for (std::size_t i = 0; i < KH; ++i) {
                                        const std::ptrdiff_t tt = std::ptrdiff_t(iy + g.pad_top) - std::ptrdiff_t(i);
                                        if (tt < 0 || tt % std::ptrdiff_t(g.sh) != 0 || std::size_t(tt) / g.sh >= g.oh)
                                            continue;
                                        dyr[nr] = dyrow(tt / std::ptrdiff_t(g.sh));
                                        ki[nr] = i;
                                        ++nr;
                                    }
                                    std::size_t c0 = 0;
                                    const bool k3s2 = KW == 3 && g.sw == 2;
                                    for (; c0 + W <= C; c0 += W)
                                        if (!k3s2 ||
                                            !(row_ep.stream
                                                  ? dw_bwd_input_k3s2<true, true>(g, dyr, ki, nr, w, dxr, c0, W)
                                                  : dw_bwd_input_k3s2<true>(g, dyr, ki, nr, w, dxr, c0, W)))
                                            dw_bwd_input_vec<true>(g, dyr, ki, nr, cp, np, w, dxr, c0, W);
                                    if (c0 < C &&
                                        (!k3s2 || !dw_bwd_input_k3s2<false>(g, dyr, ki, nr, w, dxr, c0, C - c0)))
                                        dw_bwd_input_vec<false>(g, dyr, ki, nr, cp, np, w, dxr, c0, C - c0);
                                }
                                if (dx_clamp)  // the row is complete: masked by its row of x (in cache)
                                    clamp_backward_stream(x + xoff, dxr, dxr, rowx, dx_clamp->lo, dx_clamp->hi);
                                if (sq) {
                                    // The row is complete: its sums with its row of x (both in cache).
                                    BatchNormInputGrad<ClampMaskFrom::affine> m = gmap;
                                    m.x = x + xoff;
                                    m.dy = dxr;
                                    batchnorm_backward_sums(m, dx_sums->mean, dx_sums->invstd, 0, g.w, cpad, sq);
                                }
                                if (dx_rows) dx_rows->consume(q, th, xoff / C, g.w, dxr);
                                else if (staged) stream_copy(staged, dx + xoff, rowx);
                            }
                        }
                    }
                }
            }
        }
        if (dx_ep.stream) stream_fence();
    });
    if (dx_sums)
        for (std::size_t k = 0; k < 2; ++k)
            for (std::size_t j = 0; j < C; ++j) {
                double v = 0;
                for (std::size_t q = 0; q < nch; ++q) v += chunk_sums[q * 2 * cpad + k * cpad + j];
                dx_sums->out[k * C + j] = v;
            }
    if (!dw) return;
    for (std::size_t k = 0; k < taps * C; ++k) {
        float s = part[k];
        for (std::size_t q = 1; q < nch; ++q) s += part[q * stride + k];
        dw[k] = s;
    }
}

}  // namespace typenet::kernels
