// CentredGram: the centred cross-products of a matrix against naive double loops, and
// the batch statistics of a product X W it gives against those of the product itself.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/config.hpp"
#include "typenet/kernels/covariance.hpp"

using namespace typenet::kernels;

namespace {
// X (rows x c) with column means far from zero (5 + j) and spreads of about 1.
std::vector<float> offset_matrix(std::size_t rows, std::size_t c, std::uint64_t seed) {
    std::vector<float> x = naive::random(rows * c, seed);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < c; ++j) x[r * c + j] += 5.0f + float(j);
    return x;
}
}  // namespace

TEST_CASE("CentredGram: X~^T X and sum X~ against double loops") {
    for (std::size_t rows : {1u, 7u, 3000u}) {  // 3000: several chunks of rows
        const std::size_t c = 19;                  // off the SIMD width
        const std::vector<float> x = offset_matrix(rows, c, 11 + rows);
        CentredGram g;
        g.compute(x.data(), rows, c);
        REQUIRE(g.mean().size() == c);
        for (std::size_t i = 0; i < c; ++i) {
            double s = 0;
            for (std::size_t r = 0; r < rows; ++r) s += x[r * c + i];
            CHECK(std::abs(g.mean()[i] - s / double(rows)) < 1e-5 * (5.0 + double(i)));
            // S = sum (x - float mean): zero up to the rounding of that mean.
            double cs = 0;
            for (std::size_t r = 0; r < rows; ++r) cs += double(x[r * c + i]) - double(g.mean()[i]);
            CHECK(std::abs(g.centred_sum()[i] - cs) < 1e-6 * double(rows) * (5.0 + double(i)));
            for (std::size_t a = 0; a < c; ++a) {
                double q = 0, scale = 0;
                for (std::size_t r = 0; r < rows; ++r) {
                    q += (double(x[r * c + i]) - double(g.mean()[i])) * double(x[r * c + a]);
                    scale += std::abs(double(x[r * c + i]) * double(x[r * c + a]));
                }
                // Float sums of the raw products over blocks of rows: the error is relative
                // to the sum of their magnitudes (centring happens in double afterwards).
                CHECK(std::abs(g.gram()[i * c + a] - q) <= 1e-6 * scale + 1e-9);
            }
        }
    }
}

TEST_CASE("CentredGram: statistics of X W equal those of the product") {
    for (std::size_t rows : {5u, 2500u}) {
        const std::size_t c = 13, n = 37;
        const std::vector<float> x = offset_matrix(rows, c, 3 + rows), w = naive::random(c * n, 4);
        CentredGram g;
        g.compute(x.data(), rows, c);
        std::vector<float> mean(n), var(n);
        g.product_statistics(w.data(), n, mean.data(), var.data());
        for (std::size_t j = 0; j < n; ++j) {
            // The product in double, then its mean and biased variance in two passes.
            std::vector<double> z(rows);
            double m = 0, scale = 0;
            for (std::size_t r = 0; r < rows; ++r) {
                double s = 0;
                for (std::size_t i = 0; i < c; ++i) {
                    s += double(x[r * c + i]) * double(w[i * n + j]);
                    scale += std::abs(double(x[r * c + i]) * double(w[i * n + j]));
                }
                z[r] = s;
                m += s;
            }
            m /= double(rows);
            double v = 0;
            for (double s : z) v += (s - m) * (s - m);
            v /= double(rows);
            CAPTURE(rows);
            CAPTURE(j);
            CHECK(std::abs(mean[j] - m) <= 1e-6 * scale / double(rows) + 1e-7);
            CHECK(std::abs(var[j] - v) <= 1e-5 * v + 1e-7);
        }
    }
}

TEST_CASE("CentredGram: the same bits for 1 and 2 threads") {
    const std::size_t rows = 5000, c = 24;
    const std::vector<float> x = offset_matrix(rows, c, 21);
    CentredGram a, b;
    typenet::set_num_threads(1);
    a.compute(x.data(), rows, c);
    typenet::set_num_threads(2);
    b.compute(x.data(), rows, c);
    CHECK(a.gram() == b.gram());
    CHECK(a.centred_sum() == b.centred_sum());
}
