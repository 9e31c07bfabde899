// The fused training forward of an expansion and a depthwise layer against the naive
// loops: E = X We, A = clamp(E * scale + shift, 0, 6), D = depthwise(A), D's batch
// statistics; strides 1 and 2, even and odd sizes, channels off the SIMD width, several
// bands per image, the streamed (large) case; thread-count independence; refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/kernels/expand_depthwise.hpp"

using namespace typenet::kernels;

namespace {

struct Case {
    std::size_t n, h, w, cin, cexp, stride;
};

struct Result {
    std::vector<float> ze, zd, mean, var;
};

Result run_fused(const ConvGeometry& g, std::size_t cin, const std::vector<float>& x, const std::vector<float>& we,
                 const std::vector<float>& scale, const std::vector<float>& shift, const std::vector<float>& wd) {
    PackedMatrix pw;
    pw.pack(Trans::No, cin, g.c, we.data(), g.c);
    Result r;
    r.ze.assign(g.n * g.h * g.w * g.c, -1.0f);
    r.zd.assign(g.output_pixels() * g.c, -1.0f);
    r.mean.resize(g.c);
    r.var.resize(g.c);
    const ChannelMap map{scale.data(), shift.data(), 0.0f, 6.0f};
    expand_depthwise_forward(g, cin, x.data(), pw, map, wd.data(), r.ze.data(), r.zd.data(), r.mean.data(),
                             r.var.data());
    return r;
}

void check_case(const Case& k) {
    CAPTURE(k.n);
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.cin);
    CAPTURE(k.cexp);
    CAPTURE(k.stride);
    const ConvGeometry g = ConvGeometry::same(k.n, k.h, k.w, k.cexp, 3, 3, k.stride, k.stride);
    const std::vector<float> x = naive::random(k.n * k.h * k.w * k.cin, 1), we = naive::random(k.cin * k.cexp, 2),
                             wd = naive::random(9 * k.cexp, 3);
    // A map that puts part of E below 0 and part above 6 (both clamps matter).
    std::vector<float> scale = naive::random(k.cexp, 4), shift = naive::random(k.cexp, 5);
    for (std::size_t j = 0; j < k.cexp; ++j) {
        scale[j] = 2.0f + 2.0f * scale[j];
        shift[j] = 3.0f + 3.0f * shift[j];
    }
    const Result r = run_fused(g, k.cin, x, we, scale, shift, wd);

    // The naive chain.
    const std::size_t rows = k.n * k.h * k.w;
    std::vector<float> e(rows * k.cexp), a(rows * k.cexp), d(g.output_pixels() * k.cexp);
    naive::gemm(false, false, rows, k.cexp, k.cin, x.data(), k.cin, we.data(), k.cexp, e.data(), k.cexp);
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < k.cexp; ++j)
            a[i * k.cexp + j] = std::min(6.0f, std::max(0.0f, std::fma(e[i * k.cexp + j], scale[j], shift[j])));
    naive::depthwise_forward(g, a.data(), wd.data(), d.data());
    CHECK(naive::max_scaled_error(r.ze.data(), e.data(), e.size()) < 1e-5);
    CHECK(naive::max_scaled_error(r.zd.data(), d.data(), d.size()) < 1e-4);
    const std::size_t m = g.output_pixels();
    for (std::size_t j = 0; j < k.cexp; ++j) {
        double mu = 0, v = 0;
        for (std::size_t i = 0; i < m; ++i) mu += d[i * k.cexp + j];
        mu /= double(m);
        for (std::size_t i = 0; i < m; ++i) v += (d[i * k.cexp + j] - mu) * (d[i * k.cexp + j] - mu);
        v /= double(m);
        CHECK(std::abs(r.mean[j] - mu) < 1e-4 * (1.0 + std::sqrt(v)));
        CHECK(std::abs(r.var[j] - v) < 1e-4 * (v + 1e-3));
    }
}

}  // namespace

TEST_CASE("expand_depthwise_forward matches the naive loops") {
    for (const Case& k : {Case{3, 9, 11, 5, 21, 1}, Case{2, 10, 12, 8, 48, 2}, Case{2, 9, 9, 7, 24, 2},
                          Case{1, 1, 1, 3, 16, 1}, Case{2, 2, 3, 4, 19, 2},
                          // Many bands per image (rows of 112 x 96 floats), both strides.
                          Case{2, 40, 112, 16, 96, 2}, Case{2, 30, 56, 24, 144, 1}})
        check_case(k);
}

TEST_CASE("expand_depthwise_forward: large outputs, written with non-temporal stores") {
    // 8 x 112 x 112 x 96 floats (38 MB, past the streaming threshold), MobileNetV2's block 1.
    check_case(Case{8, 112, 112, 16, 96, 2});
}

TEST_CASE("expand_depthwise_forward: the same bits for 1 and 2 threads") {
    const ConvGeometry g = ConvGeometry::same(3, 20, 20, 40, 3, 3, 1, 1);
    const std::size_t cin = 12;
    const std::vector<float> x = naive::random(3 * 20 * 20 * cin, 7), we = naive::random(cin * 40, 8),
                             wd = naive::random(9 * 40, 9), scale = naive::random(40, 10), shift = naive::random(40, 11);
    typenet::set_num_threads(1);
    const Result a = run_fused(g, cin, x, we, scale, shift, wd);
    typenet::set_num_threads(2);
    const Result b = run_fused(g, cin, x, we, scale, shift, wd);
    CHECK(a.ze == b.ze);
    CHECK(a.zd == b.zd);
    CHECK(a.mean == b.mean);
    CHECK(a.var == b.var);
}

TEST_CASE("expand_depthwise_forward refuses what it cannot compute") {
    const std::vector<float> x(2 * 8 * 8 * 4, 0.5f), we(4 * 16, 0.1f), wd(9 * 16, 0.1f), s(16, 1.0f), t(16, 0.0f);
    // VALID stride 2 on an even size: the last input row is in no window.
    CHECK_FALSE(expand_depthwise_fusable(ConvGeometry::valid(2, 8, 8, 16, 3, 3, 2, 2)));
    CHECK(expand_depthwise_fusable(ConvGeometry::same(2, 8, 8, 16, 3, 3, 2, 2)));
    CHECK_THROWS_AS(run_fused(ConvGeometry::valid(2, 8, 8, 16, 3, 3, 2, 2), 4, x, we, s, t, wd), typenet::shape_error);
    // Weights packed for other channel counts (5 inputs instead of 4).
    const std::vector<float> we5(5 * 16, 0.1f);
    PackedMatrix pw;
    pw.pack(Trans::No, 5, 16, we5.data(), 16);
    std::vector<float> ze(2 * 8 * 8 * 16), zd(ze.size()), mean(16), var(16);
    const ChannelMap map{s.data(), t.data(), 0.0f, 6.0f};
    CHECK_THROWS_AS(expand_depthwise_forward(ConvGeometry::same(2, 8, 8, 16, 3, 3, 1, 1), 4, x.data(), pw, map, wd.data(),
                                             ze.data(), zd.data(), mean.data(), var.data()),
                    typenet::shape_error);
}
