/// @file kernels/gemm.hpp
/// Single-precision matrix product with a fused epilogue:
/// `C[M x N] = epilogue(op(A)[M x K] * op(B)[K x N])`, row-major, leading dimensions.
///
/// How it works (BLIS-like, sized from the SIMD width):
/// - `op(B)` is packed into panels of `NR = NV * simd_width` columns (zero-padded),
///   `[panel][k][NR]`, 64-byte aligned; a `PackedMatrix` keeps a packed B (weights)
///   across calls. When few row tiles reuse it, a row-major B is read in place
///   instead (only its last, partial panel is packed). `op(A)` is always read in
///   place (row pointers for `Trans::No`, the contiguous column run for `Trans::Yes`).
/// - The micro-kernel keeps an `MR x NR` block of C in registers (AVX-512: 8 x 48,
///   24 accumulators; AVX2 / SSE2: 6 x 2 vectors) and broadcasts A; the last rows of
///   M run a kernel compiled for exactly their count. The epilogue (accumulate, bias,
///   residual, clamp) is applied in its store, so C is written once; outputs too
///   large for the caches are written with non-temporal stores.
/// - Cache blocking: K in blocks of at most `kc_max` (A tile in L1, B block in L2),
///   N in blocks whose packed B fits about 1 MB, M in blocks when K is blocked.
/// - Threads: the M x N blocks are split statically between the threads; products
///   with a large K and a small C (weight gradients `X^T dY`) split K instead, each
///   thread summing into its own copy of C, reduced in thread order; when such a
///   C has few columns it is computed transposed (`C^T = dY^T X`) to fill the
///   vectors. A given thread count always gives bit-identical results; without a K
///   split, every thread count gives the same bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {

/// Whether a gemm operand is used as stored (`No`) or transposed (`Yes`).
enum class Trans : bool { No = false, Yes = true };

namespace detail {

/// Register blocking of the gemm micro-kernel for the compiled architecture.
struct GemmShape {
    /// Rows of C per micro-tile.
    static constexpr std::size_t mr = simd_registers >= 32 ? 8 : 6;
    /// Maximum vectors of C columns per micro-tile.
    static constexpr std::size_t nv = simd_registers >= 32 ? 3 : 2;
    /// Columns of a packed B panel.
    static constexpr std::size_t nr = nv * simd_width;
    /// Largest K block.
    static constexpr std::size_t kc_max = 512;
    /// Target size in bytes of the part of packed B one thread works on.
    static constexpr std::size_t b_budget = 1u << 20;
    /// Largest number of row tiles for which op(B) is read in place instead of packed
    /// (packing costs a pass over B; reading in place costs strided access per tile).
    static constexpr std::size_t direct_b_max_tiles = 8;
    /// Target size in bytes of a C block revisited across K blocks.
    static constexpr std::size_t c_budget = 1u << 19;
    /// How many K steps ahead the micro-kernel prefetches its B rows (and, for a
    /// column-major A, its A column). B panels are read once per row tile; the first tile
    /// of a layer finds them in L3 (at batch 1 the 14 MB of MobileNetV2's weights never
    /// stay in L2), and the hardware prefetcher stops at every 4 KB page. Measured
    /// (bench_mobilenet, builds interleaved): batch 1, 1 thread 4.09-4.20 -> 3.75-3.86 ms
    /// with 16 steps (8 and 32 gained less, 32 slowed batch 64); with the column-major A
    /// form too (the weight gradients `X^T dY`, whose operands stream from memory), a
    /// training step 1.5-3% faster in four interleaved pairs (714-740 -> 693-726 ms).
    static constexpr std::size_t prefetch_k = 16;
};

/// Epilogue of one micro-tile, already offset to the tile.
struct TileEpilogue {
    const float* bias = nullptr;  ///< at the tile's first column
    const float* res = nullptr;   ///< at the tile's first element
    std::size_t ldr = 0;
    float lo = -INFINITY, hi = INFINITY;
    bool clamp = false;
    bool add_c = false;  ///< add the existing C (accumulate, or a later K block)
    bool last = false;   ///< apply bias / residual / clamp (last K block)
    bool stream = false; ///< write final full tiles with non-temporal stores (C is aligned)
};

/// Apply the epilogue to one vector of `n` valid lanes of a tile row and store it.
TYPENET_INLINE void finish_store(vfloat x, float* c, std::size_t col, std::size_t row,
                                 const TileEpilogue& e, std::size_t n) noexcept {
    if (e.add_c) x += load_n(c, n);
    if (e.last) {
        if (e.bias) x += load_n(e.bias + col, n);
        if (e.res) x += load_n(e.res + row * e.ldr + col, n);
        if (e.clamp) x = clamp(x, vfloat(e.lo), vfloat(e.hi));
    }
    store_n(c, x, n);
}

/// The epilogue of a whole tile held in registers (`MR` rows of `NV` vectors), one pass
/// over the tile per step (the tests made once per tile, not once per vector: with a
/// shallow K the epilogue is a large part of a tile), each value getting its terms in
/// `finish_store`'s order. With `Partial`, the last vector of each row has `nl < W`
/// valid lanes, loaded and stored under a mask (only where `simd_has_masked_memory`:
/// elsewhere such tiles go through `finish_store`).
template <std::size_t MR, std::size_t NV, bool Partial>
TYPENET_INLINE void tile_epilogue(vfloat (&acc)[MR][NV], float* c, std::size_t ldc, const TileEpilogue& e,
                                  std::size_t nl) noexcept {
    constexpr std::size_t W = simd_width;
    const TileEpilogue ev = e;  // a local copy: stores to C cannot alias it
    // Not `load_n` / `store_n` with a lane count per vector: GCC 12 then keeps their
    // `n == simd_width` test even in full tiles, and every tile slows (896x16->96 + ReLU6
    // 17 -> 22 us, 896x96->24 28 -> 31 us, three interleaved pairs).
    auto ld = [nl](const float* p, std::size_t v) TYPENET_INLINE_LAMBDA {
        if constexpr (Partial)
            if (v + 1 == NV) return load_partial(p, nl);
        return vfloat::load_unaligned(p);
    };
    if (ev.add_c) {
#pragma GCC unroll 32
        for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) acc[r][v] += ld(c + r * ldc + v * W, v);
    }
    if (ev.last) {
        if (ev.bias) {
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) {
                const vfloat bv = ld(ev.bias + v * W, v);
#pragma GCC unroll 32
                for (std::size_t r = 0; r < MR; ++r) acc[r][v] += bv;
            }
        }
        if (ev.res) {
#pragma GCC unroll 32
            for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
                for (std::size_t v = 0; v < NV; ++v) acc[r][v] += ld(ev.res + r * ev.ldr + v * W, v);
        }
        if (ev.clamp) {
            const vfloat lo(ev.lo), hi(ev.hi);
#pragma GCC unroll 32
            for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
                for (std::size_t v = 0; v < NV; ++v) acc[r][v] = clamp(acc[r][v], lo, hi);
        }
        if (!Partial && ev.stream) {
#pragma GCC unroll 32
            for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
                for (std::size_t v = 0; v < NV; ++v) store_stream(c + r * ldc + v * W, acc[r][v]);
            return;
        }
    }
