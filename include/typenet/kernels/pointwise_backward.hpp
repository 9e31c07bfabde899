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
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/function_ref.hpp"
#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/covariance.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/row_consumer.hpp"
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

namespace detail {
/// The weight-gradient product of one block of n rows: `C (+)= op(A) B` into `mine`
/// (Mw x Nw, leading dimension `ldp`), which holds dW (cin x cout) or, when `trans`, its
/// transpose; `xb` (n x cin, leading dimension `ldx`) and `z` (n x cout, `ldz`) are the
/// block's rows of X and dY. `edge` (n x NR floats) packs a partial last panel; with
/// `accumulate` the block's product is added to `mine`.
inline void pw_weight_block(bool trans, std::size_t cin, std::size_t cout, std::size_t n, const float* xb,
                            std::size_t ldx, const float* z, std::size_t ldz, float* mine, std::size_t ldp, float* edge,
                            bool accumulate) {
    constexpr std::size_t NR = GemmShape::nr;
    const std::size_t Mw = trans ? cout : cin, Nw = trans ? cin : cout;
    // C (+)= op(A) B with op(A) = A^T: A and B are both blocks of n rows.
    const GemmProblem P{Trans::Yes, Mw, Nw, n, trans ? z : xb, trans ? ldz : ldx, mine, ldp, Epilogue{}, false};
    BView bv;
    bv.layout = PanelLayout{n, Nw};
    bv.packed_rows = n;
    bv.direct = trans ? xb : z;
    bv.ldb = trans ? ldx : ldz;
    if (Nw % NR != 0) {
        const PanelLayout one{n, Nw % NR};
        pack_b_panel(Trans::No, bv.direct + (Nw - Nw % NR), bv.ldb, one, 0, 0, n, edge);
        bv.edge = edge;
    }
    gemm_region(P, bv, 0, Mw, 0, ceil_div(Nw, NR), 0, n, mine, ldp, false, accumulate);
}

/// The input-gradient product of one block of n rows: `out = z wt` (n x cin, leading
/// dimension `ldo`; non-temporal stores when `stream`), `z` the block's rows of dY
/// (leading dimension `ldz`), `wt` W^T packed.
inline void pw_input_block(std::size_t cin, std::size_t cout, std::size_t n, const float* z, std::size_t ldz,
                           const PackedMatrix& wt, float* out, std::size_t ldo, bool stream) {
    const GemmProblem P{Trans::No, n, cin, cout, z, ldz, out, ldo, Epilogue{}, stream};
    BView bv;
    bv.packed = wt.data();
    bv.packed_rows = cout;
    bv.layout = wt.layout();
    gemm_region(P, bv, 0, n, 0, bv.layout.panels(), 0, cout, out, ldo, true, false);
}
}  // namespace detail

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
/// With `dx_clamp` (needs `dx`; not with `xmap`), dX is masked by the clamp that made x
/// (`DxClamp`) as each block of it is made, while that block of x is in cache.
///
/// Scratch: `Slot::fused` (the blocks), `Slot::partial` (the per-thread dW copies),
/// `Slot::pack_b` (the edge panel of the in-place operand), `Slot::im2col` (mapped x) and
/// `Slot::stage` (blocks of dX and their sums) of the calling thread; `dy_rows` may rely
/// on any other slot.
/// (`dy_rows` is type-erased: called once per block of rows; see `depthwise_backward_produced`.)
inline void pointwise_backward(std::size_t rows, std::size_t cin, std::size_t cout, const float* x,
                               const PackedMatrix* wt,
                               FunctionRef<void(std::size_t, std::size_t, float*, std::size_t)> dy_rows, float* dw,
                               float* dx, std::size_t block_rows = 0, const ChannelMap* xmap = nullptr,
                               const DxBatchNormSums* dx_sums = nullptr, const DxClamp* dx_clamp = nullptr) {
    using namespace detail;
    constexpr std::size_t MR = GemmShape::mr, NR = GemmShape::nr;
    if (dx_sums && (!dx || !xmap || !xmap->scale || !xmap->shift || !dx_sums->mean || !dx_sums->invstd ||
                    !dx_sums->out))
        throw shape_error("pointwise_backward: the sums of dX need dX, the input map, the statistics and an output");
    if (dx_clamp && (!dx || xmap))
        throw shape_error("pointwise_backward: masking dX by x's clamp needs dX and x itself (no input map)");
    if (!dw && !dx) return;
    if (cin == 0) return;
    if (rows == 0 || cout == 0) {  // empty products: zeros
        if (dw) std::memset(dw, 0, cin * cout * sizeof(float));
        if (dx) std::memset(dx, 0, rows * cin * sizeof(float));
        if (dx_sums) std::fill(dx_sums->out, dx_sums->out + 2 * cin, 0.0);
        return;
    }
    if ((dw || dx_sums || dx_clamp) && !x) throw shape_error("pointwise_backward: x is null");
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
    // The mapped block of x (or the block of x and dX the sums or the mask read) shares the
    // L2 budget with the block of dY.
    if ((mapped || dx_sums || dx_clamp) && !block_rows) R = std::max<std::size_t>(MR, std::min(R, 65536 / round_up(cin, 16)) / MR * MR);
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
    const bool stream_dx = dx && use_streaming_stores(dx, cin, rows, cin, false, training_stream_bytes());
    // Per thread: its two sums (in double), then, when dX is streamed and summed or masked,
    // a block of dX (made there, summed and masked in cache, then streamed out; a dX stored
    // normally is summed and masked in place).
    const std::size_t cpad = round_up(cin, 16), ssize = dx_sums ? 4 * cpad : 0;
    const bool stage_dx = stream_dx && (dx_sums || dx_clamp);
    const std::size_t dsize = ssize + (stage_dx ? round_up(R * cin, 16) : 0);
    float* dstage = dsize ? scratch(Slot::stage, std::size_t(T) * dsize) : nullptr;
    auto sums_of = [dstage, dsize](int u) { return reinterpret_cast<double*>(dstage + std::size_t(u) * dsize); };
    BatchNormInputGrad<ClampMaskFrom::affine> gmap;
    if (dx_sums) gmap = {nullptr, nullptr, nullptr, xmap->scale, xmap->shift, xmap->lo, xmap->hi, cin};

    run_parallel(T, [&](int t, int nt) {
        const Range br = split_range(blocks, std::size_t(nt), std::size_t(t));
        float* z = zbuf + std::size_t(t) * zsize;
        float* mine = dw ? part + std::size_t(t) * Mw * ldp : nullptr;
        float* edge = ebuf ? ebuf + std::size_t(t) * esize : nullptr;
        double* my_sums = dx_sums ? sums_of(t) : nullptr;
        float* staged = stage_dx ? dstage + std::size_t(t) * dsize + ssize : nullptr;
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
                pw_weight_block(trans, cin, cout, n, xb, cin, z, ldz, mine, ldp, edge, blk > br.begin);
            }
            if (dx) {
                float* out = staged ? staged : dx + r0 * cin;
                pw_input_block(cin, cout, n, z, ldz, *wt, out, cin, stream_dx && !staged);
                if (dx_clamp) clamp_backward_stream(x + r0 * cin, out, out, n * cin, dx_clamp->lo, dx_clamp->hi);
                if (dx_sums) {
                    BatchNormInputGrad<ClampMaskFrom::affine> m = gmap;
                    m.x = x + r0 * cin;
                    m.dy = out;
                    batchnorm_backward_sums(m, dx_sums->mean, dx_sums->invstd, 0, n, cpad, my_sums);
                }
                if (staged) stream_copy(staged, dx + r0 * cin, n * cin);
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

/// Both gradients of a 1x1 convolution followed by training-mode batch norm and a clamp
/// (`Z = X W`, `A = clamp(Z * scale + shift)` with the batch statistics), when the gradient
/// of A is *pushed* a block of rows at a time, in any order, by a kernel that makes it and
/// does not store it (`depthwise_backward_produced` with a `RowConsumer`: the depthwise
/// layer of an inverted residual block feeding its expansion).
///
/// Batch norm's input gradient `dZ = k G + m Z + b` (G the masked gradient of A) needs
/// the sums over the whole batch for m and b, which the producer is still taking when the
/// rows arrive. k does not, and Z = X W is linear in X, so each block contributes its
/// `X~^T (k G)` to dW and its `(k G) W^T` to dX as it arrives, and `finish` adds what m and
/// b contribute once the sums are known:
///
/// - `dW = X~^T (k G) + (X~^T X) W diag(m) + S b^T`, with `X~ = X - mean(X)` (centring X
///   keeps the large `b` term out of the float sums: `S = sum X~` is zero up to rounding
///   and taken in double, as `X~^T X`, in a pass over X at `begin`);
/// - `dX = (k G) W^T + X (W diag(m) W^T) + 1 (W b)^T` (+ a residual gradient), the last
///   terms one small product over X and dX.
///
/// So the gradient of A and batch norm's input gradient never reach memory: the
/// expansion's backward costs no pass over its (largest) tensors. Results are exact up to
/// float rounding (the products are reassociated); dW is summed in the producer's fixed
/// chunks, added in chunk order, so nothing depends on the thread count.
///
/// Use: `begin` (allocates; before the producer runs), the producer calls `consume`,
/// `finish` with the two batch-norm sums of G (`DxBatchNormSums`, taken by the producer).
class BatchNormPointwiseBackward final : public RowConsumer {
public:
    struct Problem {
        std::size_t rows = 0, cin = 0, cout = 0;
        const float* x = nullptr;        ///< rows x cin, the convolution's input
        /// x's statistics if already taken (`CentredGram::compute(x, rows, cin)`, e.g. by the
        /// forward pass), or null: `begin` takes them.
        const CentredGram* x_stats = nullptr;
        const float* w = nullptr;        ///< cin x cout, the weights
        const PackedMatrix* wt = nullptr;///< W^T packed (`pack(Trans::Yes, cout, cin, w, cout)`), with dx
        const float* z = nullptr;        ///< rows x cout, batch norm's input
        ChannelMap act;                  ///< batch norm + clamp of the forward (the mask)
        const float* gamma = nullptr;    ///< cout values, or null for 1
        const float* mean = nullptr;     ///< cout batch means
        const float* invstd = nullptr;   ///< cout values of 1 / sqrt(var + eps)
        float* dw = nullptr;             ///< cin x cout, overwritten by finish; null: not wanted
        float* dx = nullptr;             ///< rows x cin, overwritten; null: not wanted
    };

    /// Prepare for rows handed over by `chunks` chunks, at most `max_rows` rows a call.
    void begin(const Problem& p, std::size_t chunks, std::size_t max_rows) {
        using namespace detail;
        if (!p.z || !p.act.scale || !p.act.shift || !p.mean || !p.invstd || (p.dw && (!p.x || !p.w)) ||
            (p.dx && (!p.x || !p.w || !p.wt)))
            throw shape_error("BatchNormPointwiseBackward: missing input");
        if (p.dx && (p.wt->rows() != p.cout || p.wt->cols() != p.cin))
            throw shape_error("BatchNormPointwiseBackward: packed W^T is " + std::to_string(p.wt->rows()) + " x " +
                              std::to_string(p.wt->cols()) + ", expected " + std::to_string(p.cout) + " x " +
                              std::to_string(p.cin));
        p_ = p;
        chunks_ = std::max<std::size_t>(chunks, 1);
        max_rows_ = std::max<std::size_t>(max_rows, 1);
        const std::size_t cin = p.cin, cout = p.cout;
        k_.resize(cout);
        for (std::size_t j = 0; j < cout; ++j) k_[j] = float(batchnorm_grad_scale(p.gamma, p.invstd, j));
        trans_ = transpose_pays(cin, cout);
        const std::size_t Mw = trans_ ? cout : cin, Nw = trans_ ? cin : cout;
        ldp_ = round_up(Nw, 16);
        part_size_ = round_up(Mw * ldp_, 16);
        const std::size_t T = std::size_t(max_threads());
        xt_size_ = round_up(max_rows_ * cin, 16);
        edge_size_ = round_up(max_rows_ * GemmShape::nr, 16);
        if (p.dw) {
            float* part = part_.get(chunks_ * part_size_);
            std::fill(part, part + chunks_ * part_size_, 0.0f);
            thread_.get(T * (xt_size_ + edge_size_));
            input_statistics();
        }
    }

    /// Rows [r0, r0 + n) of the gradient of A (n x cout): scaled in place to k G, then their
    /// share of dX and (chunk `chunk`'s copy of) dW.
    void consume(std::size_t chunk, int thread, std::size_t r0, std::size_t n, float* g) override {
        using namespace detail;
        constexpr std::size_t W = simd_width;
        const std::size_t cin = p_.cin, cout = p_.cout;
        // The clamp's mask as batch norm's backward takes it (the forward's fma, so the
        // same bits), then the scale k.
        BatchNormInputGrad<ClampMaskFrom::affine> mask;
        mask.x = p_.z + r0 * cout;
        mask.dy = g;
        mask.a = p_.act.scale;
        mask.b0 = p_.act.shift;
        mask.lo = p_.act.lo;
        mask.hi = p_.act.hi;
        mask.c = cout;
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t j = 0; j < cout; j += W) {
                const std::size_t m = std::min(W, cout - j);
                store_n(g + r * cout + j, mask.grad(r, j, m) * lanes(k_.data() + j, m), m);
            }
        if (p_.dx) pw_input_block(cin, cout, n, g, cout, *p_.wt, p_.dx + r0 * cin, cin, false);
        if (p_.dw) {
            float* mine = thread_.data() + std::size_t(thread) * (xt_size_ + edge_size_);
            float* xt = mine;
            for (std::size_t r0b = 0; r0b < n; r0b += max_rows_) {  // n <= max_rows_ as announced
                const std::size_t nb = std::min(max_rows_, n - r0b);
                map_rows(center_, p_.x + (r0 + r0b) * cin, cin, cin, nb, xt);
                pw_weight_block(trans_, cin, cout, nb, xt, cin, g + r0b * cout, cout,
                                part_.data() + chunk * part_size_, ldp_, mine + xt_size_, true);
            }
        }
    }

    /// Complete dW and dX from batch norm's two backward sums of the gradient of A
    /// (`sums[j] = sum g`, `sums[cout + j] = sum g x_hat`), adding `dx_residual` (rows x
    /// cin, e.g. a skip connection's gradient) to dX when not null.
    void finish(const double* sums, const float* dx_residual = nullptr) {
        using namespace detail;
        const std::size_t cin = p_.cin, cout = p_.cout, N = p_.rows;
        std::vector<double>& m = fm_;
        std::vector<double>& b = fb_;
        m.resize(cout);
        b.resize(cout);
        for (std::size_t j = 0; j < cout; ++j) {
            const BatchNormGradCoef q = batchnorm_grad_coef(p_.gamma, p_.mean, p_.invstd, sums, cout, N, j);
            m[j] = q.m;
            b[j] = q.b;
        }
        if (p_.dw) {
            // The chunks' copies added in chunk order (in place, in the first copy).
            float* acc = part_.data();
            add_row_copies(acc, part_size_, int(chunks_), part_size_);
            // (X~^T X) W (float products of sums taken in double), column j scaled by m_j,
            // plus S b^T.
            std::vector<float>& gf = f1_;
            std::vector<float>& gw = f2_;
            gf.assign(stats_->gram().begin(), stats_->gram().end());
            gw.resize(cin * cout);
            gemm(Trans::No, Trans::No, cin, cout, cin, gf.data(), cin, p_.w, cout, gw.data(), cout);
            for (std::size_t i = 0; i < cin; ++i)
                for (std::size_t j = 0; j < cout; ++j) {
                    const std::size_t at = trans_ ? j * ldp_ + i : i * ldp_ + j;
                    p_.dw[i * cout + j] = float(double(acc[at]) + double(gw[i * cout + j]) * m[j] + stats_->centred_sum()[i] * b[j]);
                }
        }
        if (p_.dx) {
            // dX += X (W diag(m) W^T) + (W b)^T (+ the residual gradient).
            std::vector<float>& wm = f1_;
            std::vector<float>& mm = f2_;
            std::vector<float>& c = f3_;
            wm.resize(cin * cout);
            mm.resize(cin * cin);
            c.resize(cin);
            for (std::size_t a = 0; a < cin; ++a) {
                double cb = 0;
                for (std::size_t j = 0; j < cout; ++j) {
                    cb += double(p_.w[a * cout + j]) * b[j];
                    wm[a * cout + j] = float(double(p_.w[a * cout + j]) * m[j]);
                }
                c[a] = float(cb);
            }
            gemm(Trans::No, Trans::Yes, cin, cin, cout, wm.data(), cout, p_.w, cout, mm.data(), cin);
            Epilogue ep;
            ep.bias = c.data();
            ep.residual = dx_residual;
            ep.ldr = cin;
            ep.accumulate = true;
            gemm(Trans::No, Trans::No, N, cin, cin, p_.x, cin, mm.data(), cin, p_.dx, cin, ep);
        }
    }

private:
    /// `X~^T X` and `S = sum X~` of x (`CentredGram`: given, or taken here), and the map
    /// that centres X.
    void input_statistics() {
        const std::size_t cin = p_.cin;
        if (p_.x_stats && (p_.x_stats->rows() != p_.rows || p_.x_stats->cols() != cin))
            throw shape_error("BatchNormPointwiseBackward: the given input statistics are of " +
                              std::to_string(p_.x_stats->rows()) + " x " + std::to_string(p_.x_stats->cols()) +
                              ", the input is " + std::to_string(p_.rows) + " x " + std::to_string(cin));
        if (!p_.x_stats) gram_.compute(p_.x, p_.rows, cin);
        stats_ = p_.x_stats ? p_.x_stats : &gram_;
        ones_.assign(cin, 1.0f);
        shift_.resize(cin);
        for (std::size_t j = 0; j < cin; ++j) shift_[j] = -stats_->mean()[j];
        center_ = ChannelMap{ones_.data(), shift_.data(), -INFINITY, INFINITY};
    }

    Problem p_;
    std::size_t chunks_ = 1, max_rows_ = 1, ldp_ = 0, part_size_ = 0, xt_size_ = 0, edge_size_ = 0;
    bool trans_ = false;
    std::vector<float> k_, ones_, shift_;
    CentredGram gram_;
    const CentredGram* stats_ = nullptr;  ///< x's statistics: `gram_` or the given ones
    // Reused between calls (sized once per shape): finish's terms.
    std::vector<double> fm_, fb_;
    std::vector<float> f1_, f2_, f3_;
    ChannelMap center_;
    AlignedBuffer part_, thread_;  ///< the chunks' dW copies; per thread: mapped X rows, an edge panel
};

}  // namespace typenet::kernels
