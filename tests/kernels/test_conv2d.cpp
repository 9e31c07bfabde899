// Full convolution (forward with epilogue, input and weight gradients) against naive
// loops: the MobileNetV2 stem shape (3x3 stride 2, 3 -> 32, even input), odd inputs,
// VALID, 1x1 pointwise and strided 1x1, other kernel sizes, awkward channel counts.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/conv2d.hpp"

using namespace typenet::kernels;

namespace {

struct ConvCase {
    ConvGeometry g;
    std::size_t cout;
};

std::vector<ConvCase> cases() {
    return {
        {ConvGeometry::same(2, 32, 32, 3, 3, 3, 2, 2), 32},   // the stem, small image
        {ConvGeometry::same(1, 15, 13, 3, 3, 3, 2, 2), 32},   // stem, odd input
        {ConvGeometry::same(2, 7, 7, 17, 3, 3, 1, 1), 33},
        {ConvGeometry::valid(1, 9, 8, 7, 3, 3, 2, 2), 5},
        {ConvGeometry::same(3, 6, 6, 16, 1, 1, 1, 1), 24},    // pointwise: plain gemm
        {ConvGeometry::same(1, 9, 9, 7, 1, 1, 2, 2), 9},      // strided 1x1
        {ConvGeometry::same(1, 11, 10, 3, 5, 5, 1, 2), 7},
        {ConvGeometry::valid(2, 7, 7, 4, 7, 7, 1, 1), 3},     // 7x7 kernel, 1x1 output
        {ConvGeometry::same(1, 1, 1, 33, 3, 3, 1, 1), 1},     // 1x1 input
        {ConvGeometry::same(1, 12, 12, 48, 3, 3, 1, 1), 64},  // K > one cache block chunk
        // Few input channels: the direct kernel (conv_direct.hpp) where the output
        // channels fit in 4 vectors, im2col otherwise (e.g. 32 channels on SSE2).
        {ConvGeometry::same(1, 9, 21, 1, 3, 3, 1, 1), 5},     // 1 channel, partial vector
        {ConvGeometry::same(2, 10, 11, 4, 3, 3, 2, 2), 40},   // 3 vectors on AVX-512, odd widths
        {ConvGeometry::same(1, 13, 17, 3, 3, 3, 2, 2), 64},   // 4 vectors on AVX-512
        {ConvGeometry::same(1, 10, 14, 3, 3, 3, 2, 2), 27},   // 4 vectors on AVX2 (two groups), the last partial
        {ConvGeometry::same(1, 8, 19, 2, 5, 5, 1, 1), 17},    // 5x5 window of 50 values
        {ConvGeometry::valid(1, 11, 30, 3, 3, 3, 2, 2), 32},  // valid, tiles past the row end
        {ConvGeometry::same(1, 6, 6, 3, 1, 1, 1, 1), 16},     // pointwise with 3 channels
    };
}

double tol(std::size_t K) { return 1e-6 * (std::sqrt(double(K)) + 2.0); }

}  // namespace

TEST_CASE("conv2d_forward matches the naive loop, with every epilogue part") {
    std::uint64_t seed = 1;
    for (const auto& [g, cout] : cases()) {
        const std::size_t out = g.output_pixels() * cout, K = g.kh * g.kw * g.c;
        auto x = naive::random(g.input_size(), seed++), w = naive::random(K * cout, seed++);
        auto bias = naive::random(cout, seed++), res = naive::random(out, seed++), y0 = naive::random(out, seed++);
        double worst = 0;
        for (int mask = 0; mask < 4; ++mask) {
            Epilogue ep;
            if (mask & 1) {
                ep.bias = bias.data();
                ep.lo = 0.0f;
                ep.hi = 1.5f;
            }
            if (mask & 2) {
                ep.residual = res.data();
                ep.accumulate = true;
            }
            std::vector<float> y = y0, r = y0;
            conv2d_forward(g, cout, x.data(), w.data(), y.data(), ep);
            naive::conv2d_forward(g, cout, x.data(), w.data(), r.data(), ep);
            worst = std::max(worst, naive::max_rel_error(y.data(), r.data(), out));
        }
        MESSAGE(g.to_string() << " cout " << cout << ": max rel err " << worst);
        CHECK(worst < tol(K));
    }
}