#pragma GCC unroll 32
    for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) {
            if constexpr (Partial)
                if (v + 1 == NV) {
                    store_partial(c + r * ldc + v * W, acc[r][v], nl);
                    continue;
                }
            acc[r][v].store_unaligned(c + r * ldc + v * W);
        }
}

/// The micro-kernel: C[mr x nr] (+)= A[mr x kc] * Bpanel[kc x NV*W], then the epilogue.
///
/// A is either `MR` row pointers (`ACol == false`, element (r, k) = `ar[r][k]`) or a
/// column-major run (`ACol == true`, element (r, k) = `ac[k * aks + r]`). B rows are
/// `bks` floats apart. `mr <= MR` rows and `nr <= NV * W` columns are valid: a tile of
/// all `MR` rows finishes in registers (`tile_epilogue`; when its last vector is partial,
/// only with masked memory operations and no streaming stores), any other through a
/// small buffer (`finish_store`).
template <std::size_t MR, std::size_t NV, bool ACol>
__attribute__((noinline)) void micro_kernel(std::size_t kc, const float* const* ar, const float* ac,
                                            std::size_t aks, const float* TYPENET_RESTRICT b,
                                            std::size_t bks, float* c, std::size_t ldc, std::size_t mr,
                                            std::size_t nr, const TileEpilogue& e) noexcept {
    constexpr std::size_t W = simd_width;
    vfloat acc[MR][NV];
#pragma GCC unroll 32
    for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[r][v] = vfloat(0.0f);

    if constexpr (ACol) {
        const float* a = ac;
        for (std::size_t k = 0; k < kc; ++k) {
            vfloat bv[NV];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) bv[v] = vfloat::load_unaligned(b + v * W);
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) prefetch_l1(b + GemmShape::prefetch_k * bks + v * W);
            prefetch_l1(a + GemmShape::prefetch_k * aks);
#pragma GCC unroll 32
            for (std::size_t r = 0; r < MR; ++r) {
                const vfloat av(a[r]);
#pragma GCC unroll 4
                for (std::size_t v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(av, bv[v], acc[r][v]);
            }
            a += aks;
            b += bks;
        }
    } else {
        const float* p[MR];
#pragma GCC unroll 32
        for (std::size_t r = 0; r < MR; ++r) p[r] = ar[r];
        for (std::size_t k = 0; k < kc; ++k) {
            vfloat bv[NV];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) bv[v] = vfloat::load_unaligned(b + v * W);
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) prefetch_l1(b + GemmShape::prefetch_k * bks + v * W);
#pragma GCC unroll 32
            for (std::size_t r = 0; r < MR; ++r) {
                const vfloat av(p[r][k]);
#pragma GCC unroll 4
                for (std::size_t v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(av, bv[v], acc[r][v]);
            }
            b += bks;
        }
    }

    if (mr == MR && nr == NV * W) {
        tile_epilogue<MR, NV, false>(acc, c, ldc, e, W);
    } else if (simd_has_masked_memory && mr == MR && !(e.last && e.stream)) {
        // A partial last panel (e.g. the 24 output channels of MobileNetV2's blocks 1-2):
        // masked, in registers. Through the buffer below these took longer than the
        // 32-column tiles of the same K (AVX-512, 896 x 96 x 24: 31.1 us, 896 x 96 x 32: 27.4).
        tile_epilogue<MR, NV, true>(acc, c, ldc, e, nr - (NV - 1) * W);
    } else {
        alignas(64) float tile[MR * NV * W];
#pragma GCC unroll 32
        for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v) acc[r][v].store_aligned(tile + (r * NV + v) * W);
        for (std::size_t r = 0; r < mr; ++r)
            for (std::size_t v = 0; v * W < nr; ++v) {
                const std::size_t n = std::min(W, nr - v * W);
                finish_store(vfloat::load_aligned(tile + (r * NV + v) * W), c + r * ldc + v * W, v * W, r,
                             e, n);
            }
    }
}

