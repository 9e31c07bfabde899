/// @file kernels/conv2d.hpp
/// Full 2-D convolution over NHWC tensors (any kernel, stride and padding) with a fused
/// epilogue, and its input and weight gradients. Weights are HWIO: `[kh][kw][c][cout]`.
///
/// - 1x1 kernels with stride 1 and no padding are a plain gemm on the `(n*h*w) x c`
///   matrix (no copy).
/// - Few input channels (the stem: 3 -> 32): the direct kernel of conv_direct.hpp.
/// - Otherwise im2col + gemm: each thread copies a chunk of output pixels' windows
///   (`kh*kw*c` values per pixel, zeros in the padding) into its own reused buffer and
///   runs the gemm micro-kernels on it against the weights packed once per call;
///   the epilogue is fused in the gemm's store.
/// - The input gradient is `dY W^T` (a gemm into column form) folded back with a
///   gather (each input pixel sums the window entries that read it), race-free.
/// - The weight gradient is `im2col(X)^T dY`, chunks of pixels split between threads,
///   each summing into its own copy, reduced in thread order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/function_ref.hpp"
#include "typenet/kernels/conv_direct.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {
namespace detail {

/// True when the convolution is a plain matrix product (1x1, stride 1, no padding).
inline bool conv_is_pointwise(const ConvGeometry& g) noexcept {
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pad_top == 0 && g.pad_left == 0 && g.oh == g.h &&
           g.ow == g.w;
}

/// Copy `n` floats (vector loads / stores, masked tail).
TYPENET_INLINE void copy_floats(float* TYPENET_RESTRICT dst, const float* TYPENET_RESTRICT src, std::size_t n) noexcept {
    std::size_t i = 0;
    for (; i + simd_width <= n; i += simd_width) vfloat::load_unaligned(src + i).store_unaligned(dst + i);
    if (i < n) store_partial(dst + i, load_partial(src + i, n - i), n - i);
}

/// Zero `n` floats.
TYPENET_INLINE void zero_floats_n(float* dst, std::size_t n) noexcept {
    std::size_t i = 0;
    for (; i + simd_width <= n; i += simd_width) vfloat(0.0f).store_unaligned(dst + i);
    if (i < n) store_partial(dst + i, vfloat(0.0f), n - i);
}

/// Copy the windows of output pixels [p0, p1) into `col` (row stride `ldcol`, `kh*kw*c`
/// used columns), mapped by `m`, zeros where the window is in the padding.
inline void im2col(const ConvGeometry& g, const float* x, std::size_t p0, std::size_t p1, float* col,
                   std::size_t ldcol, const InputMap& m = {}) noexcept {
    const bool plain = m.identity();
    auto copy = [&](float* dst, const float* src, std::size_t n) {
        if (plain) copy_floats(dst, src, n);
        else map_floats(dst, src, n, m);
    };
    const std::size_t C = g.c, rowlen = g.kw * C;
    std::size_t img = p0 / (g.oh * g.ow), oy = (p0 / g.ow) % g.oh, ox = p0 % g.ow;
    for (std::size_t p = p0; p < p1; ++p) {
        float* dst = col + (p - p0) * ldcol;
        const std::ptrdiff_t x0 = std::ptrdiff_t(ox * g.sw) - std::ptrdiff_t(g.pad_left);
        const bool cols_inside = x0 >= 0 && x0 + std::ptrdiff_t(g.kw) <= std::ptrdiff_t(g.w);
        for (std::size_t i = 0; i < g.kh; ++i, dst += rowlen) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.pad_top);
            if (iy < 0 || iy >= std::ptrdiff_t(g.h)) {
                zero_floats_n(dst, rowlen);
                continue;
            }
            const float* src = x + ((img * g.h + std::size_t(iy)) * g.w) * C;
            if (cols_inside) {
                copy(dst, src + std::size_t(x0) * C, rowlen);
            } else {
                for (std::size_t j = 0; j < g.kw; ++j) {
                    const std::ptrdiff_t ix = x0 + std::ptrdiff_t(j);
                    if (ix < 0 || ix >= std::ptrdiff_t(g.w))
                        zero_floats_n(dst + j * C, C);
                    else
                        copy(dst + j * C, src + std::size_t(ix) * C, C);
                }
            }
        }
        if (++ox == g.ow) {
            ox = 0;
            if (++oy == g.oh) {
                oy = 0;
                ++img;
            }
        }
    }
}

