/// @file kernels/elementwise.hpp
/// Vectorised, parallel element-wise and per-channel kernels: activation gradients,
/// bias gradients, batch-norm statistics, scale-and-shift, batch-norm backward and
/// global average pooling.
///
/// Matrices are row-major `rows x c` (an NHWC tensor is `(n*h*w) x c`). Reductions
/// over rows sum fixed chunks of rows (float within blocks of 128 rows, double across
/// blocks and chunks) and add the chunks in order, so results do not depend on the
/// number of threads and stay accurate over millions of rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"
#include "typenet/kernels/workspace.hpp"

namespace typenet::kernels {
namespace detail {

/// Throw `shape_error` naming `who`.
[[noreturn]] inline void fail(const char* who, const char* what) { throw shape_error(std::string(who) + ": " + what); }

/// Number of row chunks of a per-channel reduction (depends on the shape only).
inline std::size_t reduction_chunks(std::size_t rows, std::size_t c) noexcept {
    const std::size_t by_work = rows * c / 32768 + 1;  // ~32K elements per chunk at least
    return std::max<std::size_t>(1, std::min<std::size_t>({rows, 64, by_work}));
}

/// Call `g(std::integral_constant<std::size_t, I>{})` for I = 0 .. N-1, unrolled.
template <std::size_t N, class G>
TYPENET_INLINE void static_for(G&& g) {
    [&]<std::size_t... I>(std::index_sequence<I...>) TYPENET_INLINE_LAMBDA {
        (g(std::integral_constant<std::size_t, I>{}), ...);
    }(std::make_index_sequence<N>{});
}

/// Rows [rb, re) x the `NV` vectors starting at column `j0` (the last one `last` lanes
/// wide), `NQ` quantities: float sums in registers, in row order, then added to `out`
/// (double, `out[k * cpad + j]`). Register accumulators instead of a buffer in memory:
/// each row's additions are independent of the previous row's stores, so the loop runs
/// at the speed of its loads.
template <std::size_t NQ, std::size_t NV, class F>
TYPENET_INLINE void sum_block(std::size_t rb, std::size_t re, std::size_t j0, std::size_t last, std::size_t cpad,
                              double* out, F& f) {
    constexpr std::size_t W = simd_width;
    vfloat acc[NQ][NV];
    static_for<NQ>([&](auto k) TYPENET_INLINE_LAMBDA {
        static_for<NV>([&](auto v) TYPENET_INLINE_LAMBDA { acc[k][v] = vfloat(0.0f); });
    });
    for (std::size_t r = rb; r < re; ++r)
        static_for<NV>([&](auto v) TYPENET_INLINE_LAMBDA {
            const std::size_t n = v + 1 == NV ? last : W;
            static_for<NQ>([&](auto k) TYPENET_INLINE_LAMBDA { acc[k][v] += f(std::size_t(k), r, j0 + v * W, n); });
        });
    alignas(64) float tmp[W];
    static_for<NQ>([&](auto k) {
        static_for<NV>([&](auto v) {
            acc[k][v].store_aligned(tmp);
            const std::size_t n = v + 1 == NV ? last : W;
            for (std::size_t i = 0; i < n; ++i) out[k * cpad + j0 + v * W + i] += tmp[i];
        });
    });
}

/// `out[k * cpad + j] (+)= sum over rows [r0, r1) of f(k, r, j, n)` for the `NQ` (1 or 2)
/// quantities k, in double, with float partial sums in registers over blocks of 128 rows
/// (each lane summed in row order: the same bits whatever the blocking of the columns). One
/// sweep over the rows computes every quantity (the data are read from memory once, not
/// `NQ` times). `F(std::size_t k, std::size_t r, std::size_t j, std::size_t n)` returns the
/// vector to add for columns [j, j + n) of row r.
template <std::size_t NQ, class F>
void sum_rows(std::size_t r0, std::size_t r1, std::size_t c, std::size_t cpad, double* out, F&& f) {
    static_assert(NQ == 1 || NQ == 2, "sum_rows: one or two quantities");
    constexpr std::size_t W = simd_width, B = 128;
    // Up to 16 accumulators: 8 vectors of one or two quantities with AVX-512's 32
    // registers, 4 with the 16 of AVX2 / SSE.
    constexpr std::size_t JV = simd_registers >= 32 ? 8 : 4;
    for (std::size_t rb = r0; rb < r1; rb += B) {
        const std::size_t re = std::min(r1, rb + B);
        for (std::size_t j0 = 0; j0 < c; j0 += JV * W) {
            const std::size_t nv = std::min(JV, ceil_div(c - j0, W));
            const std::size_t last = std::min(W, c - j0 - (nv - 1) * W);  // lanes of the last vector
            // The block kernel compiled for exactly nv vectors.
            [&]<std::size_t... V>(std::index_sequence<V...>) {
                (void)((nv == V + 1 && (sum_block<NQ, V + 1>(rb, re, j0, last, cpad, out, f), true)) || ...);
            }(std::make_index_sequence<JV>{});
        }
    }
}

/// Per-channel sums of `NQ` (1 or 2) quantities over all rows: `NQ` double results per
/// channel, `out[q * c + j]`. `F(q, r, j, n)` gives the vector of quantity q. Parallel over
/// fixed chunks (handed to the threads as they become free), chunk partials added in order
/// (the result does not depend on the thread count).
template <std::size_t NQ, class F>
void channel_reduce(std::size_t rows, std::size_t c, double* out, F&& f) {
    constexpr std::size_t nq = NQ;
    const std::size_t nch = reduction_chunks(rows, c);
    const std::size_t cpad = detail::round_up(c, 16);
    // Per chunk: nq * cpad doubles.
    float* mem = scratch(Slot::partial, nch * nq * cpad * 2);
    double* part = reinterpret_cast<double*>(mem);
    std::fill(part, part + nch * nq * cpad, 0.0);
    const int T = std::min<int>(threads_for(double(rows) * double(c) * double(nq), 1.0e5), int(nch));
    // Each chunk has its own partial sums: the chunks go to the threads as they become free.
    UnitQueue queue(nch);
    run_parallel(T, [&](int, int) {
        std::size_t q;
        while (queue.next(q)) {
            const Range rr = split_range(rows, nch, q);
            sum_rows<NQ>(rr.begin, rr.end, c, cpad, part + q * nq * cpad, f);
        }
    });
    for (std::size_t k = 0; k < nq; ++k)
        for (std::size_t j = 0; j < c; ++j) {
            double s = 0;
            for (std::size_t q = 0; q < nch; ++q) s += part[(q * nq + k) * cpad + j];
            out[k * c + j] = s;
        }
}

/// Apply `f(i, n)` -> vector to elements [i, i + n) of an array of `count`, writing `dst`;
/// parallel for large arrays.
template <class F>
void map_elements(std::size_t count, float* dst, F&& f) {
    constexpr std::size_t W = simd_width;
    const int T = threads_for(double(count), 65536.0);
    const std::size_t blocks = detail::ceil_div(count, W);
    parallel_ranges(T, blocks, [&](std::size_t b0, std::size_t b1) {
        const std::size_t e = std::min(count, b1 * W);
        std::size_t i = b0 * W;
        for (; i + W <= e; i += W) f(i, W).store_unaligned(dst + i);
        if (i < e) store_partial(dst + i, f(i, e - i), e - i);
    });
}

/// Load n lanes (full or partial) of p.
TYPENET_INLINE vfloat lanes(const float* p, std::size_t n) noexcept {
    return n == simd_width ? vfloat::load_unaligned(p) : load_partial(p, n);
}

}  // namespace detail

/// Gradient of a clamp (ReLU, ReLU6) given its output y: `dx = dy` where `lo < y < hi`,
/// else 0. `dx` may alias `dy`.
inline void clamp_backward(const float* y, const float* dy, float* dx, std::size_t n, float lo, float hi) {
    if (n == 0) return;
    if (!(y && dy && dx)) detail::fail("clamp_backward", "null pointer");
    const vfloat vlo(lo), vhi(hi), zero(0.0f);
    detail::map_elements(n, dx, [&](std::size_t i, std::size_t w) {
        const vfloat yv = detail::lanes(y + i, w);
        return xsimd::select((yv > vlo) & (yv < vhi), detail::lanes(dy + i, w), zero);
    });
}

/// `clamp_backward` on the calling thread, for a producer of gradient rows (the folded
/// path's backward): `y` and `dy` usually stream from memory there, and both are prefetched
/// `TYPENET_STREAM_PREFETCH_BYTES` ahead (see `stream_prefetch_rows`), a cache line of each
/// per 16 floats. The same values as `clamp_backward`.
inline void clamp_backward_stream(const float* y, const float* dy, float* dx, std::size_t n, float lo,
                                  float hi) noexcept {
    constexpr std::size_t W = simd_width, L = 16, ahead = TYPENET_STREAM_PREFETCH_BYTES;
    const vfloat vlo(lo), vhi(hi), zero(0.0f);
    auto one = [&](std::size_t i, std::size_t w) TYPENET_INLINE_LAMBDA {
        const vfloat yv = detail::lanes(y + i, w);
        const vfloat v = xsimd::select((yv > vlo) & (yv < vhi), detail::lanes(dy + i, w), zero);
        if (w == W) v.store_unaligned(dx + i);
        else detail::store_partial(dx + i, v, w);
    };
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
        if (ahead) {
            detail::prefetch_span(y, i * sizeof(float) + ahead, L * sizeof(float));
            detail::prefetch_span(dy, i * sizeof(float) + ahead, L * sizeof(float));
        }
        for (std::size_t k = 0; k < L; k += W) one(i + k, W);
    }
    for (; i < n; i += W) one(i, std::min(W, n - i));
}

