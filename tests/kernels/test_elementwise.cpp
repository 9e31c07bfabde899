// Element-wise and per-channel kernels against naive double-precision loops, on
// channel counts that are not a multiple of the SIMD width and on enough rows to
// use several chunks and threads.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/workspace.hpp"

using namespace typenet::kernels;

namespace {
// Up to 150: more than one block of 8 accumulator vectors in the reductions (AVX-512), partial last.
const std::size_t kChannels[] = {1, 3, 7, 17, 33, 96, 150};
const std::size_t kRows[] = {1, 5, 49, 3000};

// Per-channel mean and biased variance of a rows x c matrix, two passes in double.
void reference_mean_var(const std::vector<float>& x, std::size_t rows, std::size_t c, std::vector<float>& mean,
                        std::vector<float>& var) {
    std::vector<double> s(c, 0.0), q(c, 0.0);
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < c; ++j) s[j] += x[i * c + j];
    for (std::size_t j = 0; j < c; ++j) s[j] /= double(rows);
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < c; ++j) q[j] += (x[i * c + j] - s[j]) * (x[i * c + j] - s[j]);
    mean.assign(c, 0.0f);
    var.assign(c, 0.0f);
    for (std::size_t j = 0; j < c; ++j) {
        mean[j] = float(s[j]);
        var[j] = float(q[j] / double(rows));
    }
}

// Batch mean and 1 / sqrt(var + 1e-3) per channel of a rows x c matrix, in double.
void naive_stats(const std::vector<float>& x, std::size_t rows, std::size_t c, std::vector<float>& mean,
                 std::vector<float>& invstd) {
    std::vector<float> var;
    reference_mean_var(x, rows, c, mean, var);
    invstd.assign(c, 0.0f);
    for (std::size_t j = 0; j < c; ++j) invstd[j] = float(1.0 / std::sqrt(double(var[j]) + 1e-3));
}

/// Largest relative error of `a` against `r`, with a floor of 1% of r's largest value:
/// masked sums can be near zero, where float rounding is all that is left.
double floored_error(const std::vector<float>& a, const std::vector<float>& r) {
    double scale = 0, e = 0;
    for (float v : r) scale = std::max(scale, std::abs(double(v)));
    for (std::size_t i = 0; i < a.size(); ++i)
        e = std::max(e, std::abs(double(a[i]) - r[i]) / (std::abs(double(r[i])) + 0.01 * scale + 1e-30));
    return e;
}

/// `dy` masked by ReLU6's derivative: dy where the forward's output `y(i, j)` (row i,
/// channel j) lies strictly inside (0, 6), else 0. Adds the number of masked values to
/// `masked`.
template <class Y>
std::vector<float> relu6_masked(const std::vector<float>& dy, std::size_t rows, std::size_t c, Y&& y,
                                std::size_t& masked) {
    std::vector<float> m(rows * c);
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < c; ++j) {
            const float v = y(i, j);
            const bool inside = v > 0.0f && v < 6.0f;
            m[i * c + j] = inside ? dy[i * c + j] : 0.0f;
            masked += inside ? 0 : 1;
        }
    return m;
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

