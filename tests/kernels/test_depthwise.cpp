// Depthwise convolution (forward with epilogue, input and weight gradients) against
// naive loops: channels that are not a multiple of the SIMD width, 1x1 / 7x7 /
// odd spatial sizes, stride 1 and 2 with SAME (even and odd input) and VALID
// padding, other kernel sizes, batch 1 and 3; thread-count determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/elementwise.hpp"

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

namespace {

/// depthwise_forward with `ep` equals, bit for bit, the same call accumulating onto zeros
/// (which keeps the one-column loop), and the naive loop within 1e-5.
void check_same_as_one_column_loop(const ConvGeometry& g, const std::vector<float>& x, const std::vector<float>& wt,
                                   const Epilogue& ep) {
    const std::size_t out = g.output_pixels() * g.c;
    std::vector<float> y(out, 7.0f), ref(out, 0.0f), naive_y(out);
    depthwise_forward(g, x.data(), wt.data(), y.data(), ep);
    Epilogue acc = ep;
    acc.accumulate = true;
    depthwise_forward(g, x.data(), wt.data(), ref.data(), acc);
    std::size_t diff = 0;
    for (std::size_t i = 0; i < out; ++i) diff += !(y[i] == ref[i]);
    CHECK(diff == 0);
    naive::depthwise_forward(g, x.data(), wt.data(), naive_y.data(), ep);
    CHECK(naive::max_rel_error(y.data(), naive_y.data(), out) < 1e-5);
}

}  // namespace

TEST_CASE("depthwise_forward: the column-blocked 3x3 interiors equal the one-column loop bit for bit") {
    // A 3x3 row sweep with a plain epilogue (bias, clamp) takes its interior columns four
    // at a time (stride 1 per channel vector with 32 registers, otherwise across all
    // channels per step, as stride 2);
    // with `accumulate` onto zeros it keeps the one-column loop. Both add the same taps
    // in the same order, so the values must agree exactly (0 + v is v, up to the sign of
    // a zero, which == ignores). Widths around the cut-off of eight interior columns and
    // with every remainder of the 4-column steps (taken by 2- and 1-column steps), SAME
    // borders on the left, the right or both (stride 2 on even and odd widths: the
    // blocked path computes them too), full and partial channel vectors, pairs of rows
    // and a last single row, with and without bias and clamp.
    std::uint64_t seed = 900;
    std::size_t blocked_shapes[3] = {0, 0, 0};  // by stride
    for (std::size_t s : {1, 2})
        for (std::size_t c : {5, 16, 20, 48})
            for (std::size_t w : {9, 10, 11, 12, 13, 18, 22, 25, 27})
                for (std::size_t h : {5, 6}) {
                    const auto g = ConvGeometry::same(c == 20 ? 2 : 1, h, w, c, 3, 3, s, s);
                    const detail::Interior in = detail::interior(g.w, 3, s, g.pad_left, g.ow);
                    blocked_shapes[s] += in.hi - in.lo >= 8;
                    auto x = naive::random(g.input_size(), seed++), wt = naive::random(9 * c, seed++);
                    auto bias = naive::random(c, seed++);
                    for (int clamp = 0; clamp < 2; ++clamp) {
                        Epilogue ep;
                        if (clamp) {
                            ep.bias = bias.data();
                            ep.lo = 0.0f;
                            ep.hi = 0.5f;
                        }
                        INFO(g.to_string() << " clamp " << clamp);
                        check_same_as_one_column_loop(g, x, wt, ep);
                    }
                }
    CHECK(blocked_shapes[1] > 0);
    CHECK(blocked_shapes[2] > 0);
}