/// Copy `n` floats on the calling thread, `src` prefetched as `clamp_backward_stream`
/// prefetches its inputs: for a producer of gradient rows that reads a gradient masked
/// already by the kernel that made it (`DxClamp`) from memory.
inline void copy_prefetched(const float* src, float* dst, std::size_t n) noexcept {
    constexpr std::size_t W = simd_width, L = 16, ahead = TYPENET_STREAM_PREFETCH_BYTES;
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
        if (ahead) detail::prefetch_span(src, i * sizeof(float) + ahead, L * sizeof(float));
        for (std::size_t k = 0; k < L; k += W) detail::lanes(src + i + k, W).store_unaligned(dst + i + k);
    }
    for (; i < n; i += W) {
        const std::size_t w = std::min(W, n - i);
        detail::store_n(dst + i, detail::lanes(src + i, w), w);
    }
}

/// Sums over rows of a row-major `rows x cols` matrix (leading dimension `lda`, default
/// `cols`): `out[j] = sum_i a[i * lda + j]` (bias gradients). With `accumulate`, added
/// to `out`.
inline void column_sums(const float* a, std::size_t rows, std::size_t cols, float* out, std::size_t lda = 0,
                        bool accumulate = false) {
    if (cols == 0) return;
    if (!(out && (a || rows == 0))) detail::fail("column_sums", "null pointer");
    if (lda == 0) lda = cols;
    if (!(lda >= cols)) detail::fail("column_sums", "lda < cols");
    double* s = reinterpret_cast<double*>(scratch(Slot::conv_tmp, 2 * cols));
    if (rows == 0) {
        std::fill(s, s + cols, 0.0);
    } else {
        detail::channel_reduce<1>(rows, cols, s,
            [&](std::size_t, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
                return detail::lanes(a + r * lda + j, n);
            });
    }
    for (std::size_t j = 0; j < cols; ++j) out[j] = accumulate ? out[j] + float(s[j]) : float(s[j]);
}