TEST_CASE("clamp_backward_stream gives clamp_backward's values") {
    for (std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(16), std::size_t(33), std::size_t(1000),
                          std::size_t(4099)}) {
        auto y = naive::random(n, n), dy = naive::random(n, n + 1);
        for (auto& v : y) v = 5.0f * v + 3.0f;  // [-2, 8]: around both bounds of [0, 6]
        std::vector<float> a(n, -9.0f), b(n, -7.0f), ref(n);
        clamp_backward(y.data(), dy.data(), a.data(), n, 0.0f, 6.0f);
        clamp_backward_stream(y.data(), dy.data(), b.data(), n, 0.0f, 6.0f);
        for (std::size_t i = 0; i < n; ++i) ref[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f;
        CAPTURE(n);
        CHECK(a == ref);
        CHECK(b == ref);
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

TEST_CASE("centred_gradient_sums: sum g and sum g * (x - centre) per channel") {
    double worst = 0;
    for (auto c : kChannels)
        for (auto rows : kRows) {
            auto g = naive::random(rows * c, rows * 7 + c), x = naive::random(rows * c, rows * 11 + c);
            auto centre = naive::random(c, c + 5);
            for (auto& v : x) v = 20.0f + v;  // a centre far from zero: x - centre must not be dropped
            for (auto& v : centre) v = 20.0f + 0.5f * v;
            std::vector<double> out(2 * c, -1.0);
            centred_gradient_sums(g.data(), x.data(), centre.data(), rows, c, out.data());
            std::vector<float> got(2 * c), ref(2 * c);
            for (std::size_t j = 0; j < c; ++j) {
                double s = 0, t = 0;
                for (std::size_t i = 0; i < rows; ++i) {
                    s += g[i * c + j];
                    t += double(g[i * c + j]) * (double(x[i * c + j]) - double(centre[j]));
                }
                ref[j] = float(s);
                ref[c + j] = float(t);
                got[j] = float(out[j]);
                got[c + j] = float(out[c + j]);
            }
            worst = std::max(worst, naive::max_rel_error(got.data(), ref.data(), 2 * c));
        }
    MESSAGE("centred_gradient_sums: max relative error " << worst);
    CHECK(worst < 1e-4);
    std::vector<double> none(4, 7.0);
    centred_gradient_sums(nullptr, nullptr, std::vector<float>(2).data(), 0, 2, none.data());
    CHECK(none == std::vector<double>(4, 0.0));
}

TEST_CASE("channel_mean_var: statistics of data with a large mean, biased variance") {
    double worst = 0;
    for (auto c : kChannels)
        for (auto rows : kRows) {
            auto x = naive::random(rows * c, rows + c);
            for (auto& v : x) v = 100.0f + 3.0f * v;  // large mean: one-pass formulas lose digits here
            std::vector<float> mean(c), var(c), rm(c), rv(c);
            channel_mean_var(x.data(), rows, c, mean.data(), var.data());
            reference_mean_var(x, rows, c, rm, rv);
            worst = std::max({worst, naive::max_rel_error(mean.data(), rm.data(), c),
                              naive::max_rel_error(var.data(), rv.data(), c)});
        }
    MESSAGE("channel_mean_var: max relative error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("produce_channel_mean_var: statistics taken while the data are produced, in pieces") {
    // Rows made by a producer in units of `unit` rows (copied from a stored matrix with a
    // large mean); each unit must be produced exactly once, and the statistics must match
    // the two-pass double reference like channel_mean_var's, with any number of threads.
    const int threads_before = typenet::max_threads();
    double worst = 0;
    for (auto c : kChannels)
        for (std::size_t unit : {std::size_t(1), std::size_t(7)})
            for (std::size_t rows0 : {1, 5, 49, 3000, 20000}) {  // 20000: several pieces per chunk
                const std::size_t rows = std::max<std::size_t>(1, rows0 / unit) * unit;
                auto src = naive::random(rows * c, rows + c + unit);
                for (auto& v : src) v = 100.0f + 3.0f * v;
                std::vector<float> rm(c), rv(c);
                reference_mean_var(src, rows, c, rm, rv);
                std::vector<float> first_mean, first_var;
                for (int t : {1, 2}) {
                    typenet::set_num_threads(t);
                    std::vector<float> x(rows * c, std::nanf("")), mean(c), var(c);
                    std::vector<int> made(rows / unit, 0);
                    produce_channel_mean_var(rows, c, unit, x.data(),
                                             [&](std::size_t u0, std::size_t u1, float* out) {
                                                 for (std::size_t u = u0; u < u1; ++u) ++made[u];
                                                 std::memcpy(out, src.data() + u0 * unit * c,
                                                             (u1 - u0) * unit * c * sizeof(float));
                                             },
                                             mean.data(), var.data());
                    std::size_t wrong = 0;
                    for (int m : made) wrong += m != 1;
                    CHECK_MESSAGE(wrong == 0, wrong << " units not produced exactly once");
                    CHECK(std::memcmp(x.data(), src.data(), x.size() * sizeof(float)) == 0);
                    worst = std::max({worst, naive::max_rel_error(mean.data(), rm.data(), c),
                                      naive::max_rel_error(var.data(), rv.data(), c)});
                    if (t == 1) {
                        first_mean = mean;
                        first_var = var;
                    } else {  // fixed chunks: the thread count does not change the bits
                        CHECK(std::memcmp(mean.data(), first_mean.data(), c * sizeof(float)) == 0);
                        CHECK(std::memcmp(var.data(), first_var.data(), c * sizeof(float)) == 0);
                    }
                }
            }
    typenet::set_num_threads(threads_before);
    MESSAGE("produce_channel_mean_var: max relative error " << worst);
    CHECK(worst < 1e-5);
    std::vector<float> m(3), v(3), x(12);
    CHECK_THROWS_AS(produce_channel_mean_var(4, 3, 3, x.data(), [](std::size_t, std::size_t, float*) {}, m.data(), v.data()),
                    typenet::shape_error);  // 4 rows are not whole units of 3
}

TEST_CASE("produce_channel_mean_var on a large aligned matrix: produced through a cached buffer, streamed out") {
    // 32 MB, 64-byte aligned, 64 channels: each piece is produced into a per-thread buffer,
    // summed there and copied out with non-temporal stores. The matrix must arrive intact
    // and the statistics match the double reference.
    const std::size_t c = 64, rows = (std::size_t(32) << 20) / (c * sizeof(float));
    typenet::kernels::AlignedBuffer xb;
    float* x = xb.get(rows * c);
    REQUIRE(typenet::kernels::detail::use_streaming_stores(x, c, rows, c, false));
    auto value = [](std::size_t r, std::size_t j) { return -50.0f + float((r * 7 + j * 13) % 101) * 0.25f + float(j); };
    std::vector<float> mean(c), var(c);
    produce_channel_mean_var(rows, c, 1, x,
                             [&](std::size_t u0, std::size_t u1, float* out) {
                                 for (std::size_t r = u0; r < u1; ++r)
                                     for (std::size_t j = 0; j < c; ++j) out[(r - u0) * c + j] = value(r, j);
                             },
                             mean.data(), var.data());
    std::size_t wrong = 0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < c; ++j) wrong += x[r * c + j] != value(r, j);
    CHECK(wrong == 0);
    double worst = 0;
    for (std::size_t j = 0; j < c; ++j) {
        double s = 0, q = 0;
        for (std::size_t r = 0; r < rows; ++r) s += value(r, j);
        const double m = s / double(rows);
        for (std::size_t r = 0; r < rows; ++r) q += (value(r, j) - m) * (value(r, j) - m);
        worst = std::max({worst, std::abs(mean[j] - m) / (std::abs(m) + 1.0), std::abs(var[j] - q / double(rows)) / (q / double(rows))});
    }
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

            // With a residual added before the clamp (a block's output), also written over
            // the residual itself.
            const auto res = naive::random(rows * c, 4);
            std::vector<float> yr(rows * c), over_res = res;
            scale_shift(x.data(), rows, c, sc.data(), sh.data(), yr.data(), -0.25f, 0.5f, res.data());
            scale_shift(x.data(), rows, c, sc.data(), sh.data(), over_res.data(), -0.25f, 0.5f, over_res.data());
            worst = 0;
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < c; ++j) {
                    const double v = double(x[i * c + j]) * sc[j] + sh[j] + res[i * c + j];
                    worst = std::max(worst, std::abs(std::min(0.5, std::max(-0.25, v)) - yr[i * c + j]));
                }
            CHECK(worst < 1e-6);
            CHECK(std::memcmp(over_res.data(), yr.data(), yr.size() * sizeof(float)) == 0);
        }
}