/// Copy a column-major A tile (`mr <= MR` rows and `kc` K steps, element (r, k) at
/// `a[k * aks + r]`) to `dst`, laid out [k][MR], for the micro-kernel to read with
/// `aks == MR`. In place, each K step of the tile is a cache line of its own, and the
/// tile's lines (a few per K step, hundreds per tile) do not stay in L1 across the
/// panels that reuse them, the more so as a row stride that is a multiple of a large
/// power of two maps them onto few cache sets. With `wide`, `round_up(MR, simd_width)`
/// floats may be read from each row (whole vectors are copied); `dst` then needs that
/// many floats of slack past `kc * MR`.
template <std::size_t MR>
inline void pack_a_columns(const float* a, std::size_t aks, std::size_t mr, std::size_t kc, bool wide,
                           float* TYPENET_RESTRICT dst) noexcept {
    constexpr std::size_t W = simd_width;
    if (wide) {
        for (std::size_t k = 0; k < kc; ++k, a += aks, dst += MR)
#pragma GCC unroll 4
            for (std::size_t r = 0; r < MR; r += W) vfloat::load_unaligned(a + r).store_unaligned(dst + r);
    } else {
        for (std::size_t k = 0; k < kc; ++k, a += aks, dst += MR)
            for (std::size_t r = 0; r < mr; ++r) dst[r] = a[r];
    }
}

/// Geometry of op(B) packed into panels: panel p holds columns [p*nr, p*nr + width),
/// at offset p * K * nr, laid out [k][panel width]; panel widths are whole vectors.
struct PanelLayout {
    std::size_t K = 0, N = 0;
    std::size_t panels() const noexcept { return ceil_div(N, GemmShape::nr); }
    std::size_t cols(std::size_t p) const noexcept { return std::min(GemmShape::nr, N - p * GemmShape::nr); }
    std::size_t vecs(std::size_t p) const noexcept { return ceil_div(cols(p), simd_width); }
    std::size_t width(std::size_t p) const noexcept { return vecs(p) * simd_width; }
    std::size_t offset(std::size_t p) const noexcept { return p * K * GemmShape::nr; }
    std::size_t size() const noexcept { return panels() * K * GemmShape::nr; }
};

/// Pack rows [k0, k1) of panel `p` of op(B) into `dst` ([k][width], zero-padded).
inline void pack_b_panel(Trans tb, const float* B, std::size_t ldb, const PanelLayout& L, std::size_t p,
                         std::size_t k0, std::size_t k1, float* TYPENET_RESTRICT dst) noexcept {
    constexpr std::size_t W = simd_width;
    const std::size_t n0 = p * GemmShape::nr, nc = L.cols(p), w = L.width(p);
    if (tb == Trans::No) {
        for (std::size_t k = k0; k < k1; ++k) {
            const float* src = B + k * ldb + n0;
            float* d = dst + (k - k0) * w;
            std::size_t j = 0;
            for (; j + W <= nc; j += W) vfloat::load_unaligned(src + j).store_aligned(d + j);
            if (j < nc) load_partial(src + j, nc - j).store_aligned(d + j);
            else if (j < w) vfloat(0.0f).store_aligned(d + j);
            for (j += W; j < w; j += W) vfloat(0.0f).store_aligned(d + j);
        }
    } else {
        // op(B)[k][n] = B[n * ldb + k]: read runs along k, write columns.
        for (std::size_t k = k0; k < k1; ++k) {
            float* d = dst + (k - k0) * w;
            for (std::size_t j = nc; j < w; ++j) d[j] = 0.0f;
        }
        constexpr std::size_t KB = 64;
        for (std::size_t kb = k0; kb < k1; kb += KB) {
            const std::size_t ke = std::min(k1, kb + KB);
            for (std::size_t j = 0; j < nc; ++j) {
                const float* src = B + (n0 + j) * ldb;
                float* d = dst + (kb - k0) * w + j;
                for (std::size_t k = kb; k < ke; ++k, d += w) *d = src[k];
            }
        }
    }
}

/// A view of op(B) for the tile loops: packed panels, or (for `Trans::No`) B in place.
struct BView {
    const float* packed = nullptr;  ///< panels as laid out by `PanelLayout`, or nullptr
    std::size_t packed_k0 = 0;      ///< the K row the packed data starts at
    std::size_t packed_rows = 0;    ///< K rows each packed panel holds
    const float* direct = nullptr;  ///< op(B) in place (row-major, Trans::No), or nullptr
    std::size_t ldb = 0;
    const float* edge = nullptr;    ///< packed last panel when `direct` (its columns are partial)
    PanelLayout layout;
};

/// Signature shared by every micro-kernel instantiation.
using MicroKernelFn = void (*)(std::size_t, const float* const*, const float*, std::size_t, const float*, std::size_t,
                               float*, std::size_t, std::size_t, std::size_t, const TileEpilogue&) noexcept;

