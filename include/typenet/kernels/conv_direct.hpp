/// @file kernels/conv_direct.hpp
/// Direct convolution for inputs with few channels (the stem of image networks:
/// MobileNetV2's 3x3 stride-2 convolution from 3 RGB channels to 32), forward and
/// weight gradient, NHWC input, HWIO weights.
///
/// With 3 input channels a window holds only `kh * kw * 3` values (27), too few for
/// im2col + gemm to pay for its copy and for loading and storing a gemm tile. Here:
/// - each thread copies, per output row, the `kh` input rows it reads into a small
///   *slab* (a few KB, in L1), with zeros in the padding and the optional input map
///   `x * scale + offset` applied on the way (so a preceding rescaling costs no pass
///   of its own, and the padding stays zero in the mapped domain, as when the
///   rescaling is a separate layer);
/// - the micro-kernel keeps `PX` output pixels x all output channels (`NV` vectors;
///   with 16 registers and 4 vectors, two passes of 2) in registers and, for each of
///   the window's values, broadcasts it from the slab and multiplies it with one row
///   of weights packed `[kh][kw][c][NV * W]`;
/// - the epilogue (bias, residual, clamp, accumulate) is applied in the store.
/// The weight gradient runs the transposed blocking: `KB` window values x all output
/// channels in registers, summed over the pixels of each output row, each thread
/// into its own partial sums, reduced in thread order (bit-identical results for a
/// given thread count).
///
/// Used by `conv2d_forward` / `conv2d_backward_weight` when `conv_direct_eligible`;
/// no allocation in the loops (slabs and packed weights live in the thread's scratch).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/function_ref.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {

namespace detail {

/// Largest number of output-channel vectors the direct kernel handles.
inline constexpr std::size_t direct_max_nv = 4;

/// Pixels (forward) or window values (weight gradient) held in registers beside
/// `NV` vectors of output channels.
template <std::size_t NV>
inline constexpr std::size_t direct_block = std::min<std::size_t>(8, (simd_registers - NV - 2) / NV);

/// Output-channel vectors the forward micro-kernel takes at once, of `NV`: all of them,
/// except 4 with 16 registers (AVX2 / SSE2), where 4 vectors leave room for only 2
/// pixels, whose weight loads then outnumber the FMAs' port share; two passes of 2
/// vectors x 6 pixels each load a window value once per 12 multiply-adds instead.
template <std::size_t NV>
inline constexpr std::size_t direct_group = (simd_registers < 32 && NV == 4) ? 2 : NV;

/// Copy `n` floats applying `m` (vector loads and stores, masked tail).
TYPENET_INLINE void map_floats(float* TYPENET_RESTRICT dst, const float* TYPENET_RESTRICT src, std::size_t n,
                               const InputMap& m) noexcept {
    const vfloat s(m.scale), o(m.offset);
    std::size_t i = 0;
    for (; i + simd_width <= n; i += simd_width) xsimd::fma(vfloat::load_unaligned(src + i), s, o).store_unaligned(dst + i);
    if (i < n) store_partial(dst + i, xsimd::fma(load_partial(src + i, n - i), s, o), n - i);
}

/// Fill one slab row: input row `iy` of image `img` mapped by `m`, slab pixel `u`
/// holding input column `u - pad_left` (zero outside the input), `slab_w` pixels.
inline void fill_slab_row(const ConvGeometry& g, const float* x, std::size_t img, std::size_t iy, std::size_t slab_w,
                          const InputMap& m, float* dst) noexcept {
    const std::size_t C = g.c, row = slab_w * C;
    const std::size_t left = g.pad_left, inside = std::min(g.w, slab_w - left);
    std::fill(dst, dst + left * C, 0.0f);
    map_floats(dst + left * C, x + ((img * g.h + iy) * g.w) * C, inside * C, m);
    std::fill(dst + (left + inside) * C, dst + row, 0.0f);
}

/// The `kh` slab rows an output row reads, kept in a ring of `kh` rows so that rows
/// shared with the previous output row (stride < kh) are not filled again; rows in the
/// padding point at a shared zero row.
class SlabRing {
public:
    static constexpr std::size_t max_rows = 64;
    SlabRing(const ConvGeometry& g, std::size_t slab_w, float* storage, const float* zero) noexcept
        : g_(g), slab_w_(slab_w), stride_(round_up(slab_w * g.c, simd_width)), storage_(storage), zero_(zero) {
        for (std::size_t i = 0; i < g.kh; ++i) held_[i] = -1;
    }
    /// Floats of storage the ring needs for `g`.
    static std::size_t size(const ConvGeometry& g, std::size_t slab_w) noexcept {
        return g.kh * round_up(slab_w * g.c, simd_width);
    }
    /// Point `rows[i]` at the slab row kernel row `i` of output row `oy` of image `img` reads.
    void rows_for(const float* x, std::size_t img, std::size_t oy, const InputMap& m, const float** rows) noexcept {
        for (std::size_t i = 0; i < g_.kh; ++i) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * g_.sh + i) - std::ptrdiff_t(g_.pad_top);
            if (iy < 0 || iy >= std::ptrdiff_t(g_.h)) {
                rows[i] = zero_;
                continue;
            }
            const std::size_t slot = std::size_t(iy) % g_.kh;
            const std::ptrdiff_t key = std::ptrdiff_t(img * g_.h) + iy;
            float* dst = storage_ + slot * stride_;
            if (held_[slot] != key) {
                fill_slab_row(g_, x, img, std::size_t(iy), slab_w_, m, dst);
                held_[slot] = key;
            }
            rows[i] = dst;
        }
    }

