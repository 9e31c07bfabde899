/// @file kernels/inverted_residual.hpp
/// MobileNetV2's inverted-residual block for inference, fused:
/// expand 1x1 (+bias, ReLU6) -> depthwise kxk stride s (+bias, ReLU6) -> project 1x1
/// (+bias, optional residual add of the block input).
///
/// Computed one image at a time in bands of output rows, so the expanded tensor never
/// goes to memory: for each band, the expanded input rows it needs are computed into
/// a small ring of rows (rows shared with the previous band are kept, not recomputed),
/// the depthwise rows into a band buffer, and the projection writes the band's output
/// rows. The ring and band buffers (per thread, planned for 3/8 of L2, at most 384 KB)
/// stay in L2.
/// Threads take whole images, or parts of an image when there are fewer images than
/// threads. Every output value is computed by the same operations as the unfused
/// sequence `gemm -> depthwise_forward -> gemm`, whatever the banding or thread count.
///
/// `stem_inverted_residual_forward` runs a network's first convolution (the direct kernel
/// from RGB) and a block without expansion the same way: the ring is filled with the
/// convolution's output rows instead of expanded ones.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/conv_direct.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {

/// The weights of one inverted-residual block, with the 1x1 weights packed once for
/// the gemm micro-kernel (keep one per layer for inference). The depthwise weights and
/// the biases are referenced, not copied: they must outlive this object's use.
struct InvertedResidualWeights {
    PackedMatrix expand;               ///< Cin x Cexp (unused when the block has no expansion)
    PackedMatrix project;              ///< Cexp x Cout
    const float* expand_bias = nullptr;   ///< Cexp, or nullptr
    const float* depthwise = nullptr;     ///< [kh][kw][Cexp]
    const float* depthwise_bias = nullptr;///< Cexp, or nullptr
    const float* project_bias = nullptr;  ///< Cout, or nullptr
    bool has_expand = true;

    /// Pack `we` (Cin x Cexp, row-major; ignored when `with_expand` is false) and `wp`
    /// (Cexp x Cout) and keep the other pointers.
    void pack(std::size_t cin, std::size_t cexp, std::size_t cout, const float* we, const float* be, const float* wd,
              const float* bd, const float* wp, const float* bp, bool with_expand = true) {
        if (!wd || !wp || (with_expand && !we))
            throw shape_error("InvertedResidualWeights::pack: null weight pointer");
        has_expand = with_expand;
        if (with_expand) expand.pack(Trans::No, cin, cexp, we, cexp);
        project.pack(Trans::No, cexp, cout, wp, cout);
        expand_bias = be;
        depthwise = wd;
        depthwise_bias = bd;
        project_bias = bp;
    }
};