TEST_CASE("depthwise, stride 1, data larger than L2: the channels-inside interior equals the one-column loop") {
    // With the input and output together larger than L2 (`dw_data_cold`), stride 1 takes
    // the channels-inside interior on every machine (with 32 registers it otherwise sweeps
    // one channel vector at a time). Same contract as above: the same bits as the
    // one-column loop (accumulate onto zeros), and the naive loop's values; the input
    // gradient of stride 1 runs through the same forward.
    const std::size_t per_image = 2 * 40 * 41 * 48 * sizeof(float);  // input + output
    const std::size_t n = l2_cache_bytes() / per_image + 1;
    const auto g = ConvGeometry::same(n, 40, 41, 48, 3, 3, 1, 1);
    REQUIRE(detail::dw_data_cold(g));
    auto x = naive::random(g.input_size(), 950), wt = naive::random(9 * g.c, 951), bias = naive::random(g.c, 952);
    Epilogue ep;
    ep.bias = bias.data();
    ep.lo = 0.0f;
    ep.hi = 0.5f;
    check_same_as_one_column_loop(g, x, wt, ep);
    auto dy = naive::random(g.output_pixels() * g.c, 953);
    std::vector<float> dx(g.input_size(), 123.0f), r(g.input_size());
    depthwise_backward_input(g, dy.data(), wt.data(), dx.data());
    naive::depthwise_backward_input(g, dy.data(), wt.data(), r.data());
    CHECK(naive::max_rel_error(dx.data(), r.data(), r.size()) < 1e-5);
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

TEST_CASE("depthwise_backward_produced: both gradients from produced rows, against the naive loops") {
    // The output gradient handed out by a producer that copies the rows asked for from a
    // stored tensor and counts them. Both gradients must match the naive loops, and, since
    // the fused kernel runs the same per-row code on the same values, equal the separate
    // kernels bit for bit, on one and two threads; either gradient can be skipped.
    const int threads_before = typenet::max_threads();
    auto gs = geometries();
    gs.push_back(ConvGeometry::same(4, 28, 28, 24, 3, 3, 1, 1));  // several chunks, bands
    gs.push_back(ConvGeometry::same(3, 37, 30, 40, 3, 3, 2, 2));  // odd height, chunks across images
    gs.push_back(ConvGeometry::same(2, 112, 112, 16, 3, 3, 1, 1));  // bands of 16 rows
    // Input gradients of 32 MB and more, stored non-temporally.
    gs.push_back(ConvGeometry::same(2, 128, 128, 256, 3, 3, 1, 1));
    gs.push_back(ConvGeometry::same(2, 128, 128, 256, 3, 3, 2, 2));
    double worst = 0;
    std::uint64_t seed = 3000;
    for (const auto& g : gs) {
        auto x = naive::random(g.input_size(), seed++), w = naive::random(g.kh * g.kw * g.c, seed++);
        auto dy = naive::random(g.output_pixels() * g.c, seed++);
        std::vector<float> rdx(g.input_size()), rdw(g.kh * g.kw * g.c), sdx(rdx.size()), sdw(rdw.size());
        naive::depthwise_backward_input(g, dy.data(), w.data(), rdx.data());
        naive::depthwise_backward_weight(g, x.data(), dy.data(), rdw.data());
        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            depthwise_backward_input(g, dy.data(), w.data(), sdx.data());
            depthwise_backward_weight(g, x.data(), dy.data(), sdw.data());
            std::vector<float> dx(rdx.size(), 123.0f), dw(rdw.size(), 5.0f);
            std::vector<int> made(g.n * g.oh, 0);
            const std::size_t rowlen = g.ow * g.c;
            auto rows = [&](std::size_t r0, std::size_t r1, float* out) {
                for (std::size_t r = r0; r < r1; ++r) ++made[r];
                std::memcpy(out, dy.data() + r0 * rowlen, (r1 - r0) * rowlen * sizeof(float));
            };
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw.data(), dx.data());
            std::size_t never = 0;
            for (int m : made) never += m == 0;
            INFO(describe(g) << ", " << threads << " thread(s)");
            CHECK(never == 0);  // rows at the edge of a band or chunk may be made twice, none never
            // The weight gradient: long sums (n * oh * ow products), measured against their
            // typical magnitude.
            worst = std::max({worst, naive::max_rel_error(dx.data(), rdx.data(), rdx.size()),
                              naive::max_scaled_error(dw.data(), rdw.data(), rdw.size())});
            CHECK(std::memcmp(dx.data(), sdx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dw.data(), sdw.data(), dw.size() * sizeof(float)) == 0);
            std::vector<float> only_dx(rdx.size(), 7.0f), only_dw(rdw.size(), 7.0f);
            depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, only_dx.data());
            depthwise_backward_produced(g, nullptr, w.data(), rows, nullptr, nullptr);  // nothing asked: nothing read
            depthwise_backward_produced(g, x.data(), w.data(), rows, only_dw.data(), nullptr);
            CHECK(std::memcmp(only_dx.data(), sdx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(only_dw.data(), sdw.data(), dw.size() * sizeof(float)) == 0);
        }
    }
    typenet::set_num_threads(threads_before);
    MESSAGE("depthwise_backward_produced: max relative error " << worst);
    CHECK(worst < 5e-6);
}

