// pointwise_backward (both gradients of a 1x1 convolution from an output gradient made
// block by block) against naive double-accumulation products: awkward channel counts
// (both orientations of the weight gradient, partial panels), row counts that leave a
// short last block, small and default blocks, one and two threads, either output alone.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/pointwise_backward.hpp"

using namespace typenet::kernels;

namespace {

struct Result {
    double dw_err = 0, dx_err = 0;
    std::vector<float> dw, dx;
};

// dY is a stored matrix here; the producer copies the rows it is asked for (and counts them).
Result run(std::size_t rows, std::size_t cin, std::size_t cout, std::size_t block, bool want_dw, bool want_dx,
           std::uint64_t seed) {
    const auto x = naive::random(rows * cin, seed), w = naive::random(cin * cout, seed + 1),
               dy = naive::random(rows * cout, seed + 2);
    PackedMatrix wt;
    wt.pack(Trans::Yes, cout, cin, w.data(), cout);
    Result r;
    r.dw.assign(cin * cout, 1e30f);  // overwritten, never read
    r.dx.assign(rows * cin, 1e30f);
    std::vector<std::size_t> seen(rows, 0);
    pointwise_backward(
        rows, cin, cout, x.data(), want_dx ? &wt : nullptr,
        [&](std::size_t r0, std::size_t r1, float* out, std::size_t ldo) {
            for (std::size_t i = r0; i < r1; ++i) {
                std::memcpy(out + (i - r0) * ldo, dy.data() + i * cout, cout * sizeof(float));
                ++seen[i];
            }
        },
        want_dw ? r.dw.data() : nullptr, want_dx ? r.dx.data() : nullptr, block);
    std::size_t wrong = 0;  // rows not produced exactly once
    for (std::size_t i = 0; i < rows; ++i) wrong += seen[i] != 1;
    REQUIRE_MESSAGE(wrong == 0, wrong << " rows not produced exactly once");
    if (want_dw) {
        std::vector<float> ref(cin * cout);
        naive::gemm(true, false, cin, cout, rows, x.data(), cin, dy.data(), cout, ref.data(), cout);
        r.dw_err = naive::max_scaled_error(r.dw.data(), ref.data(), ref.size());
    }
    if (want_dx) {
        std::vector<float> ref(rows * cin);
        naive::gemm(false, true, rows, cin, cout, dy.data(), cout, w.data(), cout, ref.data(), cin);
        r.dx_err = naive::max_rel_error(r.dx.data(), ref.data(), ref.size());
    }
    return r;
}

double tol(std::size_t K) { return 1e-6 * (std::sqrt(double(K)) + 2.0); }

}  // namespace

TEST_CASE("pointwise_backward matches X^T dY and dY W^T on awkward shapes") {
    struct Shape {
        std::size_t rows, cin, cout;
    };
    // cout narrow (the transposed weight gradient) and wide; channels not a multiple of
    // the vector width; a single row; more rows than one block.
    const Shape shapes[] = {{1, 3, 5},     {37, 16, 96},   {301, 24, 144}, {515, 96, 24},
                            {200, 144, 17}, {129, 33, 50}, {64, 7, 320},   {1000, 320, 16}};
    const int threads_before = typenet::max_threads();
    for (int threads : {1, 2}) {
        typenet::set_num_threads(threads);
        for (const auto& s : shapes)
            for (std::size_t block : {std::size_t(0), std::size_t(5), std::size_t(16), std::size_t(64)}) {
                const Result r = run(s.rows, s.cin, s.cout, block, true, true, 11 + s.rows);
                INFO("rows " << s.rows << " cin " << s.cin << " cout " << s.cout << " block " << block << " threads "
                             << threads << ": dW err " << r.dw_err << ", dX err " << r.dx_err);
                CHECK(r.dw_err < tol(s.rows));
                CHECK(r.dx_err < tol(s.cout));
            }
    }
    typenet::set_num_threads(threads_before);
}

