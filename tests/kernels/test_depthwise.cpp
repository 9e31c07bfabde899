// Depthwise convolution (forward with epilogue, input and weight gradients) against
// naive loops: channels that are not a multiple of the SIMD width, 1x1 / 7x7 /
// odd spatial sizes, stride 1 and 2 with SAME (even and odd input) and VALID
// padding, other kernel sizes, batch 1 and 3; thread-count determinism.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/depthwise.hpp"

using namespace typenet::kernels;

namespace {

std::vector<ConvGeometry> geometries() {
    std::vector<ConvGeometry> gs;
    for (std::size_t c : {1, 3, 7, 17, 33})
        for (std::size_t hw : {1, 2, 7, 8, 11})
            for (std::size_t s : {1, 2}) {
                gs.push_back(ConvGeometry::same(c == 7 ? 3 : 1, hw, hw + (c % 2), c, 3, 3, s, s));
                if (hw >= 3) gs.push_back(ConvGeometry::valid(1, hw, hw, c, 3, 3, s, s));
            }
    // MobileNetV2-like channel counts, other kernel sizes and strides.
    gs.push_back(ConvGeometry::same(2, 14, 14, 96, 3, 3, 2, 2));
    gs.push_back(ConvGeometry::same(1, 7, 7, 160, 3, 3, 1, 1));
    gs.push_back(ConvGeometry::same(1, 9, 10, 20, 5, 5, 1, 1));
    gs.push_back(ConvGeometry::same(2, 9, 10, 20, 5, 5, 2, 2));
    gs.push_back(ConvGeometry::same(1, 8, 9, 5, 1, 1, 1, 1));
    gs.push_back(ConvGeometry::same(1, 9, 9, 5, 2, 2, 2, 2));
    gs.push_back(ConvGeometry::valid(1, 9, 12, 19, 3, 5, 3, 2));
    gs.push_back(ConvGeometry::same(1, 13, 6, 4, 7, 3, 3, 1));
    return gs;
}

std::string describe(const ConvGeometry& g) { return g.to_string(); }

}  // namespace

TEST_CASE("depthwise_forward matches the naive loop, with every epilogue part") {
    double worst = 0;
    std::uint64_t seed = 1;
    for (const auto& g : geometries()) {
        const std::size_t out = g.output_pixels() * g.c;
        auto x = naive::random(g.input_size(), seed++), w = naive::random(g.kh * g.kw * g.c, seed++);
        auto bias = naive::random(g.c, seed++), res = naive::random(out, seed++), y0 = naive::random(out, seed++);
        for (int mask = 0; mask < 4; ++mask) {
            Epilogue ep;
            if (mask & 1) {
                ep.bias = bias.data();
                ep.lo = 0.0f;
                ep.hi = 0.6f;
            }
            if (mask & 2) {
                ep.residual = res.data();
                ep.accumulate = true;
            }
            std::vector<float> y = y0, r = y0;
            depthwise_forward(g, x.data(), w.data(), y.data(), ep);
            naive::depthwise_forward(g, x.data(), w.data(), r.data(), ep);
            const double e = naive::max_rel_error(y.data(), r.data(), out);
            if (e > 1e-5) MESSAGE(describe(g) << " mask " << mask << ": err " << e);
            worst = std::max(worst, e);
        }
    }
    MESSAGE("depthwise_forward: max relative error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("depthwise_backward_input matches the naive loop") {
    double worst = 0;
    std::uint64_t seed = 1000;
    for (const auto& g : geometries()) {
        auto dy = naive::random(g.output_pixels() * g.c, seed++), w = naive::random(g.kh * g.kw * g.c, seed++);
        std::vector<float> dx(g.input_size(), 123.0f), r(g.input_size());
        depthwise_backward_input(g, dy.data(), w.data(), dx.data());
        naive::depthwise_backward_input(g, dy.data(), w.data(), r.data());
        const double e = naive::max_rel_error(dx.data(), r.data(), r.size());
        if (e > 1e-5) MESSAGE(describe(g) << ": err " << e);
        worst = std::max(worst, e);
    }
    MESSAGE("depthwise_backward_input: max relative error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("depthwise_backward_weight matches the naive loop") {
    double worst = 0;
    std::uint64_t seed = 2000;
    auto gs = geometries();
    gs.push_back(ConvGeometry::same(4, 28, 28, 24, 3, 3, 1, 1));  // several chunks
    for (const auto& g : gs) {
        auto x = naive::random(g.input_size(), seed++), dy = naive::random(g.output_pixels() * g.c, seed++);
        std::vector<float> dw(g.kh * g.kw * g.c, 5.0f), r(dw.size());
        depthwise_backward_weight(g, x.data(), dy.data(), dw.data());
        naive::depthwise_backward_weight(g, x.data(), dy.data(), r.data());
        const double e = naive::max_rel_error(dw.data(), r.data(), r.size());
        if (e > 2e-5) MESSAGE(describe(g) << ": err " << e);
        worst = std::max(worst, e);
        // accumulate adds to the existing gradient
        std::vector<float> acc(dw.size(), 1.0f);
        depthwise_backward_weight(g, x.data(), dy.data(), acc.data(), true);
        for (auto& v : r) v += 1.0f;
        worst = std::max(worst, naive::max_rel_error(acc.data(), r.data(), r.size()));
    }
    MESSAGE("depthwise_backward_weight: max relative error " << worst);
    CHECK(worst < 2e-5);
}

TEST_CASE("depthwise kernels: bit-identical across runs and thread counts") {
    const auto g = ConvGeometry::same(3, 30, 30, 40, 3, 3, 2, 2);
    auto x = naive::random(g.input_size(), 5), w = naive::random(9 * g.c, 6);
    auto dy = naive::random(g.output_pixels() * g.c, 7);
    auto run = [&](int threads) {
        typenet::set_num_threads(threads);
        std::vector<float> y(g.output_pixels() * g.c), dx(g.input_size()), dw(9 * g.c);
        depthwise_forward(g, x.data(), w.data(), y.data());
        depthwise_backward_input(g, dy.data(), w.data(), dx.data());
        depthwise_backward_weight(g, x.data(), dy.data(), dw.data());
        y.insert(y.end(), dx.begin(), dx.end());
        y.insert(y.end(), dw.begin(), dw.end());
        return y;
    };
    const auto a = run(2), b = run(2), c = run(1);
    typenet::set_num_threads(2);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // Every output is computed by one thread in a fixed order, and the weight gradient
    // sums fixed chunks: even 1 and 2 threads agree exactly.
    CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("depthwise kernels reject bad geometry and null pointers") {
    std::vector<float> buf(1000);
    ConvGeometry bad{1, 4, 4, 3, 3, 3, 1, 1, 0, 0, 0, 4};  // oh == 0
    CHECK_THROWS_AS(depthwise_forward(bad, buf.data(), buf.data(), buf.data()), typenet::shape_error);
    const auto g = ConvGeometry::same(1, 4, 4, 3, 3, 3, 1, 1);
    CHECK_THROWS_AS(depthwise_forward(g, nullptr, buf.data(), buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(depthwise_backward_input(g, buf.data(), nullptr, buf.data()), typenet::shape_error);
    CHECK_THROWS_AS(depthwise_backward_weight(g, buf.data(), buf.data(), nullptr), typenet::shape_error);
}