TEST_CASE("depthwise_backward_produced masks dx by the clamp that made x (DxClamp)") {
    // x is the previous layer's ReLU6 output (values at and beyond both bounds among them):
    // dx must be the plain dx where 0 < x < 6 and zero elsewhere, bit for bit (rows masked
    // as they are completed; staged then streamed out when dx is large); dw unchanged.
    const int threads_before = typenet::max_threads();
    auto gs = geometries();
    gs.push_back(ConvGeometry::same(3, 37, 30, 40, 3, 3, 2, 2));   // odd height, chunks across images
    gs.push_back(ConvGeometry::same(2, 128, 128, 256, 3, 3, 1, 1));  // dx of 32 MB, streamed
    gs.push_back(ConvGeometry::same(2, 128, 128, 256, 3, 3, 2, 2));
    std::uint64_t seed = 5000;
    const DxClamp relu6{0.0f, 6.0f};
    for (const auto& g : gs) {
        const auto x = naive::relu6_outputs(g.input_size(), seed++), w = naive::random(g.kh * g.kw * g.c, seed++);
        auto dy = naive::random(g.output_pixels() * g.c, seed++);
        const std::size_t rowlen = g.ow * g.c;
        auto rows = [&](std::size_t r0, std::size_t r1, float* out) {
            std::memcpy(out, dy.data() + r0 * rowlen, (r1 - r0) * rowlen * sizeof(float));
        };
        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            INFO(describe(g) << ", " << threads << " thread(s)");
            std::vector<float> want(g.input_size()), dw_plain(g.kh * g.kw * g.c), dx(want.size(), 1e30f),
                dw(dw_plain.size());
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw_plain.data(), want.data());
            REQUIRE(naive::relu6_mask(x, want) > 0);
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw.data(), dx.data(), nullptr, nullptr, nullptr,
                                        &relu6);
            CHECK(std::memcmp(want.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dw_plain.data(), dw.data(), dw.size() * sizeof(float)) == 0);
            std::fill(dx.begin(), dx.end(), 1e30f);
            depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, dx.data(), nullptr, nullptr, nullptr,
                                        &relu6);  // without dw: x read for the mask alone
            CHECK(std::memcmp(want.data(), dx.data(), dx.size() * sizeof(float)) == 0);
        }
        // The mask needs dx, and x itself (not read through a map).
        std::vector<float> dw(g.kh * g.kw * g.c), ones(g.c, 1.0f), zeros(g.c, 0.0f), dx(g.input_size());
        const ChannelMap map{ones.data(), zeros.data(), 0.0f, 6.0f};
        CHECK_THROWS_AS(depthwise_backward_produced(g, x.data(), w.data(), rows, dw.data(), nullptr, nullptr, nullptr,
                                                    nullptr, &relu6),
                        typenet::shape_error);
        CHECK_THROWS_AS(depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, dx.data(), &map, nullptr,
                                                    nullptr, &relu6),
                        typenet::shape_error);
    }
    typenet::set_num_threads(threads_before);
}

