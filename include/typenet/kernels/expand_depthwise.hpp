/// @file kernels/expand_depthwise.hpp
/// The forward of an inverted residual block's expansion and depthwise layers in a
/// training step with batch statistics, fused:
/// `E = X We` (1x1), `A = clamp(E * scale + shift, lo, hi)` (batch norm with E's batch
/// statistics + ReLU6: `emap`), `D = depthwise(A)` with D's batch statistics.
///
/// Why: batch norm needs E's statistics before A can be made, so unfused the expansion
/// writes E (the largest tensor of the block: 154 MB for block 1 of a batch-32
/// MobileNetV2 step) and the depthwise layer reads it back from memory. E is linear in
/// X, so its statistics come from X's covariance (`CentredGram::product_statistics`)
/// before E exists; here each image is then computed in bands of output rows, as the
/// inference kernel does (`inverted_residual.hpp`): the E rows a band needs are made into
/// a ring that stays in cache, written once to `ze` for the backward pass (non-temporal
/// stores: never read back here), mapped in place, and the depthwise rows of the band are
/// made from the ring, their statistics summed while they are in cache, and written to `zd`.
///
/// Threads take whole images (the next one as each becomes free); each image's sums are
/// kept apart and combined in image order, so nothing depends on the thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/inverted_residual.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {

/// Can `expand_depthwise_forward` run geometry `g`? Every input row must lie in some
/// output row's window (true of SAME padding), so that every row of E is made and
/// written; a kernel at most `max_kernel` tall.
inline bool expand_depthwise_fusable(const ConvGeometry& g) noexcept {
    return g.kh <= detail::max_kernel && g.kh >= g.sh && g.oh > 0 &&
           (g.oh - 1) * g.sh + g.kh >= g.h + g.pad_top;
}