/// The two per-channel sums of a batch norm's backward on fixed statistics (moving
/// statistics while gamma and beta train): `out[j] = sum g`, `out[c + j] = sum g * (x -
/// centre[j])` over the `rows` rows of the `rows x c` matrices `g` (output gradient) and `x`
/// (input), in double, independent of the thread count. `out` holds 2 * c doubles.
inline void centred_gradient_sums(const float* g, const float* x, const float* centre, std::size_t rows,
                                  std::size_t c, double* out) {
    if (c == 0) return;
    if (!(out && centre && ((g && x) || rows == 0))) detail::fail("centred_gradient_sums", "null pointer");
    if (rows == 0) {
        std::fill(out, out + 2 * c, 0.0);
        return;
    }
    detail::channel_reduce<2>(rows, c, out,
        [&](std::size_t q, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
            const vfloat gv = detail::lanes(g + r * c + j, n);
            if (q == 0) return gv;
            return gv * (detail::lanes(x + r * c + j, n) - detail::lanes(centre + j, n));
        });
}

/// Batch-norm statistics of a `rows x c` matrix: per-channel mean and biased variance
/// (divided by `rows`). One pass over the data: sums of `d = x - x[0]` and of `d * d`
/// (shifted by the first row, so a mean far from zero costs no digits: the variance is
/// `E[d^2] - E[d]^2` with `E[d]` of the order of the spread, not of the mean).
inline void channel_mean_var(const float* x, std::size_t rows, std::size_t c, float* mean, float* var) {
    if (c == 0) return;
    if (!(x && mean && var)) detail::fail("channel_mean_var", "null pointer");
    if (rows == 0) throw shape_error("channel_mean_var: no rows");
    double* s = reinterpret_cast<double*>(scratch(Slot::conv_tmp, 4 * c));
    const float* shift = x;  // the first row
    detail::channel_reduce<2>(rows, c, s,
        [&](std::size_t q, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
            const vfloat d = detail::lanes(x + r * c + j, n) - detail::lanes(shift + j, n);
            return q == 0 ? d : d * d;
        });
    for (std::size_t j = 0; j < c; ++j) {
        const double m = s[j] / double(rows);
        mean[j] = float(double(shift[j]) + m);
        var[j] = float(std::max(0.0, s[c + j] / double(rows) - m * m));
    }
}

namespace detail {
/// Mean and biased variance per channel from chunk sums: chunk q (`rows_of(q)` rows) has
/// `part[q * 2 * cpad + j]` = S1 (the sum of `x - shift`) and `part[q * 2 * cpad + cpad + j]`
/// = S2 (the sum of its square), `shifts[q * cpad + j]` its shift; the chunks are combined
/// in order in double (Chan et al.'s pairwise update): mean m_q = s_q + S1_q / n_q and
/// M2_q = S2_q - S1_q^2 / n_q.
template <class RowsOf>
void combine_chunk_statistics(std::size_t nch, std::size_t c, std::size_t cpad, const double* part,
                              const float* shifts, RowsOf&& rows_of, float* mean, float* var) {
    for (std::size_t j = 0; j < c; ++j) {
        double n = 0, m = 0, m2 = 0;
        for (std::size_t q = 0; q < nch; ++q) {
            const double nq = double(rows_of(q));
            const double s1 = part[q * 2 * cpad + j], s2 = part[q * 2 * cpad + cpad + j];
            const double mq = double(shifts[q * cpad + j]) + s1 / nq;
            const double m2q = std::max(0.0, s2 - s1 * s1 / nq);
            const double delta = mq - m, tot = n + nq;
            m += delta * nq / tot;
            m2 += m2q + delta * delta * n * nq / tot;
            n = tot;
        }
        mean[j] = float(m);
        var[j] = float(m2 / n);
    }
}
}  // namespace detail