TEST_CASE("pointwise_backward: either gradient alone; dX independent of blocks and threads; dW bit-stable") {
    const std::size_t rows = 777, cin = 24, cout = 144;
    const int threads_before = typenet::max_threads();
    typenet::set_num_threads(2);
    const Result both = run(rows, cin, cout, 0, true, true, 5);
    const Result only_w = run(rows, cin, cout, 0, true, false, 5);
    const Result only_x = run(rows, cin, cout, 0, false, true, 5);
    CHECK(std::memcmp(both.dw.data(), only_w.dw.data(), both.dw.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(both.dx.data(), only_x.dx.data(), both.dx.size() * sizeof(float)) == 0);
    CHECK(only_w.dx[0] == 1e30f);  // untouched when not asked for
    CHECK(only_x.dw[0] == 1e30f);
    const Result again = run(rows, cin, cout, 0, true, true, 5);
    CHECK(std::memcmp(both.dw.data(), again.dw.data(), both.dw.size() * sizeof(float)) == 0);
    // Each row of dX is one product over cout: the same bits whatever the blocks and threads.
    const Result small = run(rows, cin, cout, 8, true, true, 5);
    typenet::set_num_threads(1);
    const Result one = run(rows, cin, cout, 0, true, true, 5);
    typenet::set_num_threads(threads_before);
    CHECK(std::memcmp(both.dx.data(), small.dx.data(), both.dx.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(both.dx.data(), one.dx.data(), both.dx.size() * sizeof(float)) == 0);
}

TEST_CASE("pointwise_backward: empty products give zeros; a mismatched W^T is refused") {
    std::vector<float> dw(6, 1.0f), w(6, 1.0f);
    auto never = [](std::size_t, std::size_t, float*, std::size_t) { FAIL("no rows to produce"); };
    pointwise_backward(0, 2, 3, nullptr, nullptr, never, dw.data(), nullptr);
    for (float v : dw) CHECK(v == 0.0f);
    PackedMatrix wrong;
    wrong.pack(Trans::Yes, 2, 3, w.data(), 2);  // 2 x 3: W^T of a 3 -> 2 layer, not 2 -> 3
    std::vector<float> dx(8);
    CHECK_THROWS_AS(pointwise_backward(4, 2, 3, w.data(), &wrong, never, nullptr, dx.data()), typenet::shape_error);
    CHECK_THROWS_AS(pointwise_backward(4, 2, 3, w.data(), nullptr, never, nullptr, dx.data()), typenet::shape_error);
    // No output channels: dX = dY W^T is a sum of nothing.
    std::fill(dx.begin(), dx.end(), 1.0f);
    pointwise_backward(4, 2, 0, w.data(), nullptr, never, nullptr, dx.data());
    for (float v : dx) CHECK(v == 0.0f);
    // No rows: the batch-norm sums of dX are zero.
    std::vector<double> sums(4, 1.0);
    const float one[2] = {1.0f, 1.0f};
    const ChannelMap map{one, one, 0.0f, 6.0f};
    const DxBatchNormSums ds{one, one, sums.data()};
    pointwise_backward(0, 2, 3, nullptr, nullptr, never, nullptr, dx.data(), 0, &map, &ds);
    for (double v : sums) CHECK(v == 0.0);
}

TEST_CASE("GemmRows and pointwise_backward reading A / x through a ChannelMap equal them on the mapped matrix") {
    // The map (the previous layer's batch norm + ReLU6, whose activation is not stored)
    // applied as blocks are read must give the bits of the kernels run on the stored
    // mapped matrix (made by scale_shift, tested against the formula elsewhere).
    const int threads_before = typenet::max_threads();
    struct Shape {
        std::size_t rows, cin, cout;
    };
    for (const Shape s : {Shape{1, 3, 5}, Shape{301, 24, 144}, Shape{515, 96, 24}, Shape{777, 160, 17}}) {
        const auto x = naive::random(s.rows * s.cin, 21 + s.rows), w = naive::random(s.cin * s.cout, 22),
                   dy = naive::random(s.rows * s.cout, 23);
        auto scale = naive::random(s.cin, 24), shift = naive::random(s.cin, 25);
        for (auto& v : scale) v *= 8.0f;  // many values clamped at 0 and at 6
        for (auto& v : shift) v = 3.0f + 4.0f * v;
        const ChannelMap map{scale.data(), shift.data(), 0.0f, 6.0f};
        std::vector<float> xa(x.size());
        scale_shift(x.data(), s.rows, s.cin, scale.data(), shift.data(), xa.data(), 0.0f, 6.0f);
        INFO("rows " << s.rows << " cin " << s.cin << " cout " << s.cout);
        PackedMatrix wp, wt;
        wp.pack(Trans::No, s.cin, s.cout, w.data(), s.cout);
        wt.pack(Trans::Yes, s.cout, s.cin, w.data(), s.cout);
        // Forward rows, serial.
        std::vector<float> want(s.rows * s.cout), got(want.size()), ref(want.size());
        GemmRows(s.rows, xa.data(), s.cin, wp)(0, s.rows, want.data());
        GemmRows(s.rows, x.data(), s.cin, wp, &map)(0, s.rows, got.data());
        naive::gemm(false, false, s.rows, s.cout, s.cin, xa.data(), s.cin, w.data(), s.cout, ref.data(), s.cout);
        CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
        CHECK(naive::max_rel_error(got.data(), ref.data(), ref.size()) < tol(s.cin));
        // Backward on two threads with the same blocks: the weight gradient reads mapped x.
        typenet::set_num_threads(2);
        auto rows = [&](std::size_t r0, std::size_t r1, float* out, std::size_t ldo) {
            for (std::size_t i = r0; i < r1; ++i) std::memcpy(out + (i - r0) * ldo, dy.data() + i * s.cout, s.cout * 4);
        };
        std::vector<float> dw_want(s.cin * s.cout), dw_got(dw_want.size()), dx_want(x.size()), dx_got(x.size());
        pointwise_backward(s.rows, s.cin, s.cout, xa.data(), &wt, rows, dw_want.data(), dx_want.data(), 40);
        pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw_got.data(), dx_got.data(), 40, &map);
        CHECK(std::memcmp(dw_want.data(), dw_got.data(), dw_want.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dx_want.data(), dx_got.data(), dx_want.size() * sizeof(float)) == 0);
        // Default blocks (smaller when x is mapped): against the naive product.
        std::vector<float> dw_ref(dw_want.size());
        naive::gemm(true, false, s.cin, s.cout, s.rows, xa.data(), s.cin, dy.data(), s.cout, dw_ref.data(), s.cout);
        pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw_got.data(), nullptr, 0, &map);
        CHECK(naive::max_scaled_error(dw_got.data(), dw_ref.data(), dw_ref.size()) < tol(s.rows));
    }
    typenet::set_num_threads(threads_before);
}