private:
    const ConvGeometry& g_;
    std::size_t slab_w_, stride_;
    float* storage_;
    const float* zero_;
    std::ptrdiff_t held_[max_rows];
};

/// Forward micro-kernel: `PX` output pixels x `NV` channel vectors. `rows[i] + off` is
/// the slab of kernel row `i` at the tile's first pixel, `step` the slab floats between
/// neighbouring output pixels, `w` the packed weights of the tile's first vector, their
/// rows `ldw` floats apart. The sums go to `out`.
///
/// Not inlined, and the sums in locals copied to `out` at the end: inlined into the
/// row loop (whose epilogue values GCC 12 keeps in vector registers), the weight vectors
/// went to the stack and every multiply-add read them back from there; called with `out`
/// as the accumulator, every multiply-add's result was stored to it (it may alias the
/// inputs). Stem, 224x224x3 -> 32, AMD EPYC (Zen 5, AVX-512), one thread, batch 1:
/// 0.278 -> 0.152-0.156 ms (78 -> 139-143 GFLOP/s); batch 8: 72 -> 135 GFLOP/s.
template <std::size_t PX, std::size_t NV>
__attribute__((noinline)) void direct_tile(const float* const* rows, std::size_t off, std::size_t kh, std::size_t kwc,
                                           std::size_t step, const float* TYPENET_RESTRICT w, std::size_t ldw,
                                           vfloat (&out)[PX][NV]) noexcept {
    static_assert(NV >= 1 && NV <= 4, "direct_tile: 1 to 4 channel vectors");
    constexpr std::size_t W = simd_width;
    vfloat acc[PX][NV];
#pragma GCC unroll 8
    for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[p][v] = vfloat(0.0f);
    for (std::size_t i = 0; i < kh; ++i) {
        const float* s = rows[i] + off;
        for (std::size_t k = 0; k < kwc; ++k, w += ldw) {
            // Named vectors rather than an array (which GCC also kept in memory).
            const vfloat w0 = vfloat::load_aligned(w);
            const vfloat w1 = NV > 1 ? vfloat::load_aligned(w + W) : w0;
            const vfloat w2 = NV > 2 ? vfloat::load_aligned(w + 2 * W) : w0;
            const vfloat w3 = NV > 3 ? vfloat::load_aligned(w + 3 * W) : w0;
#pragma GCC unroll 8
            for (std::size_t p = 0; p < PX; ++p) {
                const vfloat xb(s[p * step + k]);
                acc[p][0] = xsimd::fma(xb, w0, acc[p][0]);
                if constexpr (NV > 1) acc[p][1] = xsimd::fma(xb, w1, acc[p][1]);
                if constexpr (NV > 2) acc[p][2] = xsimd::fma(xb, w2, acc[p][2]);
                if constexpr (NV > 3) acc[p][3] = xsimd::fma(xb, w3, acc[p][3]);
            }
        }
    }
#pragma GCC unroll 8
    for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) out[p][v] = acc[p][v];
}