/// `channel_mean_var` of a `rows x c` matrix `x` that is being produced: `produce(u0, u1,
/// out)` writes units [u0, u1) of it to `out`, row after row (a unit is `unit` consecutive
/// rows: an output row of an image for a convolution, one row for a matrix product;
/// `produce` runs on the calling thread and must not open threads of its own), and each
/// piece's sums are taken right after, while it is still in cache: the statistics cost no
/// pass over memory.
///
/// A large aligned `x` (see `use_streaming_stores`) is produced piece by piece into a
/// per-thread buffer that stays in cache, summed there and copied to `x` with
/// non-temporal stores (plain stores to memory would first read every line they write);
/// a smaller one is produced in place. The units are split into chunks fixed by the shape
/// (so the result does not depend on the thread count), each produced in pieces of about
/// 256 KB; each chunk sums `x - s` and its square with `s` the chunk's first row, and the
/// chunks are combined in order in double (Chan et al.'s pairwise update), so a mean far
/// from zero costs no digits. Scratch: `Slot::partial`, `Slot::fused` of the caller.
template <class P>
void produce_channel_mean_var(std::size_t rows, std::size_t c, std::size_t unit, float* x, P&& produce,
                              float* mean, float* var) {
    if (c == 0) return;
    if (!(x && mean && var)) detail::fail("produce_channel_mean_var", "null pointer");
    if (rows == 0) throw shape_error("produce_channel_mean_var: no rows");
    if (unit == 0 || rows % unit != 0)
        throw shape_error("produce_channel_mean_var: " + std::to_string(rows) + " rows are not whole units of " +
                          std::to_string(unit));
    constexpr std::size_t W = simd_width;
    const std::size_t units = rows / unit, cpad = detail::round_up(c, 16);
    const std::size_t nch = std::min(units, detail::reduction_chunks(rows, c));
    const std::size_t piece = std::max<std::size_t>(1, (std::size_t(65536) / cpad) / unit);
    const int T = std::min<int>(threads_for(double(rows) * double(c), 32768.0), int(nch));
    const bool stage = detail::use_streaming_stores(x, c, rows, c, false, training_stream_bytes());
    // Per chunk: the sums (2 x cpad doubles) and its shift row (cpad floats).
    double* part = reinterpret_cast<double*>(scratch(Slot::partial, nch * 2 * cpad * 2 + nch * cpad));
    float* shifts = reinterpret_cast<float*>(part + nch * 2 * cpad);
    std::fill(part, part + nch * 2 * cpad, 0.0);
    const std::size_t bsize = detail::round_up(piece * unit * c, 16);
    float* bufs = stage ? scratch(Slot::fused, std::size_t(T) * bsize) : nullptr;
    // Each chunk has its own sums and shift row: the chunks go to the threads as they
    // become free.
    UnitQueue queue(nch);
    run_parallel(T, [&](int t, int) {
        float* buf = stage ? bufs + std::size_t(t) * bsize : nullptr;
        std::size_t q;
        while (queue.next(q)) {
            const Range ur = split_range(units, nch, q);
            float* shift = shifts + q * cpad;
            for (std::size_t u = ur.begin; u < ur.end; u += piece) {
                const std::size_t ue = std::min(ur.end, u + piece), r0 = u * unit, n = (ue - u) * unit;
                float* out = stage ? buf : x + r0 * c;
                produce(u, ue, out);
                if (u == ur.begin) std::copy(out, out + c, shift);
                detail::sum_rows<2>(0, n, c, cpad, part + q * 2 * cpad,
                    [&](std::size_t k, std::size_t r, std::size_t j, std::size_t w) TYPENET_INLINE_LAMBDA {
                        const vfloat d = detail::lanes(out + r * c + j, w) - detail::lanes(shift + j, w);
                        return k == 0 ? d : d * d;
                    });
                if (stage)  // c % 16 == 0 and x aligned: whole aligned vectors
                    for (std::size_t i = 0; i < n * c; i += W)
                        detail::store_stream(x + r0 * c + i, vfloat::load_aligned(out + i));
            }
        }
        if (stage) detail::stream_fence();
    });
    detail::combine_chunk_statistics(nch, c, cpad, part, shifts,
                                     [&](std::size_t q) {
                                         const Range ur = split_range(units, nch, q);
                                         return (ur.end - ur.begin) * unit;
                                     },
                                     mean, var);
}