/// Output pixels per im2col chunk for a window of `K` floats.
inline std::size_t conv_chunk_rows(std::size_t K) noexcept {
    const std::size_t rows = (48u * 1024u) / (K * sizeof(float));
    return std::clamp<std::size_t>(rows / GemmShape::mr * GemmShape::mr, 4 * GemmShape::mr, 64 * GemmShape::mr);
}

/// Throw unless the convolution arguments make sense.
inline void check_conv(const char* who, const ConvGeometry& g, std::size_t cout,
                       std::initializer_list<const void*> ptrs) {
    g.check(who);
    if (cout == 0) throw shape_error(std::string(who) + ": cout is 0");
    for (const void* p : ptrs)
        if (!p) throw shape_error(std::string(who) + ": null tensor pointer");
}

}  // namespace detail

/// Convolution forward: `y[p][o] = epilogue(sum_{i,j,ch} x[window(p, i, j)][ch] * w[i][j][ch][o])`,
/// x NHWC (g.n, g.h, g.w, g.c), w HWIO, y (g.n, g.oh, g.ow, cout). The epilogue's bias
/// is per output channel; its residual has y's shape (`ldr` per pixel, default cout).
/// The input is read through the map `m` (`x * scale + offset`, the padding zero after it).
inline void conv2d_forward(const ConvGeometry& g, std::size_t cout, const float* x, const float* w, float* y,
                           const Epilogue& ep = {}, const InputMap& m = {}) {
    using namespace detail;
    check_conv("conv2d_forward", g, cout, {x, w, y});
    const std::size_t M = g.output_pixels(), K = g.kh * g.kw * g.c;
    if (conv_is_pointwise(g) && m.identity()) return gemm(Trans::No, Trans::No, M, cout, g.c, x, g.c, w, cout, y, cout, ep);
    if (conv_direct_eligible(g, cout)) return conv_direct_forward(g, cout, x, w, y, ep, m);

    // Pack the weights (K x cout) once.
    PanelLayout L{K, cout};
    float* packed = scratch(Slot::conv_tmp, L.size());
    BView bv;
    bv.packed = packed;
    bv.packed_rows = K;
    bv.layout = L;
    const std::size_t np = L.panels();
    const std::size_t chunk = conv_chunk_rows(K);
    const std::size_t ldcol = round_up(K, 16);
    const std::size_t nchunks = ceil_div(M, chunk);
    const double flops = 2.0 * double(M) * double(K) * double(cout);
    const int T = std::min<int>(threads_for(flops, 2.0e5), int(nchunks));
    const std::size_t ldr = ep.ldr ? ep.ldr : cout;
    const bool stream = use_streaming_stores(y, cout, M, cout, ep.accumulate);
    run_parallel(T, [&](int t, int nt) {
        const Range pr = split_range(np, std::size_t(nt), std::size_t(t));
        for (std::size_t p = pr.begin; p < pr.end; ++p) pack_b_panel(Trans::No, w, cout, L, p, 0, K, packed + L.offset(p));
        TYPENET_OMP(barrier)
        float* col = scratch(Slot::im2col, chunk * ldcol);
        const Range cr = split_range(nchunks, std::size_t(nt), std::size_t(t));
        for (std::size_t q = cr.begin; q < cr.end; ++q) {
            const std::size_t p0 = q * chunk, p1 = std::min(M, p0 + chunk);
            im2col(g, x, p0, p1, col, ldcol, m);
            GemmProblem P{Trans::No, p1 - p0, cout, K, col, ldcol, y + p0 * cout, cout, ep};
            P.stream = stream;
            if (ep.residual) {
                P.ep.residual = ep.residual + p0 * ldr;
                P.ep.ldr = ldr;
            }
            gemm_region(P, bv, 0, p1 - p0, 0, np, 0, K, P.C, cout, true, ep.accumulate);
        }
        if (stream) stream_fence();
    });
}