namespace detail {

/// Where a block without expansion gets its input rows when they are computed as the
/// block goes rather than read from a tensor (`stem_inverted_residual_forward`):
/// `rows(ctx, img, r0, r1, dst)` writes input rows [r0, r1) of image `img` to `dst`
/// (rows `w * c` floats apart). Called serially by each thread of the block.
struct RowSource {
    void (*rows)(const void* ctx, std::size_t img, std::size_t r0, std::size_t r1, float* dst) = nullptr;
    const void* ctx = nullptr;
    explicit operator bool() const noexcept { return rows != nullptr; }
};

/// Everything a thread needs to run its part of a fused block.
struct FusedBlock {
    ConvGeometry g;  ///< depthwise geometry (c = Cexp)
    std::size_t cin = 0, cout = 0;
    const float* x = nullptr;
    float* y = nullptr;
    bool expand = true, residual = false;
    BView we, wp;
    const float *be = nullptr, *wd = nullptr, *bd = nullptr, *bp = nullptr;
    std::size_t band = 1;  ///< output rows per band
    std::size_t ring = 1;  ///< expanded rows kept
    const float* zeros = nullptr;
    bool stream = false;      ///< output written with non-temporal stores (large, aligned)
    bool prefetch_x = false;  ///< no expansion and a large input: prefetch its rows ahead
    RowSource source;         ///< without expansion: input rows made into the ring by this, `x` unused
    /// Whether the input rows go through the ring (expanded, or made by `source`).
    bool ringed() const noexcept { return expand || bool(source); }
};

/// Bytes of ring and band buffers a thread plans for: 384 KB, or 3/8 of a smaller L2
/// (the buffers share it with the block's weights and its input and output rows).
/// Measured with a 512 KB L2 (AMD EPYC, AVX2; two blocks run at once on the two cores):
/// block 1 (112x112 16-t6->24 s2) 1.47 / 1.69 -> 1.18 / 1.33 ms with 192 KB instead of
/// 384; the other blocks within the noise.
inline std::size_t band_budget_bytes() noexcept {
    return std::min<std::size_t>(384u * 1024u, l2_cache_bytes() / 8 * 3);
}

/// Output rows per band for depthwise geometry `g`: the ring of input rows and the band of
/// output rows in `band_budget_bytes`, at least ~64 rows of gemm per band where possible,
/// never more than the image.
inline std::size_t band_rows(const ConvGeometry& g) noexcept {
    const std::size_t orow = g.ow * g.c, irow = g.w * g.c;
    const std::size_t budget = band_budget_bytes() / sizeof(float);
    std::size_t band = budget / (orow + g.sh * irow + 1);
    band = std::max<std::size_t>(band, std::min<std::size_t>(g.oh, (64 + g.ow - 1) / g.ow));
    return std::clamp<std::size_t>(band, 1, std::max<std::size_t>(g.oh, 1));
}

/// Input rows a band of `band` output rows reads: the size of the ring that feeds it.
inline std::size_t ring_rows(const ConvGeometry& g, std::size_t band) noexcept { return (band - 1) * g.sh + g.kh; }

/// Output rows per band and ring rows for a block (`band_budget_bytes` of buffers per thread).
inline void plan_bands(FusedBlock& f) {
    const ConvGeometry& g = f.g;
    f.band = band_rows(g);
    f.ring = ring_rows(g, f.band);
    f.stream = use_streaming_stores(f.y, f.cout, g.output_pixels(), f.cout, false);
    f.prefetch_x = !f.ringed() && g.input_size() * sizeof(float) > l2_cache_bytes();
}

/// Depthwise rows [b_a, b_b) of the band that starts at output row `oy0` of one image,
/// two rows at a time (one at a time for a kernel other than 3x3, `K == 0`), into
/// `dbuf` (band row b at `dbuf + b * ow * c`). `row_ptr(iy)` gives input row iy of the
/// image (a ring slot, the input itself, or a zero row for padding); `prefetch_src`, when
/// not null, is the image's input, whose next rows are prefetched as the band is made.
/// Shared by the inference block (`fused_rows`) and the training forward
/// (`expand_depthwise_forward`).
template <int K, class RowPtr>
TYPENET_INLINE void ring_depthwise_rows(const ConvGeometry& g, const RowPtr& row_ptr, const float* wd,
                                        const ChannelEpilogue& de, Interior in, std::size_t oy0, std::size_t b_a,
                                        std::size_t b_b, float* dbuf, const float* prefetch_src = nullptr) {
    const std::size_t KH = g.kh, orow = g.ow * g.c;
    for (std::size_t b = b_a; b < b_b;) {
        const int rb = (K != 0 && b + 1 < b_b) ? 2 : 1;
        const float* rows[2 * (K ? K : max_kernel)];
        float* yr[2];
        const float* rr[2] = {nullptr, nullptr};
        for (int q = 0; q < rb; ++q) {
            const std::size_t oy = oy0 + b + std::size_t(q);
            for (std::size_t i = 0; i < KH; ++i)
                rows[std::size_t(q) * KH + i] = row_ptr(std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.pad_top));
            yr[q] = dbuf + (b + std::size_t(q)) * orow;
        }
        RowPrefetch pf;
        if (prefetch_src) pf = next_rows_prefetch(g, prefetch_src, oy0 + b, std::size_t(rb), in);
        if (rb == 2)
            dw_forward_channels<K, 2>(g, rows, wd, yr, rr, de, in, pf);
        else
            dw_forward_channels<K, 1>(g, rows, wd, yr, rr, de, in, pf);
        b += std::size_t(rb);
    }
}

