/// @file kernels/covariance.hpp
/// Column means and centred cross-products of a matrix, and from them the batch
/// statistics of its product with a weight matrix.
///
/// A 1x1 convolution is `Z = X W`, linear in X: the mean of column j of Z is
/// `mean(X) . w_j` and its variance `w_j^T Cov(X) w_j`. So batch norm's statistics of Z
/// follow from the `cin x cin` covariance of the (much narrower) input, before Z exists.
/// Used in a training step by the 1x1 expansion's backward (`BatchNormPointwiseBackward`)
/// and by the fused expansion + depthwise forward (`expand_depthwise_forward`).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/parallel.hpp"
#include "typenet/kernels/simd.hpp"

namespace typenet::kernels {

/// `X~^T X` of a `rows x c` row-major matrix X, with `X~ = X - mean` (the float column
/// means), and `S = sum X~` (zero up to rounding), all in double; and the covariance of
/// X. The products are summed shifted by X's first row `x0` (`D = X - x0`: values of the
/// order of the spread, not of the mean, so a mean far from zero costs no digits), and
/// the other forms follow in double: `N Cov = D^T D - s s^T / N` with `s = sum D`.
class CentredGram {
public:
    /// Compute the statistics of x (rows x c). Sums: float over blocks of 64 rows in
    /// registers, then double, in fixed chunks of rows added in order (the result does
    /// not depend on the thread count).
    ///
    /// Each block's rows of D are made once into a per-thread buffer (in L1), from which
    /// the tiles broadcast their row values with plain loads; only the upper triangle of the
    /// symmetric D^T D is summed (vector blocks of columns against the rows up to their
    /// last column), the rest mirrored. Every entry is the same sum of the same products in
    /// the same order as a full sweep: the same bits.
    void compute(const float* x, std::size_t rows, std::size_t c) {
        // G accumulators of one vector each (16 with 32 registers: MobileNetV2's first
        // expansion, 16 channels, in one pass over the rows).
        constexpr std::size_t W = simd_width, B = 64, G = simd_registers >= 32 ? 16 : 8;
        c_ = c;
        rows_ = rows;
        shift_.assign(c + W, 0.0f);  // padded: whole-vector loads at the tail
        if (rows) std::copy(x, x + c, shift_.begin());
        const float* x0 = shift_.data();
        const std::size_t nst = std::max<std::size_t>(1, std::min<std::size_t>(64, rows / 1024));
        const std::size_t per = c * c + c;
        const std::size_t ld = detail::round_up(c, W);  // row stride of the D buffer
        part_.assign(nst * per, 0.0);
        const int T = std::min<int>(threads_for(double(rows) * double(c) * double(c), 1.0e6), int(nst));
        run_parallel(T, [&](int t, int nt) {
            thread_local std::vector<float> dbuf;  // grown once, reused
            if (dbuf.size() < B * ld) dbuf.resize(B * ld);
            float* d = dbuf.data();
            const Range qr = split_range(nst, std::size_t(nt), std::size_t(t));
            for (std::size_t q = qr.begin; q < qr.end; ++q) {
                const Range rr = split_range(rows, nst, q);
                double* pd = part_.data() + q * per;
                for (std::size_t b0 = rr.begin; b0 < rr.end; b0 += B) {
                    const std::size_t nb = std::min(rr.end, b0 + B) - b0;
                    for (std::size_t r = 0; r < nb; ++r)
                        for (std::size_t j = 0; j < c; j += W) {
                            const std::size_t m = std::min(W, c - j);
                            detail::store_n(d + r * ld + j, detail::lanes(x + (b0 + r) * c + j, m) - detail::lanes(x0 + j, m), m);
                        }
                    // A tile of G rows of D^T D by one vector of columns in registers.
                    for (std::size_t j = 0; j < c; j += W) {
                        const std::size_t m = std::min(W, c - j);
                        alignas(64) float tile[W] = {};
                        vfloat sv(0.0f);
                        for (std::size_t r = 0; r < nb; ++r) sv += detail::lanes(d + r * ld + j, m);
                        sv.store_aligned(tile);
                        for (std::size_t l = 0; l < m; ++l) pd[c * c + j + l] += tile[l];
                        const std::size_t arows = j + m;  // rows a of the upper triangle: a < j + m
                        for (std::size_t a0 = 0; a0 < arows; a0 += G) {
                            const std::size_t na = std::min<std::size_t>(G, arows - a0);
                            vfloat acc[G];
                            for (auto& v : acc) v = vfloat(0.0f);
                            if (na == G) {
                                for (std::size_t r = 0; r < nb; ++r) {
                                    const float* dr = d + r * ld;
                                    const vfloat dv = detail::lanes(dr + j, m);
#pragma GCC unroll 16
                                    for (std::size_t a = 0; a < G; ++a) acc[a] = xsimd::fma(vfloat(dr[a0 + a]), dv, acc[a]);
                                }
                            } else {
                                for (std::size_t r = 0; r < nb; ++r) {
                                    const float* dr = d + r * ld;
                                    const vfloat dv = detail::lanes(dr + j, m);
                                    for (std::size_t a = 0; a < na; ++a) acc[a] = xsimd::fma(vfloat(dr[a0 + a]), dv, acc[a]);
                                }
                            }
                            for (std::size_t a = 0; a < na; ++a) {
                                acc[a].store_aligned(tile);
                                double* out = pd + (a0 + a) * c + j;
                                TYPENET_OMP(simd)
                                for (std::size_t l = 0; l < m; ++l) out[l] += tile[l];
                            }
                        }
                    }
                }
            }
        });
        // dd = D^T D, s = sum D; then the lower triangle from the upper one (entries (a, i)
        // with a > i below the diagonal blocks were not summed).
        dd_.assign(per, 0.0);
        for (std::size_t q = 0; q < nst; ++q)
            for (std::size_t k = 0; k < per; ++k) dd_[k] += part_[q * per + k];
        for (std::size_t i = 0; i < c; ++i)
            for (std::size_t a = i + 1; a < c; ++a) dd_[a * c + i] = dd_[i * c + a];
        const double* sd = dd_.data() + c * c;
        const double N = double(rows);
        // The float means, then with u = x0 - mean: X~ = D + u, so
        // X~^T X = (D + u)^T (D + x0) = D^T D + s x0^T + u s^T + N u x0^T and S = s + N u.
        mean_.resize(c);
        for (std::size_t j = 0; j < c; ++j) mean_[j] = rows ? float(double(x0[j]) + sd[j] / N) : 0.0f;
        gram_.resize(c * c);
        centred_sum_.resize(c);
        for (std::size_t i = 0; i < c; ++i) {
            const double ui = double(x0[i]) - double(mean_[i]);
            centred_sum_[i] = sd[i] + N * ui;
            for (std::size_t a = 0; a < c; ++a)
                gram_[i * c + a] = dd_[i * c + a] + sd[i] * double(x0[a]) + ui * sd[a] + N * ui * double(x0[a]);
        }
    }