TEST_CASE("depthwise kernels reading their input through a ChannelMap equal them on the mapped input") {
    // The map (a batch norm + ReLU6 of the layer before) applied as the rows are read must
    // give the same bits as the kernels run on the stored mapped tensor.
    auto gs = geometries();
    gs.push_back(ConvGeometry::same(3, 37, 30, 40, 3, 3, 2, 2));
    gs.push_back(ConvGeometry::same(2, 29, 29, 24, 3, 3, 1, 1));
    std::uint64_t seed = 4000;
    for (const auto& g : gs) {
        auto x = naive::random(g.input_size(), seed++), w = naive::random(g.kh * g.kw * g.c, seed++);
        auto scale = naive::random(g.c, seed++), shift = naive::random(g.c, seed++);
        for (auto& v : scale) v *= 8.0f;  // many values clamped at 0 and at 6
        for (auto& v : shift) v = 3.0f + 4.0f * v;
        ChannelMap map{scale.data(), shift.data(), 0.0f, 6.0f};
        // The stored activation, as the layer before would have written it (scale_shift is
        // tested against the formula in test_elementwise.cpp).
        std::vector<float> xa(x.size());
        scale_shift(x.data(), g.n * g.h * g.w, g.c, scale.data(), shift.data(), xa.data(), 0.0f, 6.0f);
        INFO(describe(g));
        // Forward, serial (rows on demand).
        std::vector<float> want(g.output_pixels() * g.c), got(want.size(), 9.0f);
        depthwise_forward(g, xa.data(), w.data(), want.data());
        DepthwiseRows(g, x.data(), w.data(), &map)(0, g.n * g.oh, got.data());
        CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
        // Backward: the weight gradient reads the mapped input.
        auto dy = naive::random(g.output_pixels() * g.c, seed++);
        const std::size_t rowlen = g.ow * g.c;
        auto rows = [&](std::size_t r0, std::size_t r1, float* out) {
            std::memcpy(out, dy.data() + r0 * rowlen, (r1 - r0) * rowlen * sizeof(float));
        };
        std::vector<float> dw_want(g.kh * g.kw * g.c), dw_got(dw_want.size()), dx_want(g.input_size()),
            dx_got(g.input_size());
        depthwise_backward_produced(g, xa.data(), w.data(), rows, dw_want.data(), dx_want.data());
        depthwise_backward_produced(g, x.data(), w.data(), rows, dw_got.data(), dx_got.data(), &map);
        CHECK(std::memcmp(dw_want.data(), dw_got.data(), dw_want.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dx_want.data(), dx_got.data(), dx_want.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("depthwise_backward_produced takes the previous batch norm's backward sums from dx") {
    // dx_sums: sum g and sum g * (x - mean) * invstd over all rows of dx, g = dx where the
    // map's clamp passes; against double sums over the naive dx with the same (float fma)
    // mask. Both gradients keep their bits (rows staged, then streamed, when dx is large),
    // and the sums are the same bits on one and two threads (fixed chunks).
    const int threads_before = typenet::max_threads();
    std::vector<ConvGeometry> gs = {ConvGeometry::same(1, 7, 8, 17, 3, 3, 1, 1),
                                    ConvGeometry::same(3, 37, 30, 40, 3, 3, 2, 2),  // chunks across images
                                    ConvGeometry::same(4, 28, 28, 24, 3, 3, 1, 1),
                                    ConvGeometry::same(1, 9, 10, 20, 5, 5, 2, 2),
                                    ConvGeometry::valid(1, 9, 12, 19, 3, 5, 3, 2),
                                    // dx of 32 MB: streamed out through the per-thread row
                                    ConvGeometry::same(2, 128, 128, 256, 3, 3, 1, 1),
                                    ConvGeometry::same(2, 128, 128, 256, 3, 3, 2, 2)};
    std::uint64_t seed = 6000;
    for (const auto& g : gs) {
        const std::size_t C = g.c;
        auto x = naive::random(g.input_size(), seed++), w = naive::random(g.kh * g.kw * C, seed++);
        auto dy = naive::random(g.output_pixels() * C, seed++);
        auto scale = naive::random(C, seed++), shift = naive::random(C, seed++), mean = naive::random(C, seed++),
             invstd = naive::random(C, seed++);
        for (auto& v : scale) v *= 8.0f;  // many values clamped at 0 and at 6
        for (auto& v : shift) v = 3.0f + 4.0f * v;
        for (auto& v : invstd) v = 0.5f + std::fabs(v);
        const ChannelMap map{scale.data(), shift.data(), 0.0f, 6.0f};
        const std::size_t rowlen = g.ow * C;
        auto rows = [&](std::size_t r0, std::size_t r1, float* out) {
            std::memcpy(out, dy.data() + r0 * rowlen, (r1 - r0) * rowlen * sizeof(float));
        };
        std::vector<float> ref(g.input_size());
        naive::depthwise_backward_input(g, dy.data(), w.data(), ref.data());
        std::vector<double> want(2 * C, 0.0), mag(2 * C, 0.0);
        for (std::size_t i = 0; i < ref.size(); ++i) {
            const std::size_t j = i % C;
            const float v = std::fma(x[i], scale[j], shift[j]);
            if (!(v > 0.0f && v < 6.0f)) continue;
            const double gr = ref[i], xh = (double(x[i]) - mean[j]) * invstd[j];
            want[j] += gr;
            want[C + j] += gr * xh;
            mag[j] += std::fabs(gr);
            mag[C + j] += std::fabs(gr * xh);
        }
        std::vector<double> first;
        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            INFO(describe(g) << ", " << threads << " thread(s)");
            std::vector<float> dw_plain(g.kh * g.kw * C), dx_plain(g.input_size()), dw(dw_plain.size()),
                dx(g.input_size(), 1e30f);
            std::vector<double> sums(2 * C, 1e300);
            const DxBatchNormSums ds{mean.data(), invstd.data(), sums.data()};
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw_plain.data(), dx_plain.data(), &map);
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw.data(), dx.data(), &map, &ds);
            CHECK(std::memcmp(dx_plain.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dw_plain.data(), dw.data(), dw.size() * sizeof(float)) == 0);
            CHECK(naive::max_rel_error(dx.data(), ref.data(), ref.size()) < 5e-6);
            double worst = 0;
            for (std::size_t k = 0; k < 2 * C; ++k) worst = std::max(worst, std::fabs(sums[k] - want[k]) / (mag[k] + 1e-30));
            INFO("largest error relative to the sum of magnitudes: " << worst);
            CHECK(worst < 1e-5);
            if (first.empty()) first = sums;
            else CHECK(std::memcmp(first.data(), sums.data(), sums.size() * sizeof(double)) == 0);
            // Rows handed to a consumer instead of stored: each once, the stored bits, by
            // chunks in row order within a chunk, the same sums and weight gradient.
            struct Recorder final : RowConsumer {
                std::vector<float>* out;
                std::vector<int> seen;
                std::vector<std::size_t> last;  // per chunk: the next row it may hand over
                std::size_t c = 0, chunks = 0;
                bool ordered = true, in_range = true;
                void consume(std::size_t chunk, int thread, std::size_t r0, std::size_t n, float* rows) override {
                    if (chunk >= chunks || thread < 0 || thread >= typenet::max_threads()) {
                        in_range = false;
                        return;
                    }
                    if (r0 < last[chunk]) ordered = false;
                    last[chunk] = r0 + n;
                    for (std::size_t r = r0; r < r0 + n; ++r) ++seen[r];
                    std::memcpy(out->data() + r0 * c, rows, n * c * sizeof(float));
                }
            };
            std::vector<float> handed(g.input_size(), 1e30f), dw_handed(dw_plain.size());
            Recorder rec;
            rec.out = &handed;
            rec.c = C;
            rec.chunks = depthwise_backward_chunks(g);
            rec.seen.assign(g.n * g.h * g.w, 0);
            rec.last.assign(rec.chunks, 0);
            std::vector<double> sums3(2 * C, 1e300);
            const DxBatchNormSums ds3{mean.data(), invstd.data(), sums3.data()};
            depthwise_backward_produced(g, x.data(), w.data(), rows, dw_handed.data(), nullptr, &map, &ds3, &rec);
            CHECK(rec.in_range);
            CHECK(rec.ordered);
            CHECK(std::count(rec.seen.begin(), rec.seen.end(), 1) == std::ptrdiff_t(rec.seen.size()));
            CHECK(std::memcmp(dx_plain.data(), handed.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dw_plain.data(), dw_handed.data(), dw.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(sums.data(), sums3.data(), sums.size() * sizeof(double)) == 0);
            CHECK_THROWS_AS(
                depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, dx.data(), &map, &ds3, &rec),
                typenet::shape_error);  // stored and handed over: one or the other
            // Without the weight gradient (x still read for the sums).
            std::vector<double> sums2(2 * C, 1e300);
            const DxBatchNormSums ds2{mean.data(), invstd.data(), sums2.data()};
            depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, dx.data(), &map, &ds2);
            CHECK(std::memcmp(dx_plain.data(), dx.data(), dx.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(sums.data(), sums2.data(), sums.size() * sizeof(double)) == 0);
        }
        // The sums need dx, the map (with its scale and shift) and x.
        std::vector<double> sums(2 * C);
        const DxBatchNormSums ds{mean.data(), invstd.data(), sums.data()};
        std::vector<float> dx(g.input_size());
        CHECK_THROWS_AS(depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, dx.data(), nullptr, &ds),
                        typenet::shape_error);
        CHECK_THROWS_AS(depthwise_backward_produced(g, x.data(), w.data(), rows, nullptr, nullptr, &map, &ds),
                        typenet::shape_error);
        CHECK_THROWS_AS(depthwise_backward_produced(g, nullptr, w.data(), rows, nullptr, dx.data(), &map, &ds),
                        typenet::shape_error);
    }
    typenet::set_num_threads(threads_before);
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
