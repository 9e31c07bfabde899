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