/// Forward over all output rows, `NV` vectors of output channels.
template <std::size_t NV>
void conv_direct_forward_nv(const ConvGeometry& g, std::size_t cout, const float* x, const float* w, float* y,
                            const Epilogue& ep, const InputMap& m) {
    constexpr std::size_t W = simd_width, G = direct_group<NV>, PX = direct_block<G>;
    const std::size_t K = g.kh * g.kw * g.c, kwc = g.kw * g.c, ldw = NV * W;
    // Weights packed [K][NV * W] and the bias padded to NV * W, zero beyond cout.
    float* wp = scratch(Slot::conv_tmp, K * ldw + ldw);
    for (std::size_t k = 0; k < K; ++k) {
        std::copy(w + k * cout, w + (k + 1) * cout, wp + k * ldw);
        std::fill(wp + k * ldw + cout, wp + (k + 1) * ldw, 0.0f);
    }
    float* bias = wp + K * ldw;
    for (std::size_t c = 0; c < ldw; ++c) bias[c] = ep.bias && c < cout ? ep.bias[c] : 0.0f;
    const std::size_t tiles = ceil_div(g.ow, PX);
    const std::size_t slab_w = std::max(g.pad_left + g.w, (tiles * PX - 1) * g.sw + g.kw);
    const std::size_t step = g.sw * g.c, rows = g.n * g.oh;
    // The epilogue in locals (the compiler cannot keep fields of `ep` in registers
    // across stores to y).
    const std::size_t ldr = ep.ldr ? ep.ldr : cout;
    const float* residual = ep.residual;
    const bool accumulate = ep.accumulate, clamps = ep.clamps(), full = cout == ldw;
    const vfloat lo(ep.lo), hi(ep.hi);
    const bool stream = use_streaming_stores(y, cout, g.output_pixels(), cout, accumulate) && full;
    const double flops = 2.0 * double(g.output_pixels()) * double(K) * double(cout);
    const int T = std::min<int>(threads_for(flops, 2.0e5), int(rows));
    // Output rows in units of 8, handed out as threads become free (each row is computed
    // the same way whichever thread takes it; the ring refills the rows a jump needs).
    constexpr std::size_t unit_rows = 8;
    UnitQueue queue(ceil_div(rows, unit_rows));
    run_parallel(T, [&](int, int) {
        SlabRing ring(g, slab_w, scratch(Slot::im2col, SlabRing::size(g, slab_w)), zero_floats(slab_w * g.c));
        const float* srows[SlabRing::max_rows];
        // The epilogue in this thread's locals too: the lambda reaches the ones above by
        // reference, and would reload them after every store to y (it may alias them).
        const float* const bias_l = bias;
        const bool accumulate_l = accumulate, clamps_l = clamps, stream_l = stream, full_l = full;
        const vfloat lo_l = lo, hi_l = hi;
        std::size_t u;
        while (queue.next(u)) {
            for (std::size_t r = u * unit_rows; r < std::min(rows, (u + 1) * unit_rows); ++r) {
                ring.rows_for(x, r / g.oh, r % g.oh, m, srows);
                float* yrow = y + r * g.ow * cout;
                const float* rrow = residual ? residual + r * g.ow * ldr : nullptr;
                for (std::size_t t = 0; t < tiles; ++t) {
                    const std::size_t px = std::min(PX, g.ow - t * PX);
                    // The tile's channel vectors in groups of G (the slab rows stay in L1).
                    for (std::size_t v0 = 0; v0 < NV; v0 += G) {
                        float* yt = yrow + t * PX * cout + v0 * W;
                        const float* rt = rrow ? rrow + t * PX * ldr + v0 * W : nullptr;
                        vfloat acc[PX][G];
                        direct_tile<PX, G>(srows, t * PX * step, g.kh, kwc, step, wp + v0 * W, ldw, acc);
                        if (px == PX && full_l) {
                            // Each epilogue step over the whole tile (tests once per tile).
#pragma GCC unroll 4
                            for (std::size_t v = 0; v < G; ++v) {
                                const vfloat bv = vfloat::load_aligned(bias_l + (v0 + v) * W);
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p) acc[p][v] += bv;
                            }
                            if (accumulate_l) {
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
                                    for (std::size_t v = 0; v < G; ++v) acc[p][v] += vfloat::load_unaligned(yt + p * cout + v * W);
                            }
                            if (rt) {
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
                                    for (std::size_t v = 0; v < G; ++v) acc[p][v] += vfloat::load_unaligned(rt + p * ldr + v * W);
                            }
                            if (clamps_l) {
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
                                    for (std::size_t v = 0; v < G; ++v) acc[p][v] = clamp(acc[p][v], lo_l, hi_l);
                            }
                            if (stream_l) {
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
                                    for (std::size_t v = 0; v < G; ++v) store_stream(yt + p * cout + v * W, acc[p][v]);
                            } else {
#pragma GCC unroll 8
                                for (std::size_t p = 0; p < PX; ++p)
#pragma GCC unroll 4
                                    for (std::size_t v = 0; v < G; ++v) acc[p][v].store_unaligned(yt + p * cout + v * W);
                            }
                            continue;
                        }
                        for (std::size_t p = 0; p < px; ++p)
                            for (std::size_t v = 0; v < G && (v0 + v) * W < cout; ++v) {
                                float* yp = yt + p * cout + v * W;
                                const std::size_t n = std::min(W, cout - (v0 + v) * W);
                                vfloat a = acc[p][v] + vfloat::load_aligned(bias_l + (v0 + v) * W);
                                if (accumulate_l) a += load_n(yp, n);
                                if (rt) a += load_n(rt + p * ldr + v * W, n);
                                if (clamps_l) a = clamp(a, lo_l, hi_l);
                                store_n(yp, a, n);
                            }
                    }
                }
            }
        }
        if (stream_l) stream_fence();
    });
}