TEST_CASE("large aligned outputs (written with non-temporal stores) equal the cached path's") {
    // 32 MB outputs, 64-byte aligned, 64 channels: scale_shift and the batch-norm input gradient
    // take their streaming-store path. The same data one float off alignment takes the plain
    // stores; both must give the same bits, and agree with the naive formulas.
    const std::size_t c = 64, rows = (std::size_t(32) << 20) / (c * sizeof(float));
    REQUIRE(typenet::kernels::detail::use_streaming_stores(nullptr, c, rows, c, false));
    typenet::kernels::AlignedBuffer xb, yb, db, gb;
    float* x = xb.get(rows * c + 16);
    float* y = yb.get(rows * c + 16);
    float* dy = db.get(rows * c + 16);
    float* dx = gb.get(rows * c + 16);
    const auto xs = naive::random(rows * c, 21), ds = naive::random(rows * c, 22);
    const auto sc = naive::random(c, 23), sh = naive::random(c, 24), gamma = naive::random(c, 25);
    std::vector<float> mean(c), invstd(c), dg(c), dbeta(c);
    for (std::size_t j = 0; j < c; ++j) {
        mean[j] = 0.1f * sh[j];
        invstd[j] = 1.0f + 0.5f * std::abs(sc[j]);
    }
    auto run = [&](std::size_t off, std::vector<float>& out_y, std::vector<float>& out_dx) {
        std::copy(xs.begin(), xs.end(), x + off);
        std::copy(ds.begin(), ds.end(), dy + off);
        scale_shift(x + off, rows, c, sc.data(), sh.data(), y + off, 0.0f, 6.0f);
        batchnorm_backward_clamped(x + off, mean.data(), invstd.data(), dy + off, rows, c, gamma.data(), dx + off,
                                   dg.data(), dbeta.data(), sc.data(), sh.data(), 0.0f, 6.0f);
        out_y.assign(y + off, y + off + rows * c);
        out_dx.assign(dx + off, dx + off + rows * c);
    };
    std::vector<float> y0, dx0, y1, dx1;
    run(0, y0, dx0);
    run(1, y1, dx1);
    CHECK(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(dx0.data(), dx1.data(), dx0.size() * sizeof(float)) == 0);
    // Spot checks against the formulas, every 997th element.
    double worst = 0;
    for (std::size_t i = 0; i < rows * c; i += 997) {
        const std::size_t j = i % c;
        const double want = std::min(6.0, std::max(0.0, double(xs[i]) * sc[j] + sh[j]));
        worst = std::max(worst, std::abs(want - y0[i]));
    }
    CHECK(worst < 1e-5);
    // The parameter gradients (sums of the masked dy and of masked dy * x_hat) in double,
    // then dx = gamma * invstd * (g - dbeta / rows - x_hat * dgamma / rows) at the spots.
    std::size_t masked = 0;
    const auto g = relu6_masked(
        ds, rows, c, [&](std::size_t i, std::size_t j) { return std::fma(xs[i * c + j], sc[j], sh[j]); }, masked);
    std::vector<double> rdb(c, 0.0), rdg(c, 0.0);
    for (std::size_t i = 0; i < rows * c; ++i) {
        const std::size_t j = i % c;
        rdb[j] += g[i];
        rdg[j] += double(g[i]) * (double(xs[i]) - mean[j]) * invstd[j];
    }
    double worst_sums = 0;
    for (std::size_t j = 0; j < c; ++j)
        worst_sums = std::max({worst_sums, std::abs(rdb[j] - dbeta[j]) / (std::abs(rdb[j]) + 1.0),
                               std::abs(rdg[j] - dg[j]) / (std::abs(rdg[j]) + 1.0)});
    CHECK(worst_sums < 1e-4);
    double worst_dx = 0;
    for (std::size_t i = 0; i < rows * c; i += 997) {
        const std::size_t j = i % c;
        const double xh = (double(xs[i]) - mean[j]) * invstd[j];
        const double want = gamma[j] * invstd[j] * (g[i] - rdb[j] / double(rows) - xh * rdg[j] / double(rows));
        worst_dx = std::max(worst_dx, std::abs(want - dx0[i]) / (std::abs(want) + 1e-3));
    }
    CHECK(masked > rows * c / 10);
    CHECK(worst_dx < 1e-4);
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
            std::vector<float> mean, invstd, y(rows * c), rdx, rdg, rdb;
            naive_stats(x, rows, c, mean, invstd);
            // The forward's output: y = clamp(3 * x_hat * gamma + 2, 0, 6), so that many values
            // fall on each side of the clamp; the masked gradient in a plain loop.
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < c; ++j) {
                    const double v = 3.0 * (x[i * c + j] - mean[j]) * invstd[j] * gamma[j] + 2.0;
                    y[i * c + j] = float(std::min(std::max(v, 0.0), 6.0));
                }
            const auto mdy = relu6_masked(dy, rows, c, [&](std::size_t i, std::size_t j) { return y[i * c + j]; }, masked);
            total += rows * c;
            naive_bn_backward(x, mdy, gamma, mean, invstd, rows, c, rdx, rdg, rdb);
            std::vector<float> dx(rows * c), dg(c), db(c);
            batchnorm_backward(x.data(), mean.data(), invstd.data(), dy.data(), rows, c, gamma.data(), dx.data(),
                               dg.data(), db.data(), y.data(), 0.0f, 6.0f);
            worst = std::max({worst, floored_error(dx, rdx), floored_error(dg, rdg), floored_error(db, rdb)});
        }
    MESSAGE("batchnorm_backward (masked): max error " << worst << ", " << masked << " of " << total << " masked");
    CHECK(masked > total / 10);
    CHECK(masked < total * 9 / 10);
    CHECK(worst < 1e-4);
}

