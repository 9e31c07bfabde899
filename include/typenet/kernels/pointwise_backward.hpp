/// @file kernels/pointwise_backward.hpp
/// Both gradients of a 1x1 convolution (`Y = X W`: X is rows x cin, W is cin x cout,
/// row-major) from an output gradient that is *produced* block by block instead of read
/// from memory:
///
/// - `dW = X^T dY` (cin x cout) and `dX = dY W^T` (rows x cin);
/// - `dY` comes from a callable, `dy_rows(r0, r1, out, ldo)`, that writes rows [r0, r1)
///   of it (in a training step: batch norm's input gradient, `BatchNormInputGrad::rows`).
///
/// Why: in a training step the gradient before a 1x1 ConvBN's batch norm is the largest
/// tensor of its layer (a batch-32 expanded tensor at 112x112 is 154 MB). Written as a
/// tensor it costs a write and two reads of main memory (one per product). Here each
/// thread makes `R` rows of it at a time in a buffer that stays in its L2 cache and runs
/// both products on that block at once, so it never reaches memory.
///
/// Threads: the rows are split into contiguous ranges of whole blocks, one per thread;
/// each thread sums its `dW` into its own copy, and the copies are added in thread order,
/// so a given thread count always gives the same bits (as the gemm's K split); `dX` does
/// not depend on the thread count or the block size.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {

/// Default block height of `pointwise_backward` for `cout` output channels: about
/// 256 KB of output gradient per block (with the block's rows of X and dX, inside a 2 MB
/// L2), a whole number of micro-tile rows, at most the gemm's K block. Measured on a
/// batch-32 MobileNetV2 training step (`bench_mobilenet --only train`, interleaved): 64,
/// 128, 256 and 512 KB blocks within 3% of each other, 256 KB the fastest.
inline std::size_t pointwise_backward_block_rows(std::size_t cout) noexcept {
    constexpr std::size_t MR = detail::GemmShape::mr, budget = 65536;  // floats
    const std::size_t r = budget / detail::round_up(std::max<std::size_t>(cout, 1), 16) / MR * MR;
    return std::clamp<std::size_t>(r, MR, detail::GemmShape::kc_max);
}