/// Weight-gradient micro-kernel: `KB` window values (at `src[k]` for the first pixel,
/// `step` floats further for each next one) x `NV` channel vectors, summed over `px`
/// pixels of one output row. The output-gradient row starts at `dy` (this group's first
/// channel), pixels `ld` floats apart; `n` channels are valid from there (all `NV * W`
/// when `Full`, the rest read as zero otherwise).
template <std::size_t KB, std::size_t NV, bool Full>
TYPENET_INLINE void direct_grad_tile(const float* const (&src)[KB], std::size_t step, const float* TYPENET_RESTRICT dy,
                                     std::size_t ld, std::size_t n, std::size_t px, vfloat (&acc)[KB][NV]) noexcept {
    constexpr std::size_t W = simd_width;
#pragma GCC unroll 16
    for (std::size_t k = 0; k < KB; ++k)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[k][v] = vfloat(0.0f);
    for (std::size_t p = 0, o = 0; p < px; ++p, dy += ld, o += step) {
        vfloat g[NV];
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v)
            g[v] = Full ? vfloat::load_unaligned(dy + v * W)
                        : (v * W < n ? load_n(dy + v * W, std::min(W, n - v * W)) : vfloat(0.0f));
#pragma GCC unroll 16
        for (std::size_t k = 0; k < KB; ++k) {
            const vfloat xb(src[k][o]);
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) acc[k][v] = xsimd::fma(xb, g[v], acc[k][v]);
        }
    }
}