TEST_CASE("conv2d_backward_input matches the naive loop") {
    std::uint64_t seed = 100;
    for (const auto& [g, cout] : cases()) {
        const std::size_t K = g.kh * g.kw * g.c;
        auto dy = naive::random(g.output_pixels() * cout, seed++), w = naive::random(K * cout, seed++);
        std::vector<float> dx(g.input_size(), 7.0f), r(g.input_size());
        conv2d_backward_input(g, cout, dy.data(), w.data(), dx.data());
        naive::conv2d_backward_input(g, cout, dy.data(), w.data(), r.data());
        const double e = naive::max_rel_error(dx.data(), r.data(), r.size());
        MESSAGE(g.to_string() << " cout " << cout << ": rel err " << e);
        CHECK(e < tol(cout * g.kh * g.kw));
    }
}

TEST_CASE("conv2d_backward_weight matches the naive loop") {
    std::uint64_t seed = 200;
    auto cs = cases();
    cs.push_back({ConvGeometry::same(4, 40, 40, 3, 3, 3, 2, 2), 32});  // many pixel chunks
    for (const auto& [g, cout] : cs) {
        const std::size_t K = g.kh * g.kw * g.c;
        auto x = naive::random(g.input_size(), seed++), dy = naive::random(g.output_pixels() * cout, seed++);
        std::vector<float> dw(K * cout, 3.0f), r(K * cout);
        conv2d_backward_weight(g, cout, x.data(), dy.data(), dw.data());
        naive::conv2d_backward_weight(g, cout, x.data(), dy.data(), r.data());
        double e = naive::max_rel_error(dw.data(), r.data(), r.size());
        std::vector<float> acc(K * cout, 1.0f);
        conv2d_backward_weight(g, cout, x.data(), dy.data(), acc.data(), true);
        for (auto& v : r) v += 1.0f;
        e = std::max(e, naive::max_rel_error(acc.data(), r.data(), r.size()));
        MESSAGE(g.to_string() << " cout " << cout << ": rel err " << e);
        CHECK(e < tol(g.output_pixels()));
    }
}

TEST_CASE("conv2d_backward_weight_produced: rows made on demand, the stored form's bits") {
    // The output gradient handed out a row at a time by a producer that copies the row
    // asked for and counts it: every row made exactly once, the weight gradient equal to the
    // stored form's bit for bit (same per-row code on the same values), with and without the
    // input map, on 1 and 2 threads; a convolution that is not on the direct kernel is refused.
    const int threads_before = typenet::max_threads();
    const InputMap m{2.0f, -1.0f};
    std::uint64_t seed = 700;
    std::size_t tried = 0;
    for (const auto& [g, cout] : cases()) {
        if (!conv_direct_eligible(g, cout)) continue;
        ++tried;
        const std::size_t K = g.kh * g.kw * g.c, rowlen = g.ow * cout;
        auto x = naive::random(g.input_size(), seed++), dy = naive::random(g.output_pixels() * cout, seed++);
        for (int threads : {1, 2})
            for (const InputMap& map : {InputMap{}, m}) {
                typenet::set_num_threads(threads);
                std::vector<float> want(K * cout), got(K * cout, 5.0f);
                conv2d_backward_weight(g, cout, x.data(), dy.data(), want.data(), false, map);
                std::vector<int> made(g.n * g.oh, 0);
                conv2d_backward_weight_produced(
                    g, cout, x.data(),
                    [&](std::size_t r, float* out) {
                        ++made[r];
                        std::memcpy(out, dy.data() + r * rowlen, rowlen * sizeof(float));
                    },
                    got.data(), map);
                std::size_t wrong = 0;
                for (int v : made) wrong += v != 1;
                INFO(g.to_string() << " cout " << cout << ", " << threads << " thread(s)");
                CHECK(wrong == 0);
                CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
            }
    }
    CHECK(tried >= 2);  // on every vector width (SSE2: at most 16 output channels)
    typenet::set_num_threads(threads_before);
    const ConvGeometry wide = ConvGeometry::same(1, 8, 8, 16, 3, 3, 1, 1);  // 16 input channels: im2col
    std::vector<float> x(wide.input_size()), dw(9 * 16 * 8);
    auto never = [](std::size_t, float*) { FAIL("no row to make"); };
    CHECK_THROWS_AS(conv2d_backward_weight_produced(wide, 8, x.data(), never, dw.data()), typenet::shape_error);
}

