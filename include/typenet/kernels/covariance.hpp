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
    void compute(const float* x, std::size_t rows, std::size_t c) {
        constexpr std::size_t W = simd_width, B = 64;
        c_ = c;
        rows_ = rows;
        shift_.assign(c + W, 0.0f);  // padded: whole-vector loads at the tail
        if (rows) std::copy(x, x + c, shift_.begin());
        const float* x0 = shift_.data();
        const std::size_t nst = std::max<std::size_t>(1, std::min<std::size_t>(64, rows / 1024));
        const std::size_t per = c * c + c;
        part_.assign(nst * per, 0.0);
        const int T = std::min<int>(threads_for(double(rows) * double(c) * double(c), 1.0e6), int(nst));
        run_parallel(T, [&](int t, int nt) {
            const Range qr = split_range(nst, std::size_t(nt), std::size_t(t));
            for (std::size_t q = qr.begin; q < qr.end; ++q) {
                const Range rr = split_range(rows, nst, q);
                double* pd = part_.data() + q * per;
                for (std::size_t b0 = rr.begin; b0 < rr.end; b0 += B) {
                    const std::size_t b1 = std::min(rr.end, b0 + B);
                    // A tile of 8 rows of D^T D by one vector of columns in registers.
                    for (std::size_t j = 0; j < c; j += W) {
                        const std::size_t m = std::min(W, c - j);
                        const vfloat xs = detail::lanes(x0 + j, m);
                        alignas(64) float tile[W] = {};
                        vfloat sv(0.0f);
                        for (std::size_t r = b0; r < b1; ++r) sv += detail::lanes(x + r * c + j, m) - xs;
                        sv.store_aligned(tile);
                        for (std::size_t l = 0; l < m; ++l) pd[c * c + j + l] += tile[l];
                        for (std::size_t a0 = 0; a0 < c; a0 += 8) {
                            const std::size_t na = std::min<std::size_t>(8, c - a0);
                            vfloat acc[8];
                            for (auto& v : acc) v = vfloat(0.0f);
                            if (na == 8) {
                                for (std::size_t r = b0; r < b1; ++r) {
                                    const float* xr = x + r * c;
                                    const vfloat dv = detail::lanes(xr + j, m) - xs;
#pragma GCC unroll 8
                                    for (std::size_t a = 0; a < 8; ++a)
                                        acc[a] = xsimd::fma(vfloat(xr[a0 + a] - x0[a0 + a]), dv, acc[a]);
                                }
                            } else {
                                for (std::size_t r = b0; r < b1; ++r) {
                                    const float* xr = x + r * c;
                                    const vfloat dv = detail::lanes(xr + j, m) - xs;
                                    for (std::size_t a = 0; a < na; ++a)
                                        acc[a] = xsimd::fma(vfloat(xr[a0 + a] - x0[a0 + a]), dv, acc[a]);
                                }
                            }
                            for (std::size_t a = 0; a < na; ++a) {
                                acc[a].store_aligned(tile);
                                for (std::size_t l = 0; l < m; ++l) pd[(a0 + a) * c + j + l] += tile[l];
                            }
                        }
                    }
                }
            }
        });
        // dd = D^T D, s = sum D.
        dd_.assign(per, 0.0);
        for (std::size_t q = 0; q < nst; ++q)
            for (std::size_t k = 0; k < per; ++k) dd_[k] += part_[q * per + k];
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