/// The fused forward (see the file comment). `g` is the depthwise geometry (`g.c` the
/// expanded channels, `g.n/h/w` the block input's), x is `(n, h, w, cin)`, `we` the
/// expansion weights packed (`PackedMatrix::pack(Trans::No, cin, g.c, ...)`), `emap` the
/// expansion's batch norm + clamp (from the statistics `CentredGram` gives), `wd` the
/// depthwise weights `[kh][kw][g.c]`. Writes `ze` (n*h*w x g.c: E) and `zd` (n*oh*ow x
/// g.c: D, before its batch norm), and D's per-channel mean and biased variance.
inline void expand_depthwise_forward(const ConvGeometry& g, std::size_t cin, const float* x, const PackedMatrix& we,
                                     const ChannelMap& emap, const float* wd, float* ze, float* zd, float* mean,
                                     float* var) {
    using namespace detail;
    const char* who = "expand_depthwise_forward";
    g.check(who);
    if (!expand_depthwise_fusable(g))
        throw shape_error(std::string(who) + ": the geometry leaves input rows outside every window");
    if (!x || !wd || !ze || !zd || !mean || !var || !emap.scale || !emap.shift)
        throw shape_error(std::string(who) + ": null pointer");
    if (we.rows() != cin || we.cols() != g.c)
        throw shape_error(std::string(who) + ": packed weights are " + std::to_string(we.rows()) + " x " +
                          std::to_string(we.cols()) + ", expected " + std::to_string(cin) + " x " +
                          std::to_string(g.c));
    const std::size_t C = g.c, H = g.h, Wd = g.w, rowlen = Wd * C, orow = g.ow * C, cpad = round_up(C, 16);
    // Bands: the ring of E rows and the band of D rows in about `band_budget_bytes`.
    const std::size_t band = std::min(g.oh, std::max<std::size_t>(2, band_rows(g)));
    const std::size_t R = ring_rows(g, band);  // E rows a band reads
    const std::size_t ringsz = round_up(R * rowlen, 16), dsz = round_up(band * orow, 16);
    // E is not read again before the backward pass, after the rest of the network's forward,
    // and D only by the projection's pass after this one: both are streamed out once they
    // outgrow the L2 caches, not only past the default 32 MB. MobileNetV2's blocks 4-6 in a
    // training step (28x28, E and D 19 MB each at batch 32; Xeon with a 480 MB L3, 2
    // threads, interleaved runs): their forward 21.6-22.2 -> 19.5-20.0 ms streaming E, ->
    // 18.8-19.1 ms streaming D too; blocks 1-3 (D streamed already) unchanged (54.6-57.0 ms),
    // and 58-60 ms with D never streamed.
    const bool stream_e = use_streaming_stores(ze, C, g.n * H * Wd, C, false, training_stream_bytes());
    const bool stream_d = use_streaming_stores(zd, C, g.output_pixels(), C, false, training_stream_bytes());
    BView bv;
    bv.packed = we.data();
    bv.packed_rows = cin;
    bv.layout = we.layout();
    const float* zeros = zero_floats(rowlen);
    const Interior in = interior(g.w, g.kw, g.sw, g.pad_left, g.ow);
    // Per image: D's sums (2 x cpad doubles) and its shift row (the image's first D row).
    double* part = reinterpret_cast<double*>(scratch(Slot::partial, g.n * 2 * cpad * 2 + g.n * cpad));
    float* shifts = reinterpret_cast<float*>(part + g.n * 2 * cpad);
    std::fill(part, part + g.n * 2 * cpad, 0.0);
    const double flops = 2.0 * double(g.n * H * Wd) * double(cin * C) + 2.0 * double(g.output_pixels() * C * g.kh * g.kw);
    const int T = std::min<int>(threads_for(flops, 2.0e5), int(g.n));
    UnitQueue queue(g.n);
    run_parallel(T, [&](int, int) {
        float* mem = scratch(Slot::fused, ringsz + dsz + 16);
        float* ring = mem;
        float* dbuf = mem + ringsz;
        std::size_t img;
        while (queue.next(img)) {
            const float* ximg = x + img * H * Wd * cin;
            float* zeimg = ze + img * H * rowlen;
            double* pd = part + img * 2 * cpad;
            float* shift = shifts + img * cpad;
            auto row_ptr = [&](std::ptrdiff_t iy) -> const float* {
                if (iy < 0 || iy >= std::ptrdiff_t(H)) return zeros;
                return ring + (std::size_t(iy) % R) * rowlen;
            };
            std::size_t next = 0;  // next E row to make
            for (std::size_t oy0 = 0; oy0 < g.oh; oy0 += band) {
                const std::size_t oy1 = std::min(g.oh, oy0 + band), nb = oy1 - oy0;
                // E rows [next, hi): the last band takes every row left (fusable: it reads them).
                const std::size_t hi = oy1 == g.oh ? H : std::min(H, (oy1 - 1) * g.sh + g.kh - g.pad_top);
                for (std::size_t r = next; r < hi;) {
                    const std::size_t slot = r % R, run = std::min(hi - r, R - slot);
                    float* dst = ring + slot * rowlen;
                    GemmProblem P{Trans::No, run * Wd, C, cin, ximg + r * Wd * cin, cin, dst, C, Epilogue{}};
                    gemm_region(P, bv, 0, run * Wd, 0, bv.layout.panels(), 0, cin, dst, C, false, false);
                    if (stream_e) stream_copy(dst, zeimg + r * rowlen, run * rowlen);
                    else std::copy(dst, dst + run * rowlen, zeimg + r * rowlen);
                    map_rows(emap, dst, C, C, run * Wd, dst);
                    r += run;
                }
                next = std::max(next, hi);
                // Depthwise, two output rows at a time, into the band buffer (no epilogue).
                const ChannelEpilogue de;
                if (g.kh == 3 && g.kw == 3) ring_depthwise_rows<3>(g, row_ptr, wd, de, in, oy0, 0, nb, dbuf);
                else ring_depthwise_rows<0>(g, row_ptr, wd, de, in, oy0, 0, nb, dbuf);
                // D's sums while the band is in cache, then the band to zd.
                if (oy0 == 0) std::copy(dbuf, dbuf + C, shift);
                sum_rows<2>(0, nb * g.ow, C, cpad, pd,
                    [&](std::size_t k, std::size_t r, std::size_t j, std::size_t w) TYPENET_INLINE_LAMBDA {
                        const vfloat d = lanes(dbuf + r * C + j, w) - lanes(shift + j, w);
                        return k == 0 ? d : d * d;
                    });
                float* zdst = zd + (img * g.oh + oy0) * orow;
                if (stream_d) stream_copy(dbuf, zdst, nb * orow);
                else std::copy(dbuf, dbuf + nb * orow, zdst);
            }
        }
        if (stream_e || stream_d) stream_fence();
    });
    combine_chunk_statistics(g.n, C, cpad, part, shifts, [&](std::size_t) { return g.oh * g.ow; }, mean, var);
}

}  // namespace typenet::kernels
