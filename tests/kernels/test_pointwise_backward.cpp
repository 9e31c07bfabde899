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

TEST_CASE("pointwise_backward: no rows gives a zero weight gradient; a mismatched W^T is refused") {
    std::vector<float> dw(6, 1.0f), w(6, 1.0f);
    auto never = [](std::size_t, std::size_t, float*, std::size_t) { FAIL("no rows to produce"); };
    pointwise_backward(0, 2, 3, nullptr, nullptr, never, dw.data(), nullptr);
    for (float v : dw) CHECK(v == 0.0f);
    PackedMatrix wrong;
    wrong.pack(Trans::Yes, 2, 3, w.data(), 2);  // 2 x 3: W^T of a 3 -> 2 layer, not 2 -> 3
    std::vector<float> dx(8);
    CHECK_THROWS_AS(pointwise_backward(4, 2, 3, w.data(), &wrong, never, nullptr, dx.data()), typenet::shape_error);
    CHECK_THROWS_AS(pointwise_backward(4, 2, 3, w.data(), nullptr, never, nullptr, dx.data()), typenet::shape_error);
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