/// Output rows [oy_a, oy_b) of image `img`; `ring` holds `f.ring` expanded rows, `dbuf`
/// `f.band` depthwise output rows. Alone (`nt == 1`), or as thread `t` of a team of
/// `nt` sharing `ring` and `dbuf`: each stage is then split between the threads, with
/// a barrier after it.
template <int K>
void fused_rows(const FusedBlock& f, std::size_t img, std::size_t oy_a, std::size_t oy_b, float* ring, float* dbuf,
                std::size_t t = 0, std::size_t nt = 1) {
    constexpr std::size_t MR = GemmShape::mr;
    auto my_rows = [&](std::size_t M) {  // this thread's share of M rows, in whole tiles
        const Range r = split_range(ceil_div(M, MR), nt, t);
        return Range{std::min(M, r.begin * MR), std::min(M, r.end * MR)};
    };
    const ConvGeometry& g = f.g;
    const std::size_t C = g.c, H = g.h, Wd = g.w, rowlen = Wd * C, R = f.ring;
    const Interior in = interior(g.w, g.kw, g.sw, g.pad_left, g.ow);
    ChannelEpilogue de;
    de.bias = f.bd;
    de.clamp = true;
    de.lo = 0.0f;
    de.hi = 6.0f;
    de.ldr = C;
    const float* ximg = f.source ? nullptr : f.x + img * H * Wd * f.cin;
    std::size_t next = 0;  // next input row to expand
    bool started = false;
    auto row_ptr = [&](std::ptrdiff_t iy) -> const float* {
        if (iy < 0 || iy >= std::ptrdiff_t(H)) return f.zeros;
        if (!f.ringed()) return ximg + std::size_t(iy) * rowlen;
        return ring + (std::size_t(iy) % R) * rowlen;
    };
    for (std::size_t oy0 = oy_a; oy0 < oy_b; oy0 += f.band) {
        const std::size_t oy1 = std::min(oy_b, oy0 + f.band), nb = oy1 - oy0;
        const std::size_t lo = oy0 * g.sh > g.pad_top ? oy0 * g.sh - g.pad_top : 0;
        const std::size_t hi = std::min(H, (oy1 - 1) * g.sh + g.kh - g.pad_top);  // pad_top < kh
        if (f.ringed() && hi > lo) {
            std::size_t r = started ? std::max(lo, next) : lo;
            while (r < hi) {
                const std::size_t slot = r % R, run = std::min(hi - r, R - slot);
                if (f.source) {
                    const Range mine = split_range(run, nt, t);
                    if (mine.end > mine.begin)
                        f.source.rows(f.source.ctx, img, r + mine.begin, r + mine.end, ring + (slot + mine.begin) * rowlen);
                    r += run;
                    continue;
                }
                Epilogue ee;
                ee.bias = f.be;
                ee.lo = 0.0f;
                ee.hi = 6.0f;
                GemmProblem P{Trans::No, run * Wd, C, f.cin, ximg + r * Wd * f.cin, f.cin, ring + slot * rowlen, C, ee};
                const Range mine = my_rows(run * Wd);
                gemm_region(P, f.we, mine.begin, mine.end, 0, f.we.layout.panels(), 0, f.cin, P.C, C, true, false);
                r += run;
            }
            next = hi;
            started = true;
        }
        if (nt > 1) {
            TYPENET_OMP(barrier)  // expanded rows ready; the previous projection is done
        }
        // Depthwise, two output rows at a time, into the band buffer.
        const Range pairs = split_range((nb + 1) / 2, nt, t);
        ring_depthwise_rows<K>(g, row_ptr, f.wd, de, in, oy0, 2 * pairs.begin, std::min(nb, 2 * pairs.end), dbuf,
                               f.prefetch_x ? ximg : nullptr);
        if (nt > 1) {
            TYPENET_OMP(barrier)  // depthwise rows ready
        }
        // Project the band (plus the residual rows of the input).
        Epilogue pe;
        pe.bias = f.bp;
        if (f.residual) {
            pe.residual = ximg + oy0 * g.ow * f.cin;
            pe.ldr = f.cin;
        }
        const std::size_t M = nb * g.ow;
        GemmProblem P{Trans::No, M, f.cout, C, dbuf, C, f.y + (img * g.oh + oy0) * g.ow * f.cout, f.cout, pe};
        P.stream = f.stream;
        const Range mine = my_rows(M);
        gemm_region(P, f.wp, mine.begin, mine.end, 0, f.wp.layout.panels(), 0, C, P.C, f.cout, true, false);
    }
}