    /// Mean and biased variance (divided by rows) of each of the n columns of `Z = X W`
    /// (W row-major c x n), in double from these statistics.
    void product_statistics(const float* w, std::size_t n, float* mean, float* var) const {
        const std::size_t c = c_;
        const double N = double(rows_);
        const double* sd = dd_.data() + c * c;
        // N Cov(X) = D^T D - s s^T / N (symmetric: the upper half of D^T D, mirrored).
        cov_.resize(c * c);
        for (std::size_t i = 0; i < c; ++i)
            for (std::size_t a = i; a < c; ++a)
                cov_[i * c + a] = cov_[a * c + i] = dd_[i * c + a] - sd[i] * sd[a] / N;
        col_.resize(c);
        for (std::size_t j = 0; j < n; ++j) {
            double mu = 0;
            for (std::size_t i = 0; i < c; ++i) {
                col_[i] = double(w[i * n + j]);
                mu += (double(shift_[i]) + sd[i] / N) * col_[i];
            }
            double v = 0;
            for (std::size_t i = 0; i < c; ++i) {
                double s = 0;
                for (std::size_t a = 0; a < c; ++a) s += cov_[i * c + a] * col_[a];
                v += col_[i] * s;
            }
            mean[j] = float(mu);
            var[j] = float(std::max(0.0, v / N));
        }
    }

    std::size_t rows() const noexcept { return rows_; }
    std::size_t cols() const noexcept { return c_; }
    /// The float column means X is centred by.
    const std::vector<float>& mean() const noexcept { return mean_; }
    /// `X~^T X` (c x c, row-major).
    const std::vector<double>& gram() const noexcept { return gram_; }
    /// `S = sum X~`.
    const std::vector<double>& centred_sum() const noexcept { return centred_sum_; }

private:
    std::size_t c_ = 0, rows_ = 0;
    std::vector<float> mean_, shift_;
    std::vector<double> gram_, centred_sum_, part_, dd_;
    mutable std::vector<double> cov_, col_;
};

}  // namespace typenet::kernels