/// Table of micro-kernels: [rows - 1][vectors - 1] for one A form. Edge tiles with
/// fewer rows than `mr` run a kernel compiled for exactly their row count.
template <bool ACol, std::size_t... R>
constexpr auto make_kernel_table(std::index_sequence<R...>) {
    struct Table {
        MicroKernelFn fn[sizeof...(R)][GemmShape::nv];
    } t{};
    auto fill = [&](auto rows) {
        constexpr std::size_t r = decltype(rows)::value;
        t.fn[r][0] = &micro_kernel<r + 1, 1, ACol>;
        if constexpr (GemmShape::nv >= 2) t.fn[r][1] = &micro_kernel<r + 1, 2, ACol>;
        if constexpr (GemmShape::nv >= 3) t.fn[r][2] = &micro_kernel<r + 1, 3, ACol>;
    };
    (fill(std::integral_constant<std::size_t, R>{}), ...);
    return t;
}

/// Run one micro-tile of `mr` rows and `nv` vectors.
template <bool ACol>
TYPENET_INLINE void run_tile(std::size_t nv, std::size_t kc, const float* const* ar, const float* ac,
                             std::size_t aks, const float* b, std::size_t bks, float* c, std::size_t ldc,
                             std::size_t mr, std::size_t nr, const TileEpilogue& e) noexcept {
    static constexpr auto table = make_kernel_table<ACol>(std::make_index_sequence<GemmShape::mr>{});
    table.fn[mr - 1][nv - 1](kc, ar, ac, aks, b, bks, c, ldc, mr, nr, e);
}

/// Everything the tile loops need about one product.
struct GemmProblem {
    Trans ta = Trans::No;
    std::size_t M = 0, N = 0, K = 0;
    const float* A = nullptr;
    std::size_t lda = 0;
    float* C = nullptr;
    std::size_t ldc = 0;
    Epilogue ep;
    bool stream = false;  ///< final stores non-temporal (see `use_streaming_stores`)
};

/// Serial: C rows [m0, m1) x panels [p0, p1), K rows [k0, k1), into `C` (ldc), with the
/// epilogue when `with_ep` (otherwise a plain store, or a sum when `accumulate`).
inline void gemm_region(const GemmProblem& P, const BView& B, std::size_t m0, std::size_t m1, std::size_t p0,
                        std::size_t p1, std::size_t k0, std::size_t k1, float* C, std::size_t ldc,
                        bool with_ep, bool accumulate) {
    constexpr std::size_t MR = GemmShape::mr, NR = GemmShape::nr;
    if (m0 >= m1 || p0 >= p1) return;
    const std::size_t K = k1 - k0;
    const std::size_t nkb = std::max<std::size_t>(1, ceil_div(K, GemmShape::kc_max));
    const std::size_t kcb = ceil_div(K, nkb);
    const std::size_t ncols = std::min(P.N, p1 * NR) - p0 * NR;
    std::size_t mc = m1 - m0;
    if (nkb > 1) mc = std::max<std::size_t>(MR, GemmShape::c_budget / (ncols * sizeof(float)) / MR * MR);

    const bool acol = P.ta == Trans::Yes;

    TileEpilogue base;
    if (with_ep) {
        base.stream = P.stream;
        base.lo = P.ep.lo;
        base.hi = P.ep.hi;
        base.clamp = P.ep.clamps();
        base.ldr = P.ep.ldr ? P.ep.ldr : ldc;
    }

    // A column-major A with long rows (128 floats or more: every K step of a tile is a
    // line of its own) read by 8 or more panels is copied per tile (`pack_a_columns`).
    // Measured on the weight-gradient blocks of a batch-32 MobileNetV2 training step
    // (AVX2, one thread, copy on and off alternately in one process, minima of 21 runs):
    // 10-80 panels of long rows (576x160, 960x320, 320x1280, 160x960) 4-16% faster; short
    // rows, whose lines neighbouring tiles share, gained nothing with 12-36 panels (32x192,
    // 64x384, 96x576) and lost 10-18% with 2-6 (144x32, 16x96).
    const bool pack_a = acol && p1 - p0 >= 8 && P.lda >= 128;
    constexpr std::size_t a_slack = round_up(MR, simd_width);
    alignas(64) float apack[GemmShape::kc_max * MR + a_slack];

    for (std::size_t mb = m0; mb < m1; mb += mc) {
        const std::size_t me = std::min(m1, mb + mc);
        for (std::size_t kb = 0; kb < nkb; ++kb) {
            const std::size_t ka = k0 + kb * kcb, ke = std::min(k1, ka + kcb), kc = ke - ka;
            if (kc == 0) continue;
            TileEpilogue e = base;
            e.add_c = kb > 0 || accumulate;
            e.last = with_ep && kb + 1 == nkb;
            // Row tiles of balanced heights (49 rows: 7 x 7, not 6 x 8 + 1: a short tile
            // costs nearly a full tile's B traffic for few rows).
            const std::size_t ntiles = ceil_div(me - mb, MR), tq = (me - mb) / ntiles, tr = (me - mb) % ntiles;
            for (std::size_t ti = 0, i = mb; ti < ntiles; ++ti) {
                const std::size_t mr = tq + (ti < tr ? 1 : 0);
                const float* rows[MR];
                const float* ac = nullptr;
                std::size_t aks = 0;
                if (!acol) {
                    for (std::size_t r = 0; r < mr; ++r) rows[r] = P.A + (i + r) * P.lda + ka;
                } else {
                    ac = P.A + ka * P.lda + i;
                    aks = P.lda;
                    if (pack_a) {
                        pack_a_columns<MR>(ac, aks, mr, kc, i + a_slack <= P.M, apack);
                        ac = apack;
                        aks = MR;
                    }
                }
                float* crow = C + i * ldc;
                for (std::size_t p = p0; p < p1; ++p) {
                    const std::size_t n0 = p * NR, nr = B.layout.cols(p), nv = B.layout.vecs(p);
                    const float* b;
                    std::size_t bks;
                    if (B.direct && nr == NR) {
                        b = B.direct + ka * B.ldb + n0;
                        bks = B.ldb;
                    } else if (B.direct) {
                        b = B.edge + (ka - B.packed_k0) * B.layout.width(p);
                        bks = B.layout.width(p);
                    } else {
                        b = B.packed + p * B.packed_rows * NR + (ka - B.packed_k0) * B.layout.width(p);
                        bks = B.layout.width(p);
                    }
                    TileEpilogue te = e;
                    if (e.last) {
                        if (P.ep.bias) te.bias = P.ep.bias + n0;
                        if (P.ep.residual) te.res = P.ep.residual + i * base.ldr + n0;
                    }
                    if (acol)
                        run_tile<true>(nv, kc, nullptr, ac, aks, b, bks, crow + n0, ldc, mr, nr, te);
                    else
                        run_tile<false>(nv, kc, rows, nullptr, 0, b, bks, crow + n0, ldc, mr, nr, te);
                }
                i += mr;
            }
        }
    }
}