TEST_CASE("pointwise_backward takes the preceding batch norm's backward sums from dX") {
    // dx_sums: sum g and sum g * (x - mean) * invstd over all rows, g = dX where the map's
    // clamp passes; against double sums over the naive dX with the same (float fma) mask.
    // dX itself must keep its bits (blocks staged, then copied; streamed when large).
    const int threads_before = typenet::max_threads();
    struct Shape {
        std::size_t rows, cin, cout;
    };
    for (const Shape s : {Shape{1, 3, 5}, Shape{301, 24, 144}, Shape{515, 96, 24}, Shape{777, 160, 17},
                          Shape{65536, 128, 24}}) {  // the last: dX of 32 MB, streamed out
        const auto x = naive::random(s.rows * s.cin, 31 + s.rows), w = naive::random(s.cin * s.cout, 32),
                   dy = naive::random(s.rows * s.cout, 33);
        auto scale = naive::random(s.cin, 34), shift = naive::random(s.cin, 35), mean = naive::random(s.cin, 36),
             invstd = naive::random(s.cin, 37);
        for (auto& v : scale) v *= 8.0f;
        for (auto& v : shift) v = 3.0f + 4.0f * v;
        for (auto& v : invstd) v = 0.5f + std::fabs(v);
        const ChannelMap map{scale.data(), shift.data(), 0.0f, 6.0f};
        PackedMatrix wt;
        wt.pack(Trans::Yes, s.cout, s.cin, w.data(), s.cout);
        auto rows = [&](std::size_t r0, std::size_t r1, float* out, std::size_t ldo) {
            for (std::size_t i = r0; i < r1; ++i) std::memcpy(out + (i - r0) * ldo, dy.data() + i * s.cout, s.cout * 4);
        };
        std::vector<float> ref(s.rows * s.cin);
        naive::gemm(false, true, s.rows, s.cin, s.cout, dy.data(), s.cout, w.data(), s.cout, ref.data(), s.cin);
        std::vector<double> want(2 * s.cin, 0.0), mag(2 * s.cin, 0.0);
        for (std::size_t r = 0; r < s.rows; ++r)
            for (std::size_t j = 0; j < s.cin; ++j) {
                const std::size_t i = r * s.cin + j;
                const float v = std::fma(x[i], scale[j], shift[j]);
                if (!(v > 0.0f && v < 6.0f)) continue;
                const double g = ref[i], xh = (double(x[i]) - mean[j]) * invstd[j];
                want[j] += g;
                want[s.cin + j] += g * xh;
                mag[j] += std::fabs(g);
                mag[s.cin + j] += std::fabs(g * xh);
            }
        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            INFO("rows " << s.rows << " cin " << s.cin << " cout " << s.cout << " threads " << threads);
            std::vector<float> dw_plain(s.cin * s.cout), dx_plain(x.size()), dw(dw_plain.size()), dx(x.size(), 1e30f);
            std::vector<double> sums(2 * s.cin, 1e300);
            const DxBatchNormSums ds{mean.data(), invstd.data(), sums.data()};
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw_plain.data(), dx_plain.data(), 0, &map);
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw.data(), dx.data(), 0, &map, &ds);
            CHECK(std::memcmp(dx_plain.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dw_plain.data(), dw.data(), dw.size() * sizeof(float)) == 0);
            double worst = 0;
            for (std::size_t k = 0; k < 2 * s.cin; ++k)
                worst = std::max(worst, std::fabs(sums[k] - want[k]) / (mag[k] + 1e-30));
            INFO("largest error relative to the sum of magnitudes: " << worst);
            CHECK(worst < 1e-5);
            // Without the weight gradient too (x still read for the sums).
            std::vector<double> sums2(2 * s.cin, 1e300);
            const DxBatchNormSums ds2{mean.data(), invstd.data(), sums2.data()};
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, nullptr, dx.data(), 0, &map, &ds2);
            CHECK(std::memcmp(dx_plain.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(sums.data(), sums2.data(), sums.size() * sizeof(double)) == 0);
        }
        // The sums need dX, the map and the statistics.
        std::vector<double> sums(2 * s.cin);
        const DxBatchNormSums ds{mean.data(), invstd.data(), sums.data()};
        std::vector<float> dx(x.size());
        CHECK_THROWS_AS(pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, nullptr, dx.data(), 0, nullptr, &ds),
                        typenet::shape_error);
        CHECK_THROWS_AS(pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, nullptr, nullptr, 0, &map, &ds),
                        typenet::shape_error);
    }
    typenet::set_num_threads(threads_before);
}

