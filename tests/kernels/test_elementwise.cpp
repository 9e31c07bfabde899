// Element-wise and per-channel kernels against naive double-precision loops, on
// channel counts that are not a multiple of the SIMD width and on enough rows to
// use several chunks and threads.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/elementwise.hpp"

using namespace typenet::kernels;

namespace {
const std::size_t kChannels[] = {1, 3, 7, 17, 33, 96};
const std::size_t kRows[] = {1, 5, 49, 3000};

// Batch mean and 1 / sqrt(var + 1e-3) per channel of a rows x c matrix, in double.
void naive_stats(const std::vector<float>& x, std::size_t rows, std::size_t c, std::vector<float>& mean,
                 std::vector<float>& invstd) {
    mean.assign(c, 0.0f);
    invstd.assign(c, 0.0f);
    for (std::size_t j = 0; j < c; ++j) {
        double s = 0, q = 0;
        for (std::size_t i = 0; i < rows; ++i) s += x[i * c + j];
        const double m = s / double(rows);
        for (std::size_t i = 0; i < rows; ++i) q += (x[i * c + j] - m) * (x[i * c + j] - m);
        mean[j] = float(m);
        invstd[j] = float(1.0 / std::sqrt(q / double(rows) + 1e-3));
    }
}

// Training batch-norm backward, the autograd-style formula in double: dbeta = sum dy,
// dgamma = sum dy * x_hat, dx = gamma * invstd * (dy - dbeta / rows - x_hat * dgamma / rows).
void naive_bn_backward(const std::vector<float>& x, const std::vector<float>& dy, const std::vector<float>& gamma,
                       const std::vector<float>& mean, const std::vector<float>& invstd, std::size_t rows, std::size_t c,
                       std::vector<float>& rdx, std::vector<float>& rdg, std::vector<float>& rdb) {
    rdx.assign(rows * c, 0.0f);
    rdg.assign(c, 0.0f);
    rdb.assign(c, 0.0f);
    for (std::size_t j = 0; j < c; ++j) {
        double sb = 0, sg = 0;
        for (std::size_t i = 0; i < rows; ++i) {
            sb += dy[i * c + j];
            sg += double(dy[i * c + j]) * ((double(x[i * c + j]) - mean[j]) * invstd[j]);
        }
        rdb[j] = float(sb);
        rdg[j] = float(sg);
        for (std::size_t i = 0; i < rows; ++i) {
            const double xh = (double(x[i * c + j]) - mean[j]) * invstd[j];
            rdx[i * c + j] = float(double(gamma[j]) * invstd[j] * (dy[i * c + j] - sb / double(rows) - xh * sg / double(rows)));
        }
    }
}
}  // namespace

TEST_CASE("clamp_backward passes the gradient strictly inside (lo, hi)") {
    for (std::size_t n : {1, 7, 17, 100, 200003}) {
        auto y = naive::random(n, n), dy = naive::random(n, n + 1);
        for (std::size_t i = 0; i < n; i += 3) y[i] = (i % 2) ? 0.5f : 0.0f;  // exactly on the bounds
        std::vector<float> dx(n);
        clamp_backward(y.data(), dy.data(), dx.data(), n, 0.0f, 0.5f);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const float want = (y[i] > 0.0f && y[i] < 0.5f) ? dy[i] : 0.0f;
            bad += dx[i] != want;
        }
        CHECK(bad == 0);
        // in place
        std::vector<float> d2 = dy;
        clamp_backward(y.data(), d2.data(), d2.data(), n, 0.0f, 0.5f);
        CHECK(std::memcmp(d2.data(), dx.data(), n * sizeof(float)) == 0);
    }
}