/// Convolution input gradient: `dx = fold(dy * W^T)`, every input pixel receiving the
/// sum over the windows that read it (dx is overwritten), times the input map's scale.
inline void conv2d_backward_input(const ConvGeometry& g, std::size_t cout, const float* dy, const float* w, float* dx,
                                  const InputMap& m = {}) {
    using namespace detail;
    check_conv("conv2d_backward_input", g, cout, {dy, w, dx});
    const std::size_t K = g.kh * g.kw * g.c, C = g.c;
    if (conv_is_pointwise(g)) {
        gemm(Trans::No, Trans::Yes, g.output_pixels(), C, cout, dy, cout, w, cout, dx, C);
        if (m.scale != 1.0f)
            for (std::size_t i = 0, n = g.input_size(); i < n; ++i) dx[i] *= m.scale;
        return;
    }
    const vfloat scale(m.scale);

    // Images in groups whose column gradient fits a bounded buffer.
    const std::size_t per_img = g.oh * g.ow * K;
    const std::size_t group = std::max<std::size_t>(1, std::min<std::size_t>(g.n, (std::size_t(4) << 20) / per_img));
    float* dcol = scratch(Slot::conv_tmp, group * per_img);
    for (std::size_t n0 = 0; n0 < g.n; n0 += group) {
        const std::size_t gn = std::min(group, g.n - n0);
        const std::size_t pix = gn * g.oh * g.ow;
        // dcol[pix x K] = dy[pix x cout] * W^T  (W is K x cout).
        gemm(Trans::No, Trans::Yes, pix, K, cout, dy + n0 * g.oh * g.ow * cout, cout, w, cout, dcol, K);
        // Gather: each input row of each image.
        const int T = threads_for(double(gn * g.h * g.w) * double(K), 65536.0);
        parallel_ranges(T, gn * g.h, [&](std::size_t r0, std::size_t r1) {
            constexpr std::size_t W = simd_width;
            for (std::size_t r = r0; r < r1; ++r) {
                const std::size_t img = r / g.h, iy = r % g.h;
                float* dxr = dx + ((n0 + img) * g.h + iy) * g.w * C;
                for (std::size_t ix = 0; ix < g.w; ++ix) {
                    float* d = dxr + ix * C;
                    for (std::size_t j0 = 0; j0 < C; j0 += W) {
                        const std::size_t n = std::min(W, C - j0);
                        vfloat acc(0.0f);
                        for (std::size_t i = 0; i < g.kh; ++i) {
                            const std::ptrdiff_t ty = std::ptrdiff_t(iy + g.pad_top) - std::ptrdiff_t(i);
                            if (ty < 0 || ty % std::ptrdiff_t(g.sh) != 0 || std::size_t(ty) / g.sh >= g.oh) continue;
                            const std::size_t oy = std::size_t(ty) / g.sh;
                            for (std::size_t j = 0; j < g.kw; ++j) {
                                const std::ptrdiff_t tx = std::ptrdiff_t(ix + g.pad_left) - std::ptrdiff_t(j);
                                if (tx < 0 || tx % std::ptrdiff_t(g.sw) != 0 || std::size_t(tx) / g.sw >= g.ow)
                                    continue;
                                const std::size_t ox = std::size_t(tx) / g.sw;
                                const float* src = dcol + ((img * g.oh + oy) * g.ow + ox) * K + (i * g.kw + j) * C + j0;
                                acc += load_n(src, n);
                            }
                        }
                        store_n(d + j0, acc * scale, n);
                    }
                }
            }
        });
    }
}