/// Run a planned block on `threads` threads.
///
/// Threads take whole images when there are at least as many images as threads (the
/// next image as each becomes free).
/// Otherwise each image is split into segments of output rows, one per thread (each
/// recomputing the few expanded rows its segment shares with the next), unless the
/// segments would be so short that this duplicated work is large: then the threads
/// work as a team on each band, splitting every stage between them.
inline void fused_run(const FusedBlock& f, int threads) {
    const ConvGeometry& g = f.g;
    const std::size_t T = std::size_t(threads);
    const std::size_t ringsz = f.ringed() ? f.ring * g.w * g.c : 0, dsz = f.band * g.ow * g.c;
    const std::size_t segs = g.n >= T ? 1 : std::min(g.oh, ceil_div(T, g.n));
    const double halo = g.kh > g.sh ? double(g.kh - g.sh) / double(ceil_div(g.oh, segs) * g.sh) : 0.0;
    if (T > 1 && segs > 1 && halo > 0.15) {
        float* mem = scratch(Slot::fused, round_up(ringsz, 16) + dsz + 16);
        run_parallel(threads, [&](int t, int nt) {
            for (std::size_t img = 0; img < g.n; ++img) {
                if (g.kh == 3 && g.kw == 3)
                    fused_rows<3>(f, img, 0, g.oh, mem, mem + round_up(ringsz, 16), std::size_t(t), std::size_t(nt));
                else
                    fused_rows<0>(f, img, 0, g.oh, mem, mem + round_up(ringsz, 16), std::size_t(t), std::size_t(nt));
            }
            if (f.stream) stream_fence();
        });
        return;
    }
    // Units: (image, segment of output rows), each computed whole by one thread from the
    // block's input alone: handed out as threads become free.
    const std::size_t units = g.n * segs;
    UnitQueue queue(units);
    run_parallel(threads, [&](int, int) {
        float* mem = scratch(Slot::fused, round_up(ringsz, 16) + dsz + 16);
        float* ring = mem;
        float* dbuf = mem + round_up(ringsz, 16);
        std::size_t u;
        while (queue.next(u)) {
            const std::size_t img = u / segs, s = u % segs;
            const Range rr = split_range(g.oh, segs, s);
            if (g.kh == 3 && g.kw == 3)
                fused_rows<3>(f, img, rr.begin, rr.end, ring, dbuf);
            else
                fused_rows<0>(f, img, rr.begin, rr.end, ring, dbuf);
        }
        if (f.stream) stream_fence();
    });
}

/// Validate a fused block's arguments.
inline void check_fused(const ConvGeometry& g, std::size_t cin, std::size_t cout, const float* x, const float* y,
                        bool expand, bool residual) {
    const char* who = "inverted_residual_forward";
    g.check(who);
    if (g.kh > max_kernel) throw shape_error(std::string(who) + ": depthwise kernel too tall");
    if (!x || !y) throw shape_error(std::string(who) + ": null tensor pointer");
    if (cin == 0 || cout == 0) throw shape_error(std::string(who) + ": zero channels");
    if (!expand && cin != g.c)
        throw shape_error(std::string(who) + ": without expansion the depthwise channels (" + std::to_string(g.c) +
                          ") must equal the input channels (" + std::to_string(cin) + ")");
    if (residual && (cin != cout || g.oh != g.h || g.ow != g.w))
        throw shape_error(std::string(who) + ": a residual needs equal input and output shapes (" +
                          std::to_string(g.h) + "x" + std::to_string(g.w) + "x" + std::to_string(cin) + " vs " +
                          std::to_string(g.oh) + "x" + std::to_string(g.ow) + "x" + std::to_string(cout) + ")");
}


/// A block planned from pre-packed weights (checked by the caller); with `source`, the
/// input rows come from it and `x` is not read.
inline FusedBlock planned_block(const ConvGeometry& g, std::size_t cin, std::size_t cout, const float* x,
                                const InvertedResidualWeights& w, float* y, bool residual, RowSource source = {}) {
    FusedBlock f;
    f.g = g;
    f.cin = cin;
    f.cout = cout;
    f.x = source ? nullptr : x;
    f.y = y;
    f.expand = w.has_expand;
    f.residual = residual;
    f.source = source;
    if (f.expand) {
        f.we.packed = w.expand.data();
        f.we.packed_rows = cin;
        f.we.layout = w.expand.layout();
    }
    f.wp.packed = w.project.data();
    f.wp.packed_rows = g.c;
    f.wp.layout = w.project.layout();
    f.be = w.expand_bias;
    f.wd = w.depthwise;
    f.bd = w.depthwise_bias;
    f.bp = w.project_bias;
    f.zeros = zero_floats(g.w * g.c);
    plan_bands(f);
    return f;
}