TEST_CASE("column_sums") {
    double worst = 0;
    for (auto c : kChannels)
        for (auto rows : kRows) {
            const std::size_t lda = c + (c % 2) * 3;
            auto a = naive::random(rows * lda, rows * 100 + c);
            std::vector<float> out(c, 9.0f), acc(c, 1.0f), ref(c);
            column_sums(a.data(), rows, c, out.data(), lda);
            column_sums(a.data(), rows, c, acc.data(), lda, true);
            for (std::size_t j = 0; j < c; ++j) {
                double s = 0;
                for (std::size_t i = 0; i < rows; ++i) s += a[i * lda + j];
                ref[j] = float(s);
            }
            worst = std::max(worst, naive::max_rel_error(out.data(), ref.data(), c));
            for (auto& r : ref) r += 1.0f;
            worst = std::max(worst, naive::max_rel_error(acc.data(), ref.data(), c));
        }
    MESSAGE("column_sums: max relative error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("channel_mean_var: statistics of data with a large mean, biased variance") {
    double worst = 0;
    for (auto c : kChannels)
        for (auto rows : kRows) {
            auto x = naive::random(rows * c, rows + c);
            for (auto& v : x) v = 100.0f + 3.0f * v;  // large mean: one-pass formulas lose digits here
            std::vector<float> mean(c), var(c), rm(c), rv(c);
            channel_mean_var(x.data(), rows, c, mean.data(), var.data());
            for (std::size_t j = 0; j < c; ++j) {
                double s = 0, q = 0;
                for (std::size_t i = 0; i < rows; ++i) s += x[i * c + j];
                const double m = s / double(rows);
                for (std::size_t i = 0; i < rows; ++i) q += (x[i * c + j] - m) * (x[i * c + j] - m);
                rm[j] = float(m);
                rv[j] = float(q / double(rows));
            }
            worst = std::max({worst, naive::max_rel_error(mean.data(), rm.data(), c),
                              naive::max_rel_error(var.data(), rv.data(), c)});
        }
    MESSAGE("channel_mean_var: max relative error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("scale_shift with clamp") {
    for (auto c : kChannels)
        for (auto rows : kRows) {
            auto x = naive::random(rows * c, 1), sc = naive::random(c, 2), sh = naive::random(c, 3);
            std::vector<float> y(rows * c), in_place = x;
            scale_shift(x.data(), rows, c, sc.data(), sh.data(), y.data(), -0.25f, 0.5f);
            scale_shift(in_place.data(), rows, c, sc.data(), sh.data(), in_place.data(), -0.25f, 0.5f);
            double worst = 0;
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < c; ++j) {
                    const double want = std::min(0.5, std::max(-0.25, double(x[i * c + j]) * sc[j] + sh[j]));
                    worst = std::max(worst, std::abs(want - y[i * c + j]));
                }
            CHECK(worst < 1e-6);
            CHECK(std::memcmp(in_place.data(), y.data(), y.size() * sizeof(float)) == 0);
        }
}

TEST_CASE("batchnorm_backward (from x_hat and from x, mean, invstd) against the naive formula") {
    double worst = 0;
    for (auto c : kChannels)
        for (auto rows : kRows) {
            if (rows < 2) continue;
            auto x = naive::random(rows * c, 10 + c), dy = naive::random(rows * c, 20 + rows);
            auto gamma = naive::random(c, 3);
            // Batch statistics and x_hat in double.
            std::vector<float> mean, invstd, xhat(rows * c), rdx, rdg, rdb;
            naive_stats(x, rows, c, mean, invstd);
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < c; ++j)
                    xhat[i * c + j] = float((double(x[i * c + j]) - mean[j]) * invstd[j]);
            naive_bn_backward(x, dy, gamma, mean, invstd, rows, c, rdx, rdg, rdb);
            std::vector<float> dx(rows * c), dg(c), db(c);
            batchnorm_backward(xhat.data(), dy.data(), rows, c, gamma.data(), invstd.data(), dx.data(), dg.data(),
                               db.data());
            worst = std::max({worst, naive::max_rel_error(dx.data(), rdx.data(), dx.size()),
                              naive::max_rel_error(dg.data(), rdg.data(), c), naive::max_rel_error(db.data(), rdb.data(), c)});
            std::vector<float> dx2(rows * c), dg2(c), db2(c);
            batchnorm_backward(x.data(), mean.data(), invstd.data(), dy.data(), rows, c, gamma.data(), dx2.data(),
                               dg2.data(), db2.data());
            worst = std::max({worst, naive::max_rel_error(dx2.data(), rdx.data(), dx.size()),
                              naive::max_rel_error(dg2.data(), rdg.data(), c), naive::max_rel_error(db2.data(), rdb.data(), c)});
            // Parameter gradients only.
            std::vector<float> dg3(c);
            batchnorm_backward(xhat.data(), dy.data(), rows, c, nullptr, nullptr, nullptr, dg3.data(), nullptr);
            worst = std::max(worst, naive::max_rel_error(dg3.data(), rdg.data(), c));
        }
    MESSAGE("batchnorm_backward: max relative error " << worst);
    CHECK(worst < 2e-5);
}