/// Apply the epilogue to `v` (n values of row `row`, starting at column `col`) and
/// store to `c`: used where the product is not computed by the micro-kernel.
inline void finish_row(const float* v, float* c, std::size_t row, std::size_t col, std::size_t n,
                       const Epilogue& ep, std::size_t ldr) noexcept {
    TileEpilogue e;
    e.add_c = ep.accumulate;
    e.last = true;
    e.bias = ep.bias;
    e.res = ep.residual;
    e.ldr = ldr;
    e.lo = ep.lo;
    e.hi = ep.hi;
    e.clamp = ep.clamps();
    for (std::size_t j = 0; j < n; j += simd_width) {
        const std::size_t w = std::min(simd_width, n - j);
        finish_store(v ? load_n(v + j, w) : vfloat(0.0f), c + j, col + j, row, e, w);
    }
}

/// The reduction of "each thread sums into its own copy": adds to row `acc` (copy 0's) the
/// same row of copies 1 .. `copies - 1`, `copy_stride` floats apart, in copy order (so a
/// given thread count always gives the same bits). `n` floats.
inline void add_row_copies(float* acc, std::size_t copy_stride, int copies, std::size_t n) noexcept {
    for (int s = 1; s < copies; ++s) {
        const float* o = acc + static_cast<std::size_t>(s) * copy_stride;
        std::size_t j = 0;
        for (; j + simd_width <= n; j += simd_width)
            (vfloat::load_unaligned(acc + j) + vfloat::load_unaligned(o + j)).store_unaligned(acc + j);
        for (; j < n; ++j) acc[j] += o[j];
    }
}

/// How a product is split between threads.
struct GemmPlan {
    int threads = 1;
    bool ksplit = false;
    std::size_t mblk = 1, nblk = 1;  ///< blocks of M tiles and of panels (tile mode)
    bool m_major = true;             ///< unit u = (u / nblk, u % nblk) when true
};

/// Choose the split of a product between `max_t` threads.
inline GemmPlan plan_gemm(std::size_t M, std::size_t N, std::size_t K, int max_t) noexcept {
    constexpr std::size_t MR = GemmShape::mr, NR = GemmShape::nr;
    GemmPlan pl;
    const double flops = 2.0 * double(M) * double(N) * double(K);
    pl.threads = max_t > 1 ? std::min(max_t, threads_for(flops, 2.0e5)) : 1;
    const std::size_t mt = ceil_div(M, MR), np = ceil_div(N, NR);
    const std::size_t kc = std::min(K, GemmShape::kc_max);
    const std::size_t npb = std::max<std::size_t>(1, GemmShape::b_budget / (std::max<std::size_t>(kc, 1) * NR * 4));
    const std::size_t nblk_cache = ceil_div(np, npb);
    const std::size_t T = static_cast<std::size_t>(pl.threads);
    if (T == 1) {
        pl.mblk = 1;
        pl.nblk = nblk_cache;
        pl.m_major = false;
        return pl;
    }
    if (K >= 1024 && K >= 4 * std::max(M, N)) {
        pl.ksplit = true;
        return pl;
    }
    // Imbalance of splitting M tiles or panels between the threads.
    const double m_imb = double(ceil_div(mt, T) * T) / double(mt);
    const double n_imb = double(ceil_div(np, T) * T) / double(np);
    if (mt >= 16 * T || m_imb <= n_imb * 1.02) {
        pl.mblk = std::min(mt, T);
        pl.nblk = nblk_cache;
        pl.m_major = true;
    } else {
        pl.mblk = 1;
        pl.nblk = ceil_div(std::max(nblk_cache, std::min(np, T)), T) * T;
        pl.nblk = std::min(pl.nblk, np);
        pl.m_major = false;
    }
    return pl;
}