/// Multiply-adds x 2 of a block (for the thread count).
inline double block_flops(const ConvGeometry& g, std::size_t cin, std::size_t cout, bool expand) noexcept {
    return 2.0 * double(g.n * g.h * g.w) * double(cin * g.c) * (expand ? 1.0 : 0.0) +
           2.0 * double(g.output_pixels()) * double(g.c) * double(g.kh * g.kw + cout);
}

}  // namespace detail

/// Fused inverted-residual block with pre-packed weights (see `InvertedResidualWeights`).
/// `g` is the depthwise geometry (`g.c` = expanded channels, `g.n/h/w` the input); x is
/// NHWC `(n, h, w, cin)`, y `(n, oh, ow, cout)` and must not overlap x. With `residual`,
/// x is added to the projection (requires stride 1 and cin == cout).
inline void inverted_residual_forward(const ConvGeometry& g, std::size_t cin, std::size_t cout, const float* x,
                                      const InvertedResidualWeights& w, float* y, bool residual) {
    using namespace detail;
    check_fused(g, cin, cout, x, y, w.has_expand, residual);
    if ((w.has_expand && (w.expand.rows() != cin || w.expand.cols() != g.c)) || w.project.rows() != g.c ||
        w.project.cols() != cout || !w.depthwise)
        throw shape_error("inverted_residual_forward: packed weights do not match the block shape");
    const FusedBlock f = planned_block(g, cin, cout, x, w, y, residual);
    fused_run(f, threads_for(block_flops(g, cin, cout, f.expand), 2.0e5));
}

/// Fused inverted-residual block (MobileNetV2): `y = project(relu6(depthwise(relu6(expand(x)))))`
/// (+ x with `residual`). Weights: `we` Cin x Cexp (ignored without `expand`; block 0
/// of MobileNetV2 has none), `wd` `[kh][kw][Cexp]`, `wp` Cexp x Cout; biases `be`
/// (Cexp), `bd` (Cexp), `bp` (Cout), each may be null. `g` is the depthwise geometry
/// (`g.c` = Cexp; TF SAME for MobileNetV2). The 1x1 weights are packed on every call
/// (or read in place for tiny inputs); keep an `InvertedResidualWeights` to pack them
/// once.
inline void inverted_residual_forward(const ConvGeometry& g, std::size_t cin, std::size_t cout, const float* x,
                                      const float* we, const float* be, const float* wd, const float* bd,
                                      const float* wp, const float* bp, float* y, bool expand, bool residual) {
    using namespace detail;
    check_fused(g, cin, cout, x, y, expand, residual);
    if (!wd || !wp || (expand && !we)) throw shape_error("inverted_residual_forward: null weight pointer");
    FusedBlock f;
    f.g = g;
    f.cin = cin;
    f.cout = cout;
    f.x = x;
    f.y = y;
    f.expand = expand;
    f.residual = residual;
    // The 1x1 weights: packed (in parallel) when many rows reuse them, else read in
    // place (only a partial last panel is packed).
    PanelLayout le{cin, g.c}, lp{g.c, cout};
    const std::size_t se = expand ? le.size() : 0;
    float* pk = scratch(Slot::fused_pack, se + lp.size() + 16);
    auto view = [&](const float* wsrc, const PanelLayout& L, std::size_t rows, float* buf) {
        BView v;
        v.layout = L;
        v.packed_rows = L.K;
        constexpr std::size_t NR = GemmShape::nr;
        if (ceil_div(rows, GemmShape::mr) <= GemmShape::direct_b_max_tiles) {
            v.direct = wsrc;
            v.ldb = L.N;
            if (L.N % NR != 0) {
                const PanelLayout one{L.K, L.N % NR};
                pack_b_panel(Trans::No, wsrc + (L.N - L.N % NR), L.N, one, 0, 0, L.K, buf);
                v.edge = buf;
            }
        } else {
            const int T = threads_for(double(L.K) * double(L.N), 1.0e5);
            parallel_ranges(T, L.panels(), [&](std::size_t p0, std::size_t p1) {
                for (std::size_t p = p0; p < p1; ++p) pack_b_panel(Trans::No, wsrc, L.N, L, p, 0, L.K, buf + L.offset(p));
            });
            v.packed = buf;
        }
        return v;
    };
    if (expand) f.we = view(we, le, g.n * g.h * g.w, pk);
    f.wp = view(wp, lp, g.output_pixels(), pk + se);
    f.be = be;
    f.wd = wd;
    f.bd = bd;
    f.bp = bp;
    f.zeros = zero_floats(g.w * g.c);
    plan_bands(f);
    fused_run(f, threads_for(block_flops(g, cin, cout, expand), 2.0e5));
}