TEST_CASE("batchnorm_backward with a fused ReLU6 mask against the naive masked formula") {
    double worst = 0;
    std::size_t masked = 0, total = 0;
    for (auto c : kChannels)
        for (auto rows : {std::size_t{2}, std::size_t{49}, std::size_t{3000}}) {
            auto x = naive::random(rows * c, 7 * rows + c), dy = naive::random(rows * c, 11 * rows + c);
            auto gamma = naive::random(c, c + 5);
            std::vector<float> mean, invstd, y(rows * c), mdy(rows * c), rdx, rdg, rdb;
            naive_stats(x, rows, c, mean, invstd);
            // The forward's output: y = clamp(3 * x_hat * gamma + 2, 0, 6), so that many values
            // fall on each side of the clamp; the masked gradient in a plain loop.
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < c; ++j) {
                    const double v = 3.0 * (x[i * c + j] - mean[j]) * invstd[j] * gamma[j] + 2.0;
                    y[i * c + j] = float(std::min(std::max(v, 0.0), 6.0));
                    const bool inside = y[i * c + j] > 0.0f && y[i * c + j] < 6.0f;
                    mdy[i * c + j] = inside ? dy[i * c + j] : 0.0f;
                    masked += inside ? 0 : 1;
                    ++total;
                }
            naive_bn_backward(x, mdy, gamma, mean, invstd, rows, c, rdx, rdg, rdb);
            std::vector<float> dx(rows * c), dg(c), db(c);
            batchnorm_backward(x.data(), mean.data(), invstd.data(), dy.data(), rows, c, gamma.data(), dx.data(),
                               dg.data(), db.data(), y.data(), 0.0f, 6.0f);
            // Relative error with a floor of 1% of the vector's largest value: masked sums
            // can be near zero, where float rounding is all that is left.
            auto err = [&](const std::vector<float>& a, const std::vector<float>& r) {
                double scale = 0, e = 0;
                for (float v : r) scale = std::max(scale, std::abs(double(v)));
                for (std::size_t i = 0; i < a.size(); ++i)
                    e = std::max(e, std::abs(double(a[i]) - r[i]) / (std::abs(double(r[i])) + 0.01 * scale + 1e-30));
                return e;
            };
            worst = std::max({worst, err(dx, rdx), err(dg, rdg), err(db, rdb)});
        }
    MESSAGE("batchnorm_backward (masked): max error " << worst << ", " << masked << " of " << total << " masked");
    CHECK(masked > total / 10);
    CHECK(masked < total * 9 / 10);
    CHECK(worst < 1e-4);
}

TEST_CASE("global average pooling forward and backward") {
    for (std::size_t n : {1, 3})
        for (std::size_t hw : {1, 7, 49})
            for (auto c : kChannels) {
                auto x = naive::random(n * hw * c, n * hw + c);
                std::vector<float> y(n * c), dx(n * hw * c);
                global_avg_pool_forward(x.data(), n, hw, c, y.data());
                double worst = 0;
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < c; ++j) {
                        double s = 0;
                        for (std::size_t p = 0; p < hw; ++p) s += x[(i * hw + p) * c + j];
                        worst = std::max(worst, std::abs(s / double(hw) - y[i * c + j]));
                    }
                global_avg_pool_backward(y.data(), n, hw, c, dx.data());
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t p = 0; p < hw; ++p)
                        for (std::size_t j = 0; j < c; ++j)
                            worst = std::max(worst, std::abs(double(y[i * c + j]) / double(hw) - dx[(i * hw + p) * c + j]));
                CHECK(worst < 1e-6);
            }
}

TEST_CASE("reductions are bit-identical for 1 and 2 threads") {
    const std::size_t rows = 50000, c = 40;
    auto x = naive::random(rows * c, 3), dy = naive::random(rows * c, 4);
    auto run = [&](int t) {
        typenet::set_num_threads(t);
        std::vector<float> out(5 * c);
        column_sums(x.data(), rows, c, out.data());
        channel_mean_var(x.data(), rows, c, out.data() + c, out.data() + 2 * c);
        batchnorm_backward(x.data(), dy.data(), rows, c, nullptr, nullptr, nullptr, out.data() + 3 * c, out.data() + 4 * c);
        return out;
    };
    const auto a = run(1), b = run(2), d = run(2);
    typenet::set_num_threads(2);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(b.data(), d.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("element-wise kernels reject null pointers") {
    std::vector<float> v(16);
    CHECK_THROWS_AS(clamp_backward(nullptr, v.data(), v.data(), 4, 0, 1), typenet::shape_error);
    CHECK_THROWS_AS(column_sums(v.data(), 2, 2, nullptr), typenet::shape_error);
    CHECK_THROWS_AS(channel_mean_var(v.data(), 0, 2, v.data(), v.data()), typenet::shape_error);
    CHECK_THROWS_AS(batchnorm_backward(v.data(), nullptr, 2, 2, nullptr, v.data(), v.data(), v.data(), v.data()),
                    typenet::shape_error);
    CHECK_THROWS_AS(global_avg_pool_forward(v.data(), 1, 0, 4, v.data()), typenet::shape_error);
}