/// Run the tile-parallel part for thread `t` of `nt`.
inline void gemm_tiles_thread(const GemmProblem& P, const BView& B, const GemmPlan& pl, int t, int nt) {
    constexpr std::size_t MR = GemmShape::mr;
    const std::size_t mt = ceil_div(P.M, MR), np = B.layout.panels();
    const std::size_t units = pl.mblk * pl.nblk;
    const Range ur = split_range(units, static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
    for (std::size_t u = ur.begin; u < ur.end; ++u) {
        const std::size_t mb = pl.m_major ? u / pl.nblk : u % pl.mblk;
        const std::size_t nb = pl.m_major ? u % pl.nblk : u / pl.mblk;
        const Range mr = split_range(mt, pl.mblk, mb);
        const Range pr = split_range(np, pl.nblk, nb);
        gemm_region(P, B, mr.begin * MR, std::min(P.M, mr.end * MR), pr.begin, pr.end, 0, P.K, P.C, P.ldc, true,
                    P.ep.accumulate);
    }
    if (P.stream) stream_fence();
}

/// The whole product with op(B) given as a view (packed or in place).
inline void gemm_with_b(const GemmProblem& P, const BView& B, int threads) {
    GemmPlan pl = plan_gemm(P.M, P.N, P.K, threads);
    pl.ksplit = false;
    run_parallel(pl.threads, [&](int t, int nt) { gemm_tiles_thread(P, B, pl, t, nt); });
}

/// Share of useful lanes when `cols` columns are computed in panels of `NR` columns
/// (panels narrower than NR also keep fewer accumulators busy).
inline double column_efficiency(std::size_t cols) noexcept {
    return double(cols) / double(ceil_div(cols, GemmShape::nr) * GemmShape::nr);
}

/// Share of useful rows when `rows` rows are computed in tiles of `MR`.
inline double row_efficiency(std::size_t rows) noexcept {
    return double(rows) / double(ceil_div(rows, GemmShape::mr) * GemmShape::mr);
}

/// Whether `C = A^T B` (a weight gradient: long K, small C) runs better as
/// `C^T = B^T A`, i.e. with M and N swapped (a narrow N wastes vector lanes).
inline bool transpose_pays(std::size_t M, std::size_t N) noexcept {
    return column_efficiency(M) * row_efficiency(N) > 1.15 * column_efficiency(N) * row_efficiency(M);
}

/// Validate the arguments shared by every gemm entry point.
inline void check_gemm(std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda, Trans ta,
                       const float* C, std::size_t ldc, const Epilogue& ep) {
    if (M == 0 || N == 0) return;
    if (!C) throw shape_error("gemm: C is null");
    if (K > 0 && !A) throw shape_error("gemm: A is null");
    if (ldc < N) throw shape_error("gemm: ldc (" + std::to_string(ldc) + ") < N (" + std::to_string(N) + ")");
    const std::size_t acols = ta == Trans::No ? K : M;
    if (K > 0 && lda < acols)
        throw shape_error("gemm: lda (" + std::to_string(lda) + ") < " + std::to_string(acols));
    if (ep.residual && ep.ldr != 0 && ep.ldr < N)
        throw shape_error("gemm: residual ldr (" + std::to_string(ep.ldr) + ") < N (" + std::to_string(N) + ")");
}

}  // namespace detail

/// op(B) packed once for many products (for example a layer's weights): the panels
/// the gemm micro-kernel reads. Grow-only storage, 64-byte aligned.
class PackedMatrix {
public:
    PackedMatrix() = default;

    /// Pack op(B) (K x N; B stored row-major with leading dimension `ldb`).
    void pack(Trans tb, std::size_t K, std::size_t N, const float* B, std::size_t ldb) {
        const std::size_t need = tb == Trans::No ? N : K;
        if (K > 0 && N > 0 && !B) throw shape_error("PackedMatrix::pack: B is null");
        if (K > 0 && N > 0 && ldb < need)
            throw shape_error("PackedMatrix::pack: ldb (" + std::to_string(ldb) + ") < " + std::to_string(need));
        layout_.K = K;
        layout_.N = N;
        float* d = buf_.get(std::max<std::size_t>(layout_.size(), 1));
        const std::size_t np = layout_.panels();
        const int T = threads_for(double(K) * double(N), 1.0e5);
        parallel_ranges(T, np, [&](std::size_t p0, std::size_t p1) {
            for (std::size_t p = p0; p < p1; ++p)
                detail::pack_b_panel(tb, B, ldb, layout_, p, 0, K, d + layout_.offset(p));
        });
    }
    /// K (rows of op(B)).
    std::size_t rows() const noexcept { return layout_.K; }
    /// N (columns of op(B)).
    std::size_t cols() const noexcept { return layout_.N; }
    /// The packed panels.
    const float* data() const noexcept { return buf_.data(); }
    /// The panel geometry.
    const detail::PanelLayout& layout() const noexcept { return layout_; }

private:
    AlignedBuffer buf_;
    detail::PanelLayout layout_;
};