/// Gradients of a 1x1 convolution, `dY` produced block by block (see the file comment).
/// `x`: the forward's input (rows x cin); `wt`: W^T packed (`PackedMatrix::pack(Trans::Yes,
/// cout, cin, W, cout)`), needed when `dx` is not null; `dw` (cin x cout) and `dx` (rows x
/// cin) are overwritten, each skipped when null. `block_rows` 0 picks
/// `pointwise_backward_block_rows(cout)`.
///
/// With `xmap`, the weight gradient reads x through it (`ChannelMap`: the previous
/// layer's activation recomputed from its pre-normalisation tensor), a block at a time into
/// a per-thread buffer.
///
/// With `dx_sums` (needs `dx` and `xmap`), also the sums of `DxBatchNormSums`: each block of
/// dX is summed with its rows of x while in cache (a dX large enough to be streamed is made
/// a block at a time in a per-thread buffer, summed there, then streamed out). Each
/// thread sums its blocks into its own copy, added in thread order (like dW: a given thread
/// count gives the same bits).
///
/// Scratch: `Slot::fused` (the blocks), `Slot::partial` (the per-thread dW copies),
/// `Slot::pack_b` (the edge panel of the in-place operand), `Slot::im2col` (mapped x) and
/// `Slot::stage` (blocks of dX and their sums) of the calling thread; `dy_rows` may rely
/// on any other slot.
template <class F>
void pointwise_backward(std::size_t rows, std::size_t cin, std::size_t cout, const float* x, const PackedMatrix* wt,
                        F&& dy_rows, float* dw, float* dx, std::size_t block_rows = 0,
                        const ChannelMap* xmap = nullptr, const DxBatchNormSums* dx_sums = nullptr) {
    using namespace detail;
    constexpr std::size_t MR = GemmShape::mr, NR = GemmShape::nr;
    if (dx_sums && (!dx || !xmap || !xmap->scale || !xmap->shift || !dx_sums->mean || !dx_sums->invstd ||
                    !dx_sums->out))
        throw shape_error("pointwise_backward: the sums of dX need dX, the input map, the statistics and an output");
    if (!dw && !dx) return;
    if (cin == 0) return;
    if (rows == 0 || cout == 0) {  // empty products: zeros
        if (dw) std::memset(dw, 0, cin * cout * sizeof(float));
        if (dx) std::memset(dx, 0, rows * cin * sizeof(float));
        if (dx_sums) std::fill(dx_sums->out, dx_sums->out + 2 * cin, 0.0);
        return;
    }
    if ((dw || dx_sums) && !x) throw shape_error("pointwise_backward: x is null");
    if (dx && !wt) throw shape_error("pointwise_backward: packed W^T is null");
    if (dx && (wt->rows() != cout || wt->cols() != cin))
        throw shape_error("pointwise_backward: packed W^T is " + std::to_string(wt->rows()) + " x " +
                          std::to_string(wt->cols()) + ", expected " + std::to_string(cout) + " x " +
                          std::to_string(cin));

    // The weight gradient runs transposed (dW^T = dY^T X) when cout is narrow, as gemm does.
    const bool trans = transpose_pays(cin, cout);
    const std::size_t Mw = trans ? cout : cin, Nw = trans ? cin : cout;
    const std::size_t ldp = round_up(Nw, 16), ldz = round_up(cout, 16);
    const double flops = 2.0 * double(rows) * double(cin) * double(cout) * ((dw ? 1 : 0) + (dx ? 1 : 0));
    const int T = threads_for(flops, 2.0e5);
    std::size_t R = block_rows ? block_rows : pointwise_backward_block_rows(cout);
    const bool mapped = dw && xmap;
    if (mapped && (!xmap->scale || !xmap->shift))
        throw shape_error("pointwise_backward: input map without scale or shift");
    // The mapped block of x (or the block of x and dX the sums read) shares the L2 budget
    // with the block of dY.
    if ((mapped || dx_sums) && !block_rows) R = std::max<std::size_t>(MR, std::min(R, 65536 / round_up(cin, 16)) / MR * MR);
    // Every thread gets at least one block.
    R = std::max<std::size_t>(1, std::min(R, round_up(ceil_div(rows, std::size_t(T)), MR)));
    const std::size_t blocks = ceil_div(rows, R);

    // Per-thread buffers, allocated here (before the threads' barrier).
    const std::size_t zsize = round_up(R * ldz, 16), esize = round_up(R * NR, 16);
    float* zbuf = scratch(Slot::fused, std::size_t(T) * zsize);
    float* part = dw ? scratch(Slot::partial, std::size_t(T) * Mw * ldp) : nullptr;
    float* ebuf = dw && Nw % NR != 0 ? scratch(Slot::pack_b, std::size_t(T) * esize) : nullptr;
    const std::size_t xsize = round_up(R * cin, 16);
    float* xbuf = mapped ? scratch(Slot::im2col, std::size_t(T) * xsize) : nullptr;
    const bool stream_dx = dx && use_streaming_stores(dx, cin, rows, cin, false);
    // Per thread: its two sums (in double), then, when dX is streamed, a block of dX (made
    // there, summed in cache, then streamed out; a dX stored normally is summed in place).
    const std::size_t cpad = round_up(cin, 16), ssize = 4 * cpad;
    const std::size_t dsize = ssize + (stream_dx ? round_up(R * cin, 16) : 0);
    float* dstage = dx_sums ? scratch(Slot::stage, std::size_t(T) * dsize) : nullptr;
    auto sums_of = [dstage, dsize](int u) { return reinterpret_cast<double*>(dstage + std::size_t(u) * dsize); };
    BatchNormInputGrad<ClampMaskFrom::affine> gmap;
    if (dx_sums) gmap = {nullptr, nullptr, nullptr, xmap->scale, xmap->shift, xmap->lo, xmap->hi, cin};
    const std::size_t npw = ceil_div(Nw, NR);

    run_parallel(T, [&](int t, int nt) {
        const Range br = split_range(blocks, std::size_t(nt), std::size_t(t));
        float* z = zbuf + std::size_t(t) * zsize;
        float* mine = dw ? part + std::size_t(t) * Mw * ldp : nullptr;
        float* edge = ebuf ? ebuf + std::size_t(t) * esize : nullptr;
        double* my_sums = dx_sums ? sums_of(t) : nullptr;
        float* staged = dx_sums && stream_dx ? dstage + std::size_t(t) * dsize + ssize : nullptr;
        if (my_sums) std::fill(my_sums, my_sums + 2 * cpad, 0.0);
        for (std::size_t blk = br.begin; blk < br.end; ++blk) {
            const std::size_t r0 = blk * R, r1 = std::min(rows, r0 + R), n = r1 - r0;
            dy_rows(r0, r1, z, ldz);
            if (dw) {
                const float* xb = x + r0 * cin;
                if (mapped) {
                    float* xm = xbuf + std::size_t(t) * xsize;
                    map_rows(*xmap, xb, cin, cin, n, xm);
                    xb = xm;
                }
                // C (+)= op(A) B with op(A) = A^T: A and B are both blocks of n rows.
                const GemmProblem P{Trans::Yes, Mw, Nw, n, trans ? z : xb, trans ? ldz : cin, mine, ldp, Epilogue{}, false};
                BView bv;
                bv.layout = PanelLayout{n, Nw};
                bv.packed_rows = n;
                bv.direct = trans ? xb : z;
                bv.ldb = trans ? cin : ldz;
                if (edge) {
                    const PanelLayout one{n, Nw % NR};
                    pack_b_panel(Trans::No, bv.direct + (Nw - Nw % NR), bv.ldb, one, 0, 0, n, edge);
                    bv.edge = edge;
                }
                gemm_region(P, bv, 0, Mw, 0, npw, 0, n, mine, ldp, false, blk > br.begin);
            }
            if (dx) {
                float* out = staged ? staged : dx + r0 * cin;
                const GemmProblem P{Trans::No, n, cin, cout, z, ldz, out, cin, Epilogue{}, stream_dx && !staged};
                BView bv;
                bv.packed = wt->data();
                bv.packed_rows = cout;
                bv.layout = wt->layout();
                gemm_region(P, bv, 0, n, 0, bv.layout.panels(), 0, cout, P.C, cin, true, false);
                if (dx_sums) {
                    BatchNormInputGrad<ClampMaskFrom::affine> m = gmap;
                    m.x = x + r0 * cin;
                    m.dy = out;
                    batchnorm_backward_sums(m, dx_sums->mean, dx_sums->invstd, 0, n, cpad, my_sums);
                    if (staged) stream_copy(staged, dx + r0 * cin, n * cin);
                }
            }
        }
        if (stream_dx) stream_fence();
        if (dx_sums) {
            TYPENET_OMP(barrier)
            if (t == 0)
                for (std::size_t k = 0; k < 2; ++k)
                    for (std::size_t j = 0; j < cin; ++j) {
                        double v = 0;
                        for (int u = 0; u < nt; ++u) v += sums_of(u)[k * cpad + j];
                        dx_sums->out[k * cin + j] = v;
                    }
        }
        if (!dw) return;
        if (br.begin == br.end)
            for (std::size_t i = 0; i < Mw; ++i) std::memset(mine + i * ldp, 0, Nw * sizeof(float));
        TYPENET_OMP(barrier)
        // Add the copies in thread order; row i of the (transposed) product goes to row i
        // (column i) of dW.
        const Range rr = split_range(Mw, std::size_t(nt), std::size_t(t));
        for (std::size_t i = rr.begin; i < rr.end; ++i) {
            float* acc = part + i * ldp;
            add_row_copies(acc, Mw * ldp, nt, Nw);
            if (trans)
                for (std::size_t j = 0; j < Nw; ++j) dw[j * cout + i] = acc[j];
            else
                std::memcpy(dw + i * cout, acc, Nw * sizeof(float));
        }
    });
}

}  // namespace typenet::kernels