/// Per-channel affine transform with a clamp: `y = min(max(x * scale[ch] + shift[ch] (+
/// residual), lo), hi)` (batch-norm inference, or training after the statistics), one pass.
/// `residual` (x's shape) may be null. `y` may alias `x` or `residual`.
inline void scale_shift(const float* x, std::size_t rows, std::size_t c, const float* scale, const float* shift,
                        float* y, float lo = -INFINITY, float hi = INFINITY, const float* residual = nullptr) {
    if (rows == 0 || c == 0) return;
    if (!(x && scale && shift && y)) detail::fail("scale_shift", "null pointer");
    constexpr std::size_t W = simd_width;
    const vfloat vlo(lo), vhi(hi);
    const bool do_clamp = lo != -INFINITY || hi != INFINITY;
    const int T = threads_for(double(rows) * double(c), 65536.0);
    // A large y goes straight to memory (it would not stay in cache): no read of its lines.
    const bool stream = detail::use_streaming_stores(y, c, rows, c, false);
    parallel_ranges(T, rows, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const float* xr = x + r * c;
            const float* rr = residual ? residual + r * c : nullptr;
            float* yr = y + r * c;
            for (std::size_t j = 0; j < c; j += W) {
                const std::size_t n = std::min(W, c - j);
                vfloat v = xsimd::fma(detail::lanes(xr + j, n), detail::lanes(scale + j, n), detail::lanes(shift + j, n));
                if (rr) v += detail::lanes(rr + j, n);
                if (do_clamp) v = detail::clamp(v, vlo, vhi);
                if (stream) detail::store_stream(yr + j, v);  // c % 16 == 0: whole, aligned vectors
                else detail::store_n(yr + j, v, n);
            }
        }
        if (stream) detail::stream_fence();
    });
}

/// Training-mode batch-norm backward from the normalised input `x_hat = (x - mean) * invstd`
/// (`rows x c`) and the output gradient `dy`:
/// `dbeta = sum dy`, `dgamma = sum dy * x_hat`,
/// `dx = gamma * invstd * (dy - dbeta / rows - x_hat * dgamma / rows)`.
/// `gamma` null means 1; `dx`, `dgamma`, `dbeta` may each be null (not computed).
/// `dx` may alias `dy`.
inline void batchnorm_backward(const float* x_hat, const float* dy, std::size_t rows, std::size_t c,
                               const float* gamma, const float* invstd, float* dx, float* dgamma, float* dbeta) {
    if (c == 0) return;
    if (!(x_hat && dy && (invstd || !dx))) detail::fail("batchnorm_backward", "null pointer");
    if (rows == 0) throw shape_error("batchnorm_backward: no rows");
    double* s = reinterpret_cast<double*>(scratch(Slot::conv_tmp, 4 * c));
    detail::channel_reduce<2>(rows, c, s,
        [&](std::size_t q, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
            const vfloat d = detail::lanes(dy + r * c + j, n);
            return q == 0 ? d : d * detail::lanes(x_hat + r * c + j, n);
        });
    if (dbeta)
        for (std::size_t j = 0; j < c; ++j) dbeta[j] = float(s[j]);
    if (dgamma)
        for (std::size_t j = 0; j < c; ++j) dgamma[j] = float(s[c + j]);
    if (!dx) return;
    // Per channel: dx = k * dy + m * x_hat + b.
    float* coef = scratch(Slot::dw_tmp, 3 * detail::round_up(c, 16));
    float *k = coef, *m = coef + detail::round_up(c, 16), *b = coef + 2 * detail::round_up(c, 16);
    for (std::size_t j = 0; j < c; ++j) {
        const double g = (gamma ? gamma[j] : 1.0) * invstd[j];
        k[j] = float(g);
        m[j] = float(-g * s[c + j] / double(rows));
        b[j] = float(-g * s[j] / double(rows));
    }
    constexpr std::size_t W = simd_width;
    const int T = threads_for(double(rows) * double(c), 65536.0);
    parallel_ranges(T, rows, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r)
            for (std::size_t j = 0; j < c; j += W) {
                const std::size_t n = std::min(W, c - j);
                const vfloat v = xsimd::fma(detail::lanes(dy + r * c + j, n), detail::lanes(k + j, n),
                                            xsimd::fma(detail::lanes(x_hat + r * c + j, n), detail::lanes(m + j, n),
                                                       detail::lanes(b + j, n)));
                detail::store_n(dx + r * c + j, v, n);
            }
    });
}

/// Where batch norm's backward finds the clamp's derivative.
enum class ClampMaskFrom {
    none,    ///< no clamp: the gradient is used as it is
    output,  ///< from the clamped forward output `y`: inside where `lo < y < hi`
    affine,  ///< recomputed from `x` and the forward's map: inside where `lo < x * a + b < hi`
};