/// Convolution weight gradient: `dw[i][j][ch][o] = sum over pixels of x[window][ch] * dy[p][o]`
/// (HWIO; overwritten, or added to with `accumulate`). Chunks of pixels are split
/// between threads, each summing into its own copy; the copies are added in thread order.
/// The input is read through the map `m`, as in the forward.
inline void conv2d_backward_weight(const ConvGeometry& g, std::size_t cout, const float* x, const float* dy, float* dw,
                                   bool accumulate = false, const InputMap& m = {}) {
    using namespace detail;
    check_conv("conv2d_backward_weight", g, cout, {x, dy, dw});
    const std::size_t K = g.kh * g.kw * g.c, M = g.output_pixels();
    if (conv_direct_eligible(g, cout)) return conv_direct_backward_weight(g, cout, x, dy, dw, accumulate, m);
    if (conv_is_pointwise(g) && m.identity()) {
        Epilogue ep;
        ep.accumulate = accumulate;
        return gemm(Trans::Yes, Trans::No, g.c, cout, M, x, g.c, dy, cout, dw, cout, ep);
    }
    const std::size_t chunk = std::clamp<std::size_t>(round_up((64u * 1024u) / (K * sizeof(float)), 16), 64, 512);
    const std::size_t ldcol = round_up(K, 16);
    const std::size_t nchunks = ceil_div(M, chunk);
    const double flops = 2.0 * double(M) * double(K) * double(cout);
    const int T = std::min<int>(threads_for(flops, 2.0e5), int(nchunks));
    const std::size_t ldp = round_up(cout, 16);
    float* partial = scratch(Slot::partial, std::size_t(T) * K * ldp);
    PanelLayout L{chunk, cout};
    const std::size_t np = L.panels();
    // Per-thread buffers, allocated here (before the threads' barrier).
    const std::size_t col_size = round_up(chunk * ldcol, 16), b_size = round_up(L.size(), 16);
    float* cols = scratch(Slot::im2col, std::size_t(T) * col_size);
    float* bps = scratch(Slot::pack_b, std::size_t(T) * b_size);
    run_parallel(T, [&](int t, int nt) {
        float* mine = partial + std::size_t(t) * K * ldp;
        float* col = cols + std::size_t(t) * col_size;
        float* bp = bps + std::size_t(t) * b_size;
        const Range cr = split_range(nchunks, std::size_t(nt), std::size_t(t));
        if (cr.begin == cr.end)
            for (std::size_t r = 0; r < K; ++r) std::fill(mine + r * ldp, mine + r * ldp + cout, 0.0f);
        for (std::size_t q = cr.begin; q < cr.end; ++q) {
            const std::size_t p0 = q * chunk, p1 = std::min(M, p0 + chunk), rows = p1 - p0;
            im2col(g, x, p0, p1, col, ldcol, m);
            // dY chunk packed as the B operand (rows x cout).
            PanelLayout Lq{rows, cout};
            for (std::size_t p = 0; p < np; ++p) pack_b_panel(Trans::No, dy + p0 * cout, cout, Lq, p, 0, rows, bp + Lq.offset(p));
            BView bv;
            bv.packed = bp;
            bv.packed_rows = rows;
            bv.layout = Lq;
            // mine (K x cout) (+)= col^T (K x rows) * dY (rows x cout).
            GemmProblem P{Trans::Yes, K, cout, rows, col, ldcol, mine, ldp, Epilogue{}};
            gemm_region(P, bv, 0, K, 0, np, 0, rows, mine, ldp, false, q != cr.begin);
        }
        TYPENET_OMP(barrier)
        reduce_thread_copies(partial, K * ldp, ldp, K, cout, dw, accumulate, t, nt);
    });
}

/// `conv2d_backward_weight` (overwriting `dw`) of a convolution that runs the direct kernel
/// (`conv_direct_eligible`: the stem), from an output gradient *produced* a row at a time
/// instead of read from memory: `dy_row(r, out)` writes output row r (image * oh + oy:
/// ow x cout floats) to `out`, on the calling thread. In a training step
/// the row is batch norm's input gradient (`BatchNormInputGrad::rows`), made in cache and
/// used at once, never written to memory. The same per-row code on the same values as the
/// stored form: the same bits. Scratch: `Slot::stage` (one row per thread), as well as
/// the stored form's `Slot::partial` and `Slot::im2col`; `dy_row` may rely on any other slot.
/// (`dy_row` is type-erased: called once per row; see `depthwise_backward_produced`.)
inline void conv2d_backward_weight_produced(const ConvGeometry& g, std::size_t cout, const float* x,
                                            FunctionRef<void(std::size_t, float*)> dy_row, float* dw,
                                            const InputMap& m = {}) {
    detail::check_conv("conv2d_backward_weight_produced", g, cout, {x, dw});
    if (!conv_direct_eligible(g, cout))
        throw shape_error("conv2d_backward_weight_produced: not a direct-kernel convolution");
    auto produced = [&dy_row](std::size_t r, float* buf) -> const float* {
        dy_row(r, buf);
        return buf;
    };
    switch (detail::ceil_div(cout, simd_width)) {
        case 1: return detail::conv_direct_backward_weight_nv<1>(g, cout, x, produced, dw, false, m, true);
        case 2: return detail::conv_direct_backward_weight_nv<2>(g, cout, x, produced, dw, false, m, true);
        case 3: return detail::conv_direct_backward_weight_nv<3>(g, cout, x, produced, dw, false, m, true);
        default: return detail::conv_direct_backward_weight_nv<4>(g, cout, x, produced, dw, false, m, true);
    }
}

}  // namespace typenet::kernels