/// `C = epilogue(op(A) * B)` with B packed beforehand (`PackedMatrix`): op(A) is M x K
/// (K = `B.rows()`), C is M x `B.cols()`. Threads as in `gemm`.
inline void gemm(Trans ta, std::size_t M, const float* A, std::size_t lda, const PackedMatrix& B, float* C,
                 std::size_t ldc, const Epilogue& ep = {}) {
    const std::size_t N = B.cols(), K = B.rows();
    detail::check_gemm(M, N, K, A, lda, ta, C, ldc, ep);
    if (M == 0 || N == 0) return;
    const std::size_t ldr = ep.ldr ? ep.ldr : ldc;
    if (K == 0) {
        for (std::size_t i = 0; i < M; ++i) detail::finish_row(nullptr, C + i * ldc, i, 0, N, ep, ldr);
        return;
    }
    detail::GemmProblem P{ta, M, N, K, A, lda, C, ldc, ep};
    P.stream = detail::use_streaming_stores(C, ldc, M, N, ep.accumulate);
    detail::BView bv;
    bv.packed = B.data();
    bv.packed_k0 = 0;
    bv.packed_rows = K;
    bv.layout = B.layout();
    detail::gemm_with_b(P, bv, max_threads());
}

/// Rows of `C = A * B` (A row-major M x K, B packed: `PackedMatrix`; C has `B.cols()`
/// columns, no epilogue) made on demand, on the calling thread: `rows(m0, m1, out)` writes
/// rows [m0, m1) to `out`, one after the other (leading dimension `B.cols()`), for callers
/// that produce the product piecewise (`produce_channel_mean_var`).
///
/// With `amap`, A is read through it (`ChannelMap` over its K columns: the previous layer's
/// deferred activation): blocks of rows are mapped into a per-thread buffer (`Slot::im2col`
/// of the constructing thread, which must be the one that opens the parallel region) first.
class GemmRows {
public:
    GemmRows(std::size_t M, const float* A, std::size_t lda, const PackedMatrix& B, const ChannelMap* amap = nullptr) {
        if (M > 0 && B.rows() > 0 && !A) throw shape_error("GemmRows: A is null");
        if (B.rows() > 0 && lda < B.rows())
            throw shape_error("GemmRows: lda (" + std::to_string(lda) + ") < K (" + std::to_string(B.rows()) + ")");
        P_ = detail::GemmProblem{Trans::No, M, B.cols(), B.rows(), A, lda, nullptr, B.cols(), Epilogue{}, false};
        bv_.packed = B.data();
        bv_.packed_rows = B.rows();
        bv_.layout = B.layout();
        if (amap && B.rows() > 0) {
            if (!amap->scale || !amap->shift) throw shape_error("GemmRows: input map without scale or shift");
            map_ = *amap;
            const std::size_t K = B.rows();
            block_ = std::max<std::size_t>(detail::GemmShape::mr, 32768 / detail::round_up(K, 16)) /
                     detail::GemmShape::mr * detail::GemmShape::mr;
            stage_size_ = detail::round_up(block_ * K, 16);
            stage_ = scratch(Slot::im2col, std::size_t(max_threads()) * stage_size_);
        }
    }
    void operator()(std::size_t m0, std::size_t m1, float* out) const noexcept {
        if (P_.N == 0 || m1 <= m0) return;
        if (P_.K == 0) {
            std::memset(out, 0, (m1 - m0) * P_.N * sizeof(float));
            return;
        }
        if (!stage_) return product(P_.A + m0 * P_.lda, P_.lda, m1 - m0, out);
        float* buf = stage_ + std::size_t(thread_index()) * stage_size_;
        for (std::size_t b = m0; b < m1; b += block_) {
            const std::size_t n = std::min(block_, m1 - b);
            detail::map_rows(map_, P_.A + b * P_.lda, P_.lda, P_.K, n, buf);
            product(buf, P_.K, n, out + (b - m0) * P_.N);
        }
    }

private:
    void product(const float* a, std::size_t lda, std::size_t n, float* out) const noexcept {
        detail::GemmProblem P = P_;
        P.A = a;
        P.lda = lda;
        P.M = n;
        P.C = out;
        detail::gemm_region(P, bv_, 0, n, 0, bv_.layout.panels(), 0, P.K, out, P.ldc, true, false);
    }

    detail::GemmProblem P_;
    detail::BView bv_;
    ChannelMap map_;
    float* stage_ = nullptr;
    std::size_t block_ = 0, stage_size_ = 0;
};