TEST_CASE("pointwise_backward masks dX by the clamp that made x (DxClamp)") {
    // x is the previous layer's ReLU6 output (values at and beyond both bounds among them):
    // dX must be the plain dX where 0 < x < 6 and zero elsewhere, bit for bit (blocks
    // masked in cache, and staged then streamed out when dX is large); dW unchanged up to
    // the rounding of the blocks.
    const int threads_before = typenet::max_threads();
    struct Shape {
        std::size_t rows, cin, cout;
    };
    for (const Shape s : {Shape{1, 3, 5}, Shape{301, 24, 144}, Shape{515, 96, 24}, Shape{777, 160, 17},
                          Shape{65536, 128, 24}}) {  // the last: dX of 32 MB, streamed out
        const auto x = naive::relu6_outputs(s.rows * s.cin, 41 + s.rows);
        const auto w = naive::random(s.cin * s.cout, 42), dy = naive::random(s.rows * s.cout, 43);
        PackedMatrix wt;
        wt.pack(Trans::Yes, s.cout, s.cin, w.data(), s.cout);
        auto rows = [&](std::size_t r0, std::size_t r1, float* out, std::size_t ldo) {
            for (std::size_t i = r0; i < r1; ++i) std::memcpy(out + (i - r0) * ldo, dy.data() + i * s.cout, s.cout * 4);
        };
        const DxClamp relu6{0.0f, 6.0f};
        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            INFO("rows " << s.rows << " cin " << s.cin << " cout " << s.cout << " threads " << threads);
            std::vector<float> dw_plain(s.cin * s.cout), want(x.size()), dw(dw_plain.size()), dx(x.size(), 1e30f);
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw_plain.data(), want.data());
            REQUIRE(naive::relu6_mask(x, want) > 0);
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dw.data(), dx.data(), 0, nullptr, nullptr,
                               &relu6);
            CHECK(std::memcmp(want.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(naive::max_scaled_error(dw.data(), dw_plain.data(), dw.size()) < tol(s.rows));
            std::fill(dx.begin(), dx.end(), 1e30f);
            pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, nullptr, dx.data(), 0, nullptr, nullptr,
                               &relu6);  // without dW: x read for the mask alone
            CHECK(std::memcmp(want.data(), dx.data(), dx.size() * sizeof(float)) == 0);
        }
        // The mask needs dX, and x itself (not read through a map).
        std::vector<float> dx(x.size()), ones(s.cin, 1.0f), zeros(s.cin, 0.0f);
        const ChannelMap map{ones.data(), zeros.data(), 0.0f, 6.0f};
        CHECK_THROWS_AS(pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, dx.data(), nullptr, 0, nullptr,
                                           nullptr, &relu6),
                        typenet::shape_error);
        CHECK_THROWS_AS(pointwise_backward(s.rows, s.cin, s.cout, x.data(), &wt, rows, nullptr, dx.data(), 0, &map,
                                           nullptr, &relu6),
                        typenet::shape_error);
    }
    typenet::set_num_threads(threads_before);
}