/// Training-mode batch norm's input gradient, once its two per-channel sums are known: a
/// per-channel affine map of the (masked) output gradient and the input,
/// `dx = k * mask(dy) + m * x + b`, applied to any range of rows (`rows`). Made by
/// `batchnorm_backward_map`; the coefficients live in that call's scratch (`Slot::dw_tmp`
/// of the calling thread), valid until a kernel that uses that slot (a batch-norm backward,
/// a depthwise kernel) runs on that thread.
template <ClampMaskFrom From>
struct BatchNormInputGrad {
    const float* x = nullptr;   ///< the forward's input (pre-normalisation), rows x c
    const float* dy = nullptr;  ///< the output gradient, rows x c
    const float* y = nullptr;   ///< ClampMaskFrom::output: the clamped forward output
    const float* a = nullptr;   ///< ClampMaskFrom::affine: the forward's per-channel map
    const float* b0 = nullptr;
    float lo = 0.0f, hi = 0.0f;
    std::size_t c = 0;
    const float* k = nullptr;  ///< coefficients, c each (padded to a multiple of 16)
    const float* m = nullptr;
    const float* b = nullptr;

    /// The output gradient at (row r, channels [j, j + n)), masked by the clamp's
    /// derivative when there is one.
    TYPENET_INLINE vfloat grad(std::size_t r, std::size_t j, std::size_t n) const noexcept {
        const std::size_t i = r * c + j;
        const vfloat d = detail::lanes(dy + i, n);
        if constexpr (From == ClampMaskFrom::output) {
            const vfloat yv = detail::lanes(y + i, n);
            return xsimd::select((yv > vfloat(lo)) & (yv < vfloat(hi)), d, vfloat(0.0f));
        } else if constexpr (From == ClampMaskFrom::affine) {
            // The same fma as scale_shift's: the same bits, so the same mask.
            const vfloat v = xsimd::fma(detail::lanes(x + i, n), detail::lanes(a + j, n), detail::lanes(b0 + j, n));
            return xsimd::select((v > vfloat(lo)) & (v < vfloat(hi)), d, vfloat(0.0f));
        } else {
            return d;
        }
    }

    /// Quantity q of batch norm's backward sums at (row r, channels [j, j + n)): the
    /// masked gradient g (q = 0) or g * x_hat with `x_hat = (x - mean) * invstd` (q = 1).
    TYPENET_INLINE vfloat sum_term(std::size_t q, std::size_t r, std::size_t j, std::size_t n, const float* mean,
                                   const float* invstd) const noexcept {
        const vfloat d = grad(r, j, n);
        if (q == 0) return d;
        return d * ((detail::lanes(x + r * c + j, n) - detail::lanes(mean + j, n)) * detail::lanes(invstd + j, n));
    }

    /// Rows [r0, r1) of dx, row r at `out + (r - r0) * ldo`; non-temporal stores when
    /// `stream` (then `out` is 64-byte aligned and `c`, `ldo` multiples of 16).
    void rows(std::size_t r0, std::size_t r1, float* out, std::size_t ldo, bool stream) const noexcept {
        constexpr std::size_t W = simd_width;
        // dy and x usually stream from memory (a kernel's producer of gradient rows): both
        // prefetched ahead.
        const std::size_t ahead = detail::stream_prefetch_rows(c * sizeof(float));
        for (std::size_t r = r0; r < r1; ++r) {
            float* o = out + (r - r0) * ldo;
            if (ahead) {
                const std::size_t at = (r + ahead) * c * sizeof(float);
                detail::prefetch_span(dy, at, c * sizeof(float));
                detail::prefetch_span(x, at, c * sizeof(float));
            }
            for (std::size_t j = 0; j < c; j += W) {
                const std::size_t n = std::min(W, c - j);
                const vfloat v = xsimd::fma(grad(r, j, n), detail::lanes(k + j, n),
                                            xsimd::fma(detail::lanes(x + r * c + j, n), detail::lanes(m + j, n),
                                                       detail::lanes(b + j, n)));
                if (stream) detail::store_stream(o + j, v);
                else detail::store_n(o + j, v, n);
            }
        }
    }
};

/// Where a kernel that produces a batch norm's output gradient (`pointwise_backward`'s dX)
/// puts that batch norm's two backward sums, taken while the gradient is in cache:
/// `out[j] = sum g`, `out[c + j] = sum g * (x - mean) * invstd`, with x the batch norm's
/// input and g the gradient masked by the clamp that follows it. They spare the batch
/// norm's backward its own pass over g and x (`batchnorm_backward_map`'s `sums`).
struct DxBatchNormSums {
    const float* mean = nullptr;    ///< c batch means
    const float* invstd = nullptr;  ///< c values of 1 / sqrt(var + eps)
    double* out = nullptr;          ///< 2 * c sums, overwritten
};

/// An input gradient masked by the clamp (ReLU6) of the layer before, as that layer's
/// backward would mask it: kept where `lo < x < hi`, zero elsewhere, with x the kernel's
/// input, that layer's clamped output (a frozen batch norm's folded path stores it). A
/// kernel that reads x for its weight gradient applies it while x is in cache, and the layer
/// before takes the gradient as it comes, without its own pass over x and the gradient.
struct DxClamp {
    float lo = 0.0f, hi = 0.0f;
};