/// `C[M x N] = epilogue(op(A)[M x K] * op(B)[K x N])`, all row-major with leading
/// dimensions (`op(X)` is X for `Trans::No`, its transpose for `Trans::Yes`; A is then
/// stored K x M). The epilogue adds bias (per column) and residual, clamps, and with
/// `accumulate` adds to the existing C. C must not overlap A, B or the residual.
/// Parallel over OpenMP threads unless called inside a parallel region or tiny.
inline void gemm(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda,
                 const float* B, std::size_t ldb, float* C, std::size_t ldc, const Epilogue& ep = {}) {
    using namespace detail;
    constexpr std::size_t NR = GemmShape::nr;
    check_gemm(M, N, K, A, lda, ta, C, ldc, ep);
    if (M == 0 || N == 0) return;
    const std::size_t ldr = ep.ldr ? ep.ldr : ldc;
    if (K == 0) {
        for (std::size_t i = 0; i < M; ++i) finish_row(nullptr, C + i * ldc, i, 0, N, ep, ldr);
        return;
    }
    if (!B) throw shape_error("gemm: B is null");
    const std::size_t bneed = tb == Trans::No ? N : K;
    if (ldb < bneed) throw shape_error("gemm: ldb (" + std::to_string(ldb) + ") < " + std::to_string(bneed));

    if (ta == Trans::Yes && tb == Trans::No && K >= 1024 && transpose_pays(M, N)) {
        // C^T = op(B)^T op(A)^T: B (K x N) as the transposed left operand, A (K x M)
        // as the right one; then C = epilogue(transpose).
        const std::size_t ldt = round_up(M, 16);
        float* ct = scratch(Slot::gemm_t, N * ldt);
        gemm(Trans::Yes, Trans::No, N, M, K, B, ldb, A, lda, ct, ldt, Epilogue{});
        constexpr std::size_t TB = 16;
        float tmp[TB];
        for (std::size_t i0 = 0; i0 < M; i0 += TB)
            for (std::size_t j0 = 0; j0 < N; j0 += TB)
                for (std::size_t i = i0; i < std::min(M, i0 + TB); ++i) {
                    const std::size_t nj = std::min(N, j0 + TB) - j0;
                    for (std::size_t j = 0; j < nj; ++j) tmp[j] = ct[(j0 + j) * ldt + i];
                    finish_row(tmp, C + i * ldc + j0, i, j0, nj, ep, ldr);
                }
        return;
    }

    GemmProblem P{ta, M, N, K, A, lda, C, ldc, ep};
    P.stream = use_streaming_stores(C, ldc, M, N, ep.accumulate);
    const GemmPlan pl = plan_gemm(M, N, K, max_threads());
    PanelLayout L{K, N};
    const std::size_t np = L.panels();
    // B is used in place when it is stored row-major and few row tiles reuse it.
    const bool direct = tb == Trans::No && ceil_div(M, GemmShape::mr) <= GemmShape::direct_b_max_tiles;

    if (!pl.ksplit) {
        BView bv;
        bv.layout = L;
        bv.packed_rows = K;
        float* packed = nullptr;
        if (direct) {
            bv.direct = B;
            bv.ldb = ldb;
            if (N % NR != 0) {
                // Only the last, partial panel is packed.
                PanelLayout one{K, N % NR};
                packed = scratch(Slot::pack_b, one.size());
                pack_b_panel(tb, B + (N - N % NR), ldb, one, 0, 0, K, packed);
                bv.edge = packed;
            }
        } else {
            packed = scratch(Slot::pack_b, L.size());
            bv.packed = packed;
        }
        run_parallel(pl.threads, [&](int t, int nt) {
            if (!direct) {
                const Range r = split_range(np, static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
                for (std::size_t p = r.begin; p < r.end; ++p)
                    pack_b_panel(tb, B, ldb, L, p, 0, K, packed + L.offset(p));
                TYPENET_OMP(barrier)
            }
            gemm_tiles_thread(P, bv, pl, t, nt);
        });
        return;
    }

    // K split: each thread sums its K range into its own M x N partial; the partials
    // are then reduced in thread order with the epilogue.
    const std::size_t T = static_cast<std::size_t>(pl.threads);
    const std::size_t ldp = round_up(N, 16);
    float* partial = scratch(Slot::partial, T * M * ldp);
    // Per-thread B blocks, allocated here (before the threads' barrier).
    const std::size_t kcb = GemmShape::kc_max, per_thread_b = round_up(kcb * np * NR, 16);
    float* bpack = direct && N % NR == 0 ? nullptr : scratch(Slot::pack_b, T * per_thread_b);
    run_parallel(pl.threads, [&](int t, int nt) {
        const Range kr = split_range(ceil_div(K, 64), static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
        const std::size_t k0 = std::min(K, kr.begin * 64), k1 = std::min(K, kr.end * 64);
        float* mine = partial + static_cast<std::size_t>(t) * M * ldp;
        if (k0 >= k1) {
            for (std::size_t i = 0; i < M; ++i) std::memset(mine + i * ldp, 0, N * sizeof(float));
        } else {
            // Per K block, pack that block of B unless it is used in place.
            float* bp = bpack ? bpack + static_cast<std::size_t>(t) * per_thread_b : nullptr;
            for (std::size_t ka = k0; ka < k1; ka += kcb) {
                const std::size_t ke = std::min(k1, ka + kcb);
                BView bv;
                bv.layout = L;
                bv.packed_k0 = ka;
                bv.packed_rows = ke - ka;
                if (direct) {
                    bv.direct = B;
                    bv.ldb = ldb;
                    if (N % NR != 0) {
                        PanelLayout one{ke - ka, N % NR};
                        pack_b_panel(tb, B + ka * ldb + (N - N % NR), ldb, one, 0, 0, ke - ka, bp);
                        bv.edge = bp;
                    }
                } else {
                    for (std::size_t p = 0; p < np; ++p) {
                        // Panel p of this block at bp + p * (ke - ka) * NR.
                        PanelLayout blk{ke - ka, N};
                        const float* src = tb == Trans::No ? B + ka * ldb : B + ka;
                        pack_b_panel(tb, src, ldb, blk, p, 0, ke - ka, bp + p * (ke - ka) * NR);
                    }
                    bv.packed = bp;
                }
                gemm_region(P, bv, 0, M, 0, np, ka, ke, mine, ldp, false, ka > k0);
            }
        }
        TYPENET_OMP(barrier)
        // Reduce rows [r0, r1) in thread order, then the epilogue.
        const Range rr = split_range(M, static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
        for (std::size_t i = rr.begin; i < rr.end; ++i) {
            float* acc = partial + i * ldp;  // thread 0's row, summed into in place
            add_row_copies(acc, M * ldp, nt, N);
            finish_row(acc, C + i * ldc, i, 0, N, ep, ldr);
        }
    });
}

}  // namespace typenet::kernels