namespace {
// The problem of a 1x1 ConvBN of rows x cin -> cout (wanting dX, not dW).
BatchNormPointwiseBackward::Problem bn_problem(std::size_t rows, std::size_t cin, std::size_t cout, const float* x,
                                               const float* w, const PackedMatrix* wt, const float* z,
                                               const ChannelMap& act, const float* mean, const float* invstd,
                                               float* dx) {
    BatchNormPointwiseBackward::Problem p;
    p.rows = rows;
    p.cin = cin;
    p.cout = cout;
    p.x = x;
    p.w = w;
    p.wt = wt;
    p.z = z;
    p.act = act;
    p.mean = mean;
    p.invstd = invstd;
    p.dx = dx;
    return p;
}
// Largest |a - b| over the root mean square of the reference b.
double rms_error(const std::vector<float>& a, const std::vector<double>& b) {
    double q = 0, m = 0;
    for (double v : b) q += v * v;
    const double s = std::sqrt(q / double(b.size())) + 1e-30;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double d = std::abs(double(a[i]) - b[i]) / s;
        if (!(d <= m)) m = d;
    }
    return m;
}
}  // namespace

TEST_CASE("BatchNormPointwiseBackward: a 1x1 ConvBN's gradients from pushed rows, against double loops") {
    // Z = X W, batch statistics of Z, A = clamp(bn(Z), 0, 6), G the gradient of A handed
    // over row block by row block by two "threads" of "chunks" in chunk order, the sums
    // given at the end. Reference: the textbook backward in double (dZ = k Gm + m Z + b,
    // dW = X^T dZ, dX = dZ W^T + residual), with Gm masked by the same float fma. X is far
    // from zero mean (the centring must keep the float sums exact), awkward channel counts.
    struct Case {
        std::size_t rows, cin, cout, block, chunks;
        float xmean;
    };
    const int threads_before = typenet::max_threads();
    typenet::set_num_threads(2);
    for (const Case cs : {Case{37, 3, 5, 7, 3, 0.0f}, Case{300, 16, 96, 20, 7, 3.0f}, Case{515, 24, 17, 64, 4, -2.0f},
                          Case{96, 40, 24, 12, 8, 1.0f}, Case{200704, 16, 96, 112, 32, 3.0f}}) {
        const std::size_t R = cs.rows, ci = cs.cin, co = cs.cout;
        INFO("rows " << R << " cin " << ci << " cout " << co);
        auto x = naive::random(R * ci, 41 + R), w = naive::random(ci * co, 42), ga = naive::random(R * co, 43),
             gamma = naive::random(co, 44), beta = naive::random(co, 45), res = naive::random(R * ci, 46);
        for (auto& v : x) v += cs.xmean;
        for (auto& v : beta) v = 3.0f + 3.0f * v;  // a good share clamped at 0 and 6
        std::vector<float> z(R * co);
        naive::gemm(false, false, R, co, ci, x.data(), ci, w.data(), co, z.data(), co);
        std::vector<float> mean(co), invstd(co), scale(co), shift(co);
        for (std::size_t j = 0; j < co; ++j) {
            double s = 0, q = 0;
            for (std::size_t r = 0; r < R; ++r) s += z[r * co + j];
            const double mu = s / double(R);
            for (std::size_t r = 0; r < R; ++r) q += (z[r * co + j] - mu) * (z[r * co + j] - mu);
            mean[j] = float(mu);
            invstd[j] = float(1.0 / std::sqrt(q / double(R) + 1e-3));
            scale[j] = gamma[j] * invstd[j];
            shift[j] = beta[j] - mean[j] * scale[j];
        }
        // Reference, in double.
        std::vector<double> gm(R * co), sums(2 * co, 0.0);
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t j = 0; j < co; ++j) {
                const float v = std::fma(z[r * co + j], scale[j], shift[j]);
                const double g = (v > 0.0f && v < 6.0f) ? ga[r * co + j] : 0.0;
                gm[r * co + j] = g;
                sums[j] += g;
                sums[co + j] += g * (double(z[r * co + j]) - mean[j]) * invstd[j];
            }
        std::vector<double> dz(R * co), dw_ref(ci * co, 0.0), dx_ref(R * ci, 0.0);
        for (std::size_t j = 0; j < co; ++j) {
            const double k = double(gamma[j]) * invstd[j];
            const double m = -k * sums[co + j] / double(R) * invstd[j];
            const double b = -k * sums[j] / double(R) - m * mean[j];
            for (std::size_t r = 0; r < R; ++r) {
                double zd = 0;  // X W in double
                for (std::size_t i = 0; i < ci; ++i) zd += double(x[r * ci + i]) * w[i * co + j];
                dz[r * co + j] = k * gm[r * co + j] + m * zd + b;
            }
        }
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t i = 0; i < ci; ++i) {
                double sx = res[r * ci + i];
                for (std::size_t j = 0; j < co; ++j) {
                    dw_ref[i * co + j] += double(x[r * ci + i]) * dz[r * co + j];
                    sx += dz[r * co + j] * w[i * co + j];
                }
                dx_ref[r * ci + i] = sx;
            }
        PackedMatrix wt;
        wt.pack(Trans::Yes, co, ci, w.data(), co);
        auto run = [&](bool swap_threads, bool with_dw, bool with_dx, std::vector<float>& dw, std::vector<float>& dx) {
            BatchNormPointwiseBackward bk;
            BatchNormPointwiseBackward::Problem p =
                bn_problem(R, ci, co, x.data(), w.data(), &wt, z.data(), ChannelMap{scale.data(), shift.data(), 0.0f, 6.0f},
                           mean.data(), invstd.data(), with_dx ? dx.data() : nullptr);
            p.gamma = gamma.data();
            p.dw = with_dw ? dw.data() : nullptr;
            bk.begin(p, cs.chunks, cs.block);
            // Chunks own contiguous row ranges, made block by block in order; the chunks
            // themselves come in an interleaved order, from two workers.
            std::vector<float> rows(cs.block * co);
            for (std::size_t q0 = 0; q0 < cs.chunks; ++q0) {
                const std::size_t q = (q0 % 2) ? cs.chunks - 1 - q0 / 2 : q0 / 2;
                const std::size_t r0 = R * q / cs.chunks, r1 = R * (q + 1) / cs.chunks;
                for (std::size_t r = r0; r < r1; r += cs.block) {
                    const std::size_t n = std::min(cs.block, r1 - r);
                    std::memcpy(rows.data(), ga.data() + r * co, n * co * sizeof(float));
                    bk.consume(q, int((q + (swap_threads ? 1 : 0)) % 2), r, n, rows.data());
                }
            }
            bk.finish(sums.data(), with_dx ? res.data() : nullptr);
        };
        std::vector<float> dw(ci * co, 1e30f), dx(R * ci, 1e30f);
        run(false, true, true, dw, dx);
        const double ew = rms_error(dw, dw_ref), ex = rms_error(dx, dx_ref);
        // The textbook order in float for scale: dZ rounded to float (as a stored batch-norm
        // input gradient would be), then X^T dZ summed in double.
        std::vector<float> dzf(R * co), dw_textbook(ci * co);
        for (std::size_t j = 0; j < co; ++j) {
            const double k = double(gamma[j]) * invstd[j];
            const double m = -k * sums[co + j] / double(R) * invstd[j];
            const double b = -k * sums[j] / double(R) - m * mean[j];
            for (std::size_t r = 0; r < R; ++r)
                dzf[r * co + j] = std::fma(float(k), float(gm[r * co + j]), std::fma(float(m), z[r * co + j], float(b)));
        }
        {
            std::vector<double> acc(ci * co, 0.0);
            for (std::size_t r = 0; r < R; ++r)
                for (std::size_t i = 0; i < ci; ++i)
                    for (std::size_t j = 0; j < co; ++j) acc[i * co + j] += double(x[r * ci + i]) * dzf[r * co + j];
            for (std::size_t q = 0; q < ci * co; ++q) dw_textbook[q] = float(acc[q]);
        }
        const double e_textbook = rms_error(dw_textbook, dw_ref);
        MESSAGE("rows " << R << ": dW error " << ew << " (float dZ, textbook order: " << e_textbook << "), dX error "
                        << ex << " (of the reference's rms)");
        CHECK(ew < 5e-5);
        CHECK(ew < 4 * e_textbook + 2e-6);  // the reassociation costs little next to a float dZ
        CHECK(ex < 1e-5);
        // Other workers: the same bits. Either gradient alone: the same bits.
        std::vector<float> dw2(ci * co), dx2(R * ci), only_dw(ci * co), only_dx(R * ci);
        run(true, true, true, dw2, dx2);
        CHECK(std::memcmp(dw.data(), dw2.data(), dw.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dx.data(), dx2.data(), dx.size() * sizeof(float)) == 0);
        run(false, true, false, only_dw, dx2);
        run(false, false, true, dw2, only_dx);
        CHECK(std::memcmp(dw.data(), only_dw.data(), dw.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dx.data(), only_dx.data(), dx.size() * sizeof(float)) == 0);
    }
    typenet::set_num_threads(threads_before);
    // A packed W^T of the wrong shape is refused.
    std::vector<float> w(6, 1.0f), z(4 * 3, 0.0f), dx(8), one(3, 1.0f);
    PackedMatrix wrong;
    wrong.pack(Trans::Yes, 2, 3, w.data(), 2);
    BatchNormPointwiseBackward bk;
    BatchNormPointwiseBackward::Problem p = bn_problem(4, 2, 3, dx.data(), w.data(), &wrong, z.data(),
                                                       ChannelMap{one.data(), one.data(), 0.0f, 6.0f}, one.data(),
                                                       one.data(), dx.data());
    CHECK_THROWS_AS(bk.begin(p, 1, 4), typenet::shape_error);
    p.wt = nullptr;
    CHECK_THROWS_AS(bk.begin(p, 1, 4), typenet::shape_error);
}