TEST_CASE("batchnorm_backward_clamped: the mask recomputed from x matches the mask read from y") {
    // The forward of a ReLU6 batch norm: y = clamp(fma(x, a, b), 0, 6) with a = gamma * invstd,
    // b = beta - mean * a (as scale_shift computes it). The reference masks dy with y in a plain
    // loop; the kernel under test never sees y.
    double worst = 0;
    std::size_t masked = 0, total = 0;
    for (auto c : kChannels)
        for (auto rows : {std::size_t{2}, std::size_t{49}, std::size_t{3000}}) {
            auto x = naive::random(rows * c, 5 * rows + c), dy = naive::random(rows * c, 13 * rows + c);
            auto gamma = naive::random(c, c + 9);
            std::vector<float> mean, invstd, a(c), b(c), rdx, rdg, rdb;
            naive_stats(x, rows, c, mean, invstd);
            for (std::size_t j = 0; j < c; ++j) {
                a[j] = 3.0f * gamma[j] * invstd[j];
                b[j] = 2.0f - mean[j] * a[j];
            }
            const auto mdy = relu6_masked(
                dy, rows, c, [&](std::size_t i, std::size_t j) { return std::fma(x[i * c + j], a[j], b[j]); }, masked);
            total += rows * c;
            // gamma here is the batch norm's scale in dx = gamma * invstd * (...): 3 * gamma.
            std::vector<float> g3(c);
            for (std::size_t j = 0; j < c; ++j) g3[j] = 3.0f * gamma[j];
            naive_bn_backward(x, mdy, g3, mean, invstd, rows, c, rdx, rdg, rdb);
            std::vector<float> dx(rows * c), dg(c), db(c);
            batchnorm_backward_clamped(x.data(), mean.data(), invstd.data(), dy.data(), rows, c, g3.data(),
                                       dx.data(), dg.data(), db.data(), a.data(), b.data(), 0.0f, 6.0f);
            worst = std::max({worst, floored_error(dx, rdx), floored_error(dg, rdg), floored_error(db, rdb)});
        }
    MESSAGE("batchnorm_backward_clamped: max error " << worst << ", " << masked << " of " << total << " masked");
    CHECK(masked > total / 10);
    CHECK(masked < total * 9 / 10);
    CHECK(worst < 1e-4);
    std::vector<float> v(4, 1.0f);
    CHECK_THROWS_AS(batchnorm_backward_clamped(v.data(), v.data(), v.data(), v.data(), 2, 2, nullptr, v.data(),
                                               nullptr, nullptr, nullptr, v.data(), 0.0f, 6.0f),
                    typenet::shape_error);
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
    CHECK_THROWS_AS(centred_gradient_sums(v.data(), nullptr, v.data(), 2, 2, reinterpret_cast<double*>(v.data())),
                    typenet::shape_error);
    CHECK_THROWS_AS(channel_mean_var(v.data(), 0, 2, v.data(), v.data()), typenet::shape_error);
    CHECK_THROWS_AS(batchnorm_backward(v.data(), nullptr, 2, 2, nullptr, v.data(), v.data(), v.data(), v.data()),
                    typenet::shape_error);
    CHECK_THROWS_AS(global_avg_pool_forward(v.data(), 1, 0, 4, v.data()), typenet::shape_error);
}