/// Weight gradient over all output rows, `NV` vectors of output channels. Output-gradient
/// row r (image * oh + oy) comes from `dy_row(r, buf)`, which returns a pointer to it
/// (stored: into dy; produced: written to `buf`, the thread's `ow * cout` floats). Called
/// once per row, so it is type-erased: one copy of the kernel serves both forms.
template <std::size_t NV>
void conv_direct_backward_weight_nv(const ConvGeometry& g, std::size_t cout, const float* x,
                                    FunctionRef<const float*(std::size_t, float*)> dy_row, float* dw,
                                    bool accumulate, const InputMap& m, bool produced) {
    constexpr std::size_t W = simd_width, G = direct_group<NV>, KB = direct_block<G>;
    const std::size_t K = g.kh * g.kw * g.c, kwc = g.kw * g.c, ldp = NV * W;
    const std::size_t slab_w = std::max(g.pad_left + g.w, (g.ow - 1) * g.sw + g.kw);
    const std::size_t step = g.sw * g.c, rows = g.n * g.oh;
    const std::size_t chunks = ceil_div(K, KB), psize = chunks * KB * ldp;
    const double flops = 2.0 * double(g.output_pixels()) * double(K) * double(cout);
    const int T = std::min<int>(threads_for(flops, 2.0e5), int(rows));
    // Every thread's buffers come from the caller, before the barrier below: partial
    // sums, slab rings, and one zero row shared by all.
    float* partial = scratch(Slot::partial, std::size_t(T) * psize);
    const std::size_t ring = SlabRing::size(g, slab_w), zrow = round_up(slab_w * g.c, W);
    float* slabs = scratch(Slot::im2col, std::size_t(T) * ring + zrow);
    float* zero = slabs + std::size_t(T) * ring;
    std::fill(zero, zero + zrow, 0.0f);
    const std::size_t rowbuf = round_up(g.ow * cout, 16);
    float* dybufs = produced ? scratch(Slot::stage, std::size_t(T) * rowbuf) : nullptr;
    run_parallel(T, [&](int t, int nt) {
        float* mine = partial + std::size_t(t) * psize;
        std::fill(mine, mine + psize, 0.0f);
        const Range rr = split_range(rows, std::size_t(nt), std::size_t(t));
        SlabRing slab(g, slab_w, slabs + std::size_t(t) * ring, zero);
        const float* srows[SlabRing::max_rows];
        float* dybuf = dybufs ? dybufs + std::size_t(t) * rowbuf : nullptr;
        for (std::size_t r = rr.begin; r < rr.end; ++r) {
            slab.rows_for(x, r / g.oh, r % g.oh, m, srows);
            const float* dyr = dy_row(r, dybuf);
            for (std::size_t q = 0; q < chunks; ++q) {
                // Window values q*KB ..; values past K read the zero row and are never stored.
                const float* src[KB];
                for (std::size_t j = 0; j < KB; ++j) {
                    const std::size_t k = q * KB + j;
                    src[j] = k < K ? srows[k / kwc] + k % kwc : zero;
                }
                // The channel vectors in groups of G, as in the forward (the slab rows and
                // the gradient row stay in L1 across the groups).
                for (std::size_t v0 = 0; v0 < NV; v0 += G) {
                    vfloat acc[KB][G];
                    const std::size_t n = cout > v0 * W ? cout - v0 * W : 0;
                    if (n >= G * W)
                        direct_grad_tile<KB, G, true>(src, step, dyr + v0 * W, cout, n, g.ow, acc);
                    else
                        direct_grad_tile<KB, G, false>(src, step, dyr + v0 * W, cout, n, g.ow, acc);
                    float* dst = mine + q * KB * ldp + v0 * W;
                    for (std::size_t j = 0; j < KB; ++j)
#pragma GCC unroll 4
                        for (std::size_t v = 0; v < G; ++v) {
                            float* d = dst + j * ldp + v * W;
                            (vfloat::load_aligned(d) + acc[j][v]).store_aligned(d);
                        }
                }
            }
        }
        TYPENET_OMP(barrier)
        reduce_thread_copies(partial, psize, ldp, K, cout, dw, accumulate, t, nt);
    });
}

}  // namespace detail

/// True when `conv2d_forward` / `conv2d_backward_weight` run this direct kernel:
/// a full convolution with at most 4 input channels, a window of at most 64 values and
/// at most 4 SIMD vectors of output channels (MobileNetV2's stem on AVX2 and AVX-512).
inline bool conv_direct_eligible(const ConvGeometry& g, std::size_t cout) noexcept {
    return g.c <= 4 && g.kh * g.kw * g.c <= 64 && cout > 0 && detail::ceil_div(cout, simd_width) <= detail::direct_max_nv;
}

namespace detail {
/// Throws `shape_error` unless `conv_direct_eligible(g, cout)`.
inline void check_direct(const ConvGeometry& g, std::size_t cout, const char* who) {
    if (!conv_direct_eligible(g, cout))
        throw shape_error(std::string(who) + ": " + std::to_string(g.c) + " input channels, a " +
                          std::to_string(g.kh) + "x" + std::to_string(g.kw) + " window and " + std::to_string(cout) +
                          " output channels are not for the direct kernel (at most 4 channels, 64 window values and " +
                          std::to_string(direct_max_nv * simd_width) + " output channels)");
}
}  // namespace detail

/// Direct convolution forward (see the file comment); requires `conv_direct_eligible`
/// (throws `shape_error` otherwise).
inline void conv_direct_forward(const ConvGeometry& g, std::size_t cout, const float* x, const float* w, float* y,
                                const Epilogue& ep = {}, const InputMap& m = {}) {
    detail::check_direct(g, cout, "conv_direct_forward");
    switch (detail::ceil_div(cout, simd_width)) {
        case 1: return detail::conv_direct_forward_nv<1>(g, cout, x, w, y, ep, m);
        case 2: return detail::conv_direct_forward_nv<2>(g, cout, x, w, y, ep, m);
        case 3: return detail::conv_direct_forward_nv<3>(g, cout, x, w, y, ep, m);
        default: return detail::conv_direct_forward_nv<4>(g, cout, x, w, y, ep, m);
    }
}