/// Training-mode batch norm's input gradient as an affine map of the masked output
/// gradient g and the input x, per channel j: `dx = k g + m x + b`, from the two backward
/// sums `s[j] = sum g`, `s[c + j] = sum g * x_hat` over `rows` rows
/// (`k = gamma invstd`, `m = -k invstd s[c + j] / rows`, `b = -k s[j] / rows - m mean`).
struct BatchNormGradCoef {
    double k, m, b;
};
/// Its k alone, which needs no sums: `gamma invstd` (gamma null: 1).
inline double batchnorm_grad_scale(const float* gamma, const float* invstd, std::size_t j) noexcept {
    return (gamma ? gamma[j] : 1.0) * invstd[j];
}
inline BatchNormGradCoef batchnorm_grad_coef(const float* gamma, const float* mean, const float* invstd,
                                             const double* s, std::size_t c, std::size_t rows, std::size_t j) noexcept {
    const double k = batchnorm_grad_scale(gamma, invstd, j);
    const double m = -k * s[c + j] / double(rows) * invstd[j];
    return {k, m, -k * s[j] / double(rows) - m * mean[j]};
}

/// Add batch norm's two backward sums over rows [r0, r1) of `map` (whose `x` and `dy` may
/// point at any block of rows) to `out` (`out[j] += sum g`, `out[cpad + j] += sum g * x_hat`
/// with `x_hat = (x - mean) * invstd` and `g` the output gradient masked as `From` says):
/// the one formula of the sums pass of `batchnorm_backward_map` and of a producer of the
/// output gradient that takes them while its rows are in cache (`pointwise_backward`).
template <ClampMaskFrom From>
void batchnorm_backward_sums(const BatchNormInputGrad<From>& map, const float* mean, const float* invstd,
                             std::size_t r0, std::size_t r1, std::size_t cpad, double* out) {
    detail::sum_rows<2>(r0, r1, map.c, cpad, out,
        [&](std::size_t q, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
            return map.sum_term(q, r, j, n, mean, invstd);
        });
}

/// Training-mode batch norm's backward up to its input gradient: the two per-channel sums
/// over all rows (`dbeta = sum g`, `dgamma = sum g * x_hat`, written when not null, with `g`
/// the output gradient masked as `From` says) in one pass, and the map that turns rows of
/// `dy` and `x` into rows of the input gradient (see `BatchNormInputGrad`). For callers that
/// consume the input gradient block by block (`pointwise_backward`) instead of as a tensor.
/// `sums`, when not null, are those two sums already taken (`sums[j]`, `sums[c + j]`, e.g.
/// by the producer of `dy`), and the pass is skipped.
template <ClampMaskFrom From>
BatchNormInputGrad<From> batchnorm_backward_map(const float* x, const float* mean, const float* invstd,
                                                const float* dy, std::size_t rows, std::size_t c, const float* gamma,
                                                float* dgamma, float* dbeta, const float* y, const float* a,
                                                const float* b_, float lo, float hi, const double* sums = nullptr) {
    BatchNormInputGrad<From> map{x, dy, y, a, b_, lo, hi, c, nullptr, nullptr, nullptr};
    const double* s = sums;
    if (!s) {
        double* t = reinterpret_cast<double*>(scratch(Slot::conv_tmp, 4 * c));
        detail::channel_reduce<2>(rows, c, t,
            [&](std::size_t q, std::size_t r, std::size_t j, std::size_t n) TYPENET_INLINE_LAMBDA {
                return map.sum_term(q, r, j, n, mean, invstd);
            });
        s = t;
    }
    if (dbeta)
        for (std::size_t j = 0; j < c; ++j) dbeta[j] = float(s[j]);
    if (dgamma)
        for (std::size_t j = 0; j < c; ++j) dgamma[j] = float(s[c + j]);
    // dx = k * dy + m * (x - mean) * invstd + b = k * dy + m' * x + b'.
    const std::size_t cp = detail::round_up(c, 16);
    float* coef = scratch(Slot::dw_tmp, 3 * cp);
    float *k = coef, *m = coef + cp, *b = coef + 2 * cp;
    for (std::size_t j = 0; j < c; ++j) {
        const BatchNormGradCoef q = batchnorm_grad_coef(gamma, mean, invstd, s, c, rows, j);
        k[j] = float(q.k);
        m[j] = float(q.m);
        b[j] = float(q.b);
    }
    map.k = k;
    map.m = m;
    map.b = b;
    return map;
}

namespace detail {
template <ClampMaskFrom From>
void batchnorm_backward_x(const float* x, const float* mean, const float* invstd, const float* dy, std::size_t rows,
                          std::size_t c, const float* gamma, float* dx, float* dgamma, float* dbeta, const float* y,
                          const float* a, const float* b_, float lo, float hi) {
    const BatchNormInputGrad<From> map =
        kernels::batchnorm_backward_map<From>(x, mean, invstd, dy, rows, c, gamma, dgamma, dbeta, y, a, b_, lo, hi);
    if (!dx) return;
    const int T = threads_for(double(rows) * double(c), 65536.0);
    const bool stream = use_streaming_stores(dx, c, rows, c, false);
    parallel_ranges(T, rows, [&](std::size_t r0, std::size_t r1) {
        map.rows(r0, r1, dx + r0 * c, c, stream);  // streamed: c % 16 == 0, whole aligned vectors
        if (stream) stream_fence();
    });
}
}  // namespace detail