TEST_CASE("conv2d with an input map equals the convolution of the mapped input") {
    // x * 2 - 1 read inside the convolution (MobileNetV2's rescaling) against the naive
    // convolution of the rescaled input: the padding must stay zero after the map.
    const InputMap m{2.0f, -1.0f};
    std::uint64_t seed = 300;
    for (const auto& [g, cout] : cases()) {
        const std::size_t K = g.kh * g.kw * g.c, out = g.output_pixels() * cout;
        auto x = naive::random(g.input_size(), seed++), w = naive::random(K * cout, seed++);
        auto dy = naive::random(out, seed++), bias = naive::random(cout, seed++);
        std::vector<float> xm(x);
        for (auto& v : xm) v = v * m.scale + m.offset;
        Epilogue ep;
        ep.bias = bias.data();
        std::vector<float> y(out), r(out);
        conv2d_forward(g, cout, x.data(), w.data(), y.data(), ep, m);
        naive::conv2d_forward(g, cout, xm.data(), w.data(), r.data(), ep);
        const double ef = naive::max_rel_error(y.data(), r.data(), out);
        std::vector<float> dw(K * cout), rw(K * cout);
        conv2d_backward_weight(g, cout, x.data(), dy.data(), dw.data(), false, m);
        naive::conv2d_backward_weight(g, cout, xm.data(), dy.data(), rw.data());
        const double ew = naive::max_rel_error(dw.data(), rw.data(), rw.size());
        std::vector<float> dx(g.input_size()), rx(g.input_size());
        conv2d_backward_input(g, cout, dy.data(), w.data(), dx.data(), m);
        naive::conv2d_backward_input(g, cout, dy.data(), w.data(), rx.data());
        for (auto& v : rx) v *= m.scale;  // d(x * s + o) / dx = s
        const double ex = naive::max_rel_error(dx.data(), rx.data(), rx.size());
        MESSAGE(g.to_string() << " cout " << cout << ": forward " << ef << ", weight " << ew << ", input " << ex);
        CHECK(ef < tol(K));
        CHECK(ew < tol(g.output_pixels()));
        CHECK(ex < tol(cout * g.kh * g.kw));
    }
}

TEST_CASE("conv2d: bit-identical across runs, 1 vs 2 threads close") {
    const auto g = ConvGeometry::same(2, 48, 48, 3, 3, 3, 2, 2);
    const std::size_t cout = 32, K = 27;
    auto x = naive::random(g.input_size(), 1), w = naive::random(K * cout, 2);
    auto dy = naive::random(g.output_pixels() * cout, 3);
    auto run = [&](int threads) {
        typenet::set_num_threads(threads);
        std::vector<float> y(g.output_pixels() * cout), dx(g.input_size()), dw(K * cout);
        conv2d_forward(g, cout, x.data(), w.data(), y.data());
        conv2d_backward_input(g, cout, dy.data(), w.data(), dx.data());
        conv2d_backward_weight(g, cout, x.data(), dy.data(), dw.data());
        y.insert(y.end(), dx.begin(), dx.end());
        y.insert(y.end(), dw.begin(), dw.end());
        return y;
    };
    const auto a = run(2), b = run(2), c = run(1);
    typenet::set_num_threads(2);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    const double e = naive::max_rel_error(c.data(), a.data(), a.size());
    MESSAGE("1 vs 2 threads: rel diff " << e);
    CHECK(e < tol(g.output_pixels()));
}

TEST_CASE("conv2d rejects bad arguments") {
    std::vector<float> buf(4096);
    const auto g = ConvGeometry::same(1, 4, 4, 3, 3, 3, 1, 1);
    CHECK_THROWS_AS(conv2d_forward(g, 0, buf.data(), buf.data(), buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(conv2d_forward(g, 4, buf.data(), nullptr, buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(conv2d_backward_input(g, 4, nullptr, buf.data(), buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(conv2d_backward_weight(g, 4, buf.data(), buf.data(), nullptr), typenet::shape_error);
    // The direct kernel's own entry points refuse what it cannot run (conv2d_* pick
    // another kernel for these) instead of writing past its buffers.
    const auto wide = ConvGeometry::same(1, 4, 4, 8, 3, 3, 1, 1);  // 8 input channels
    REQUIRE_FALSE(conv_direct_eligible(wide, 4));
    CHECK_THROWS_AS(conv_direct_forward(wide, 4, buf.data(), buf.data(), buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(conv_direct_backward_weight(wide, 4, buf.data(), buf.data(), buf.data()), typenet::shape_error);
    const std::size_t too_many = detail::direct_max_nv * simd_width + 1;  // output channels past 4 vectors
    REQUIRE_FALSE(conv_direct_eligible(g, too_many));
    std::vector<float> big(too_many * 27 + 16 * too_many);
    CHECK_THROWS_AS(conv_direct_forward(g, too_many, buf.data(), big.data(), big.data()), typenet::shape_error);
    CHECK(conv_direct_eligible(g, 4));
}