/// Output rows [r0, r1) of image `img` of the direct convolution `g` (see
/// `conv_direct_forward`), written to `y` (`(r1 - r0) * g.ow * cout` floats, rows
/// `g.ow * cout` apart): the producer of a network's first rows for a fused block
/// (`stem_inverted_residual_forward`). Runs the same tile code on the input rows these
/// output rows read (a geometry of one image, cut to them, that keeps the original
/// padding where the rows reach it), so every value has the bits of the whole
/// convolution's. Serial inside a parallel region. Requires `conv_direct_eligible` and
/// `r0 < r1 <= g.oh`, `img < g.n`.
inline void conv_direct_forward_rows(const ConvGeometry& g, std::size_t cout, const float* x, const float* w,
                                     std::size_t img, std::size_t r0, std::size_t r1, float* y,
                                     const Epilogue& ep = {}, const InputMap& m = {}) {
    if (r0 >= r1 || r1 > g.oh || img >= g.n)
        throw shape_error("conv_direct_forward_rows: rows [" + std::to_string(r0) + ", " + std::to_string(r1) +
                          ") of image " + std::to_string(img) + " outside " + g.to_string());
    ConvGeometry s = g;
    s.n = 1;
    s.oh = r1 - r0;
    const std::size_t first = r0 * g.sh;                  // first row read, padded coordinates
    const std::size_t last = (r1 - 1) * g.sh + g.kh;      // one past the last, padded
    const std::size_t lo = first > g.pad_top ? first - g.pad_top : 0;
    const std::size_t hi = std::min(g.h, last - g.pad_top);  // pad_top < kh <= last
    s.pad_top = first < g.pad_top ? g.pad_top - first : 0;
    s.h = hi - lo;
    Epilogue e = ep;
    if (e.residual) e.residual += r0 * g.ow * (e.ldr ? e.ldr : cout);
    conv_direct_forward(s, cout, x + (img * g.h + lo) * g.w * g.c, w, y, e, m);
}

/// Output rows of the direct convolution `g` on demand (row = image * oh + oy, `g.ow *
/// cout` floats each), for callers that produce the output piecewise
/// (`produce_channel_mean_var`): the stem of a training step takes its batch statistics
/// while each piece is in cache instead of in two passes over the stored output. Each row
/// has the bits of `conv_direct_forward`'s (see `conv_direct_forward_rows`). Serial: for a
/// parallel region's threads. Requires `conv_direct_eligible` (checked here).
class DirectRows {
public:
    DirectRows(const ConvGeometry& g, std::size_t cout, const float* x, const float* w, const InputMap& m = {})
        : g_(g), cout_(cout), x_(x), w_(w), m_(m) {
        detail::check_direct(g, cout, "DirectRows");
        if (!x || !w) throw shape_error("DirectRows: null input or weights");
    }
    void operator()(std::size_t r0, std::size_t r1, float* out) const {
        for (std::size_t r = r0; r < r1;) {
            const std::size_t img = r / g_.oh, oy = r % g_.oh, n = std::min(r1 - r, g_.oh - oy);  // within one image
            conv_direct_forward_rows(g_, cout_, x_, w_, img, oy, oy + n, out, {}, m_);
            out += n * g_.ow * cout_;
            r += n;
        }
    }

private:
    ConvGeometry g_;
    std::size_t cout_;
    const float* x_;
    const float* w_;
    InputMap m_;
};

/// Direct convolution weight gradient (HWIO, overwritten or accumulated); requires
/// `conv_direct_eligible` (throws `shape_error` otherwise).
inline void conv_direct_backward_weight(const ConvGeometry& g, std::size_t cout, const float* x, const float* dy,
                                        float* dw, bool accumulate = false, const InputMap& m = {}) {
    detail::check_direct(g, cout, "conv_direct_backward_weight");
    const std::size_t rowlen = g.ow * cout;
    auto stored = [dy, rowlen](std::size_t r, float*) { return dy + r * rowlen; };
    switch (detail::ceil_div(cout, simd_width)) {
        case 1: return detail::conv_direct_backward_weight_nv<1>(g, cout, x, stored, dw, accumulate, m, false);
        case 2: return detail::conv_direct_backward_weight_nv<2>(g, cout, x, stored, dw, accumulate, m, false);
        case 3: return detail::conv_direct_backward_weight_nv<3>(g, cout, x, stored, dw, accumulate, m, false);
        default: return detail::conv_direct_backward_weight_nv<4>(g, cout, x, stored, dw, accumulate, m, false);
    }
}

}  // namespace typenet::kernels