/// Training-mode batch-norm backward from the input `x` and the batch statistics
/// (`mean`, `invstd = 1 / sqrt(var + eps)`): as the `x_hat` overload with
/// `x_hat = (x - mean) * invstd` computed on the fly.
///
/// With `y` (the forward's output after a clamp to [lo, hi], a ReLU6), `dy` is the gradient
/// of that clamped output and is first masked by the clamp's derivative (`dy` where
/// `lo < y < hi`, else 0) inside the same passes: no separate masking pass over memory.
inline void batchnorm_backward(const float* x, const float* mean, const float* invstd, const float* dy,
                               std::size_t rows, std::size_t c, const float* gamma, float* dx, float* dgamma,
                               float* dbeta, const float* y = nullptr, float lo = 0.0f, float hi = 0.0f) {
        if (c == 0) return;
    if (!(x && mean && invstd && dy)) detail::fail("batchnorm_backward", "null pointer");
    if (rows == 0) throw shape_error("batchnorm_backward: no rows");
    if (y)
        detail::batchnorm_backward_x<ClampMaskFrom::output>(x, mean, invstd, dy, rows, c, gamma, dx, dgamma, dbeta, y,
                                                            nullptr, nullptr, lo, hi);
    else
        detail::batchnorm_backward_x<ClampMaskFrom::none>(x, mean, invstd, dy, rows, c, gamma, dx, dgamma, dbeta,
                                                          nullptr, nullptr, nullptr, lo, hi);
}

/// As above for a forward that computed `y = clamp(x * a + b, lo, hi)` with `scale_shift`
/// (`a`, `b` per channel): the clamp's mask is recomputed from `x`, `a` and `b` (the same
/// fma, so the same bits as the forward's) instead of read from `y`. One tensor fewer
/// streamed through both passes; the caller need not keep `y` for this.
inline void batchnorm_backward_clamped(const float* x, const float* mean, const float* invstd, const float* dy,
                                       std::size_t rows, std::size_t c, const float* gamma, float* dx,
                                       float* dgamma, float* dbeta, const float* a, const float* b, float lo,
                                       float hi) {
    if (c == 0) return;
    if (!(x && mean && invstd && dy && a && b)) detail::fail("batchnorm_backward_clamped", "null pointer");
    if (rows == 0) throw shape_error("batchnorm_backward_clamped: no rows");
    detail::batchnorm_backward_x<ClampMaskFrom::affine>(x, mean, invstd, dy, rows, c, gamma, dx, dgamma,
                                                                dbeta, nullptr, a, b, lo, hi);
}

/// Global average pooling: `y[img][ch] = mean over the hw pixels of x[img][p][ch]`
/// (x is `n x hw x c`, y is `n x c`).
inline void global_avg_pool_forward(const float* x, std::size_t n, std::size_t hw, std::size_t c, float* y) {
    if (n == 0 || c == 0) return;
    if (!(x && y)) detail::fail("global_avg_pool_forward", "null pointer");
    if (hw == 0) throw shape_error("global_avg_pool_forward: no pixels");
    constexpr std::size_t W = simd_width;
    const float inv = 1.0f / float(hw);
    const int T = threads_for(double(n) * double(hw) * double(c), 65536.0);
    const std::size_t cb = detail::ceil_div(c, W);
    // Parallel over (image, channel vector); sums in pixel order.
    parallel_ranges(T, n * cb, [&](std::size_t u0, std::size_t u1) {
        for (std::size_t u = u0; u < u1; ++u) {
            const std::size_t img = u / cb, j = (u % cb) * W, w = std::min(W, c - j);
            const float* xp = x + img * hw * c + j;
            vfloat s0(0.0f), s1(0.0f);
            std::size_t p = 0;
            for (; p + 1 < hw; p += 2) {
                s0 += detail::lanes(xp + p * c, w);
                s1 += detail::lanes(xp + (p + 1) * c, w);
            }
            if (p < hw) s0 += detail::lanes(xp + p * c, w);
            detail::store_n(y + img * c + j, (s0 + s1) * vfloat(inv), w);
        }
    });
}

/// Global average pooling gradient: `dx[img][p][ch] = dy[img][ch] / hw`.
inline void global_avg_pool_backward(const float* dy, std::size_t n, std::size_t hw, std::size_t c, float* dx) {
    if (n == 0 || c == 0 || hw == 0) return;
    if (!(dy && dx)) detail::fail("global_avg_pool_backward", "null pointer");
    constexpr std::size_t W = simd_width;
    const vfloat inv(1.0f / float(hw));
    const int T = threads_for(double(n) * double(hw) * double(c), 65536.0);
    parallel_ranges(T, n * hw, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const float* d = dy + (r / hw) * c;
            for (std::size_t j = 0; j < c; j += W) {
                const std::size_t w = std::min(W, c - j);
                detail::store_n(dx + r * c + j, detail::lanes(d + j, w) * inv, w);
            }
        }
    });
}

}  // namespace typenet::kernels