namespace detail {
/// A direct convolution as the `RowSource` of the block after it.
struct DirectConvRows {
    ConvGeometry g;
    std::size_t cout = 0;
    const float* x = nullptr;
    const float* w = nullptr;
    Epilogue ep;
    InputMap m;
    static void rows(const void* ctx, std::size_t img, std::size_t r0, std::size_t r1, float* dst) {
        const DirectConvRows& s = *static_cast<const DirectConvRows*>(ctx);
        conv_direct_forward_rows(s.g, s.cout, s.x, s.w, img, r0, r1, dst, s.ep, s.m);
    }
};
}  // namespace detail

/// A network's first convolution followed by an inverted-residual block without
/// expansion (MobileNetV2's stem and block 0), fused: the block's bands take the
/// convolution's output rows as they need them, computed into the block's ring (in
/// cache), so that output never goes to memory (224x224 images: 1.6 MB an image).
///
/// `gs` is the convolution's geometry (x NHWC `(gs.n, gs.h, gs.w, gs.c)`), `cs` its output
/// channels, `ws` its HWIO weights, `es` its epilogue (bias and clamp; no residual or
/// accumulation), `m` its input map; it must be `conv_direct_eligible`. `g` is the
/// block's depthwise geometry, whose input is the convolution's output (`g.n, g.h, g.w,
/// g.c` = `gs.n, gs.oh, gs.ow, cs`), `w` the block's packed weights (without expansion),
/// `y` its output `(g.n, g.oh, g.ow, cout)`. Every output value has the bits of
/// `conv2d_forward` followed by `inverted_residual_forward`, for any thread count.
inline void stem_inverted_residual_forward(const ConvGeometry& gs, std::size_t cs, const float* x, const float* ws,
                                           const Epilogue& es, const InputMap& m, const ConvGeometry& g,
                                           std::size_t cout, const InvertedResidualWeights& w, float* y) {
    using namespace detail;
    const char* who = "stem_inverted_residual_forward";
    gs.check(who);
    if (!x || !ws) throw shape_error(std::string(who) + ": null tensor pointer");
    if (!conv_direct_eligible(gs, cs))
        throw shape_error(std::string(who) + ": the first convolution " + gs.to_string() + " with " +
                          std::to_string(cs) + " outputs is not for the direct kernel");
    if (es.residual || es.accumulate)
        throw shape_error(std::string(who) + ": the first convolution's epilogue cannot add a residual or accumulate");
    if (g.n != gs.n || g.h != gs.oh || g.w != gs.ow || g.c != cs)
        throw shape_error(std::string(who) + ": the block's input " + std::to_string(g.n) + "x" + std::to_string(g.h) +
                          "x" + std::to_string(g.w) + "x" + std::to_string(g.c) + " is not the convolution's output " +
                          std::to_string(gs.n) + "x" + std::to_string(gs.oh) + "x" + std::to_string(gs.ow) + "x" +
                          std::to_string(cs));
    if (w.has_expand) throw shape_error(std::string(who) + ": the block must have no expansion");
    check_fused(g, cs, cout, x, y, false, false);
    if (w.project.rows() != g.c || w.project.cols() != cout || !w.depthwise)
        throw shape_error(std::string(who) + ": packed weights do not match the block shape");
    DirectConvRows src;
    src.g = gs;
    src.cout = cs;
    src.x = x;
    src.w = ws;
    src.ep = es;
    src.m = m;
    // The block's zero row is the calling thread's zero buffer, read by every thread; the
    // convolution, run on this thread too, asks that buffer for its padding slab row. Grow
    // it first to cover both (the slab is at most a row, a window and a tile of pixels
    // wide), so that no later call on this thread reallocates it under the other threads.
    zero_floats(std::max(g.w * g.c, (gs.pad_left + gs.w + gs.kw + 16 * gs.sw) * gs.c));
    RowSource source;
    source.rows = &DirectConvRows::rows;
    source.ctx = &src;
    const FusedBlock f = planned_block(g, cs, cout, x, w, y, false, source);
    const double flops = 2.0 * double(gs.output_pixels()) * double(gs.kh * gs.kw * gs.c * cs) +
                         block_flops(g, cs, cout, false);
    fused_run(f, threads_for(flops, 2.0e5));
}

}  // namespace typenet::kernels
