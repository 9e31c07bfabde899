// Fused inverted-residual block against (a) the composition of the three kernels
// (gemm -> depthwise_forward -> gemm) and (b) the naive loops, on MobileNetV2-like
// and awkward shapes: with / without expansion, stride 1 and 2, even and odd inputs,
// residual, channel counts off the SIMD width, batch 1 and 3; pre-packed weights;
// thread-count determinism; the first convolution fused with a block without expansion.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/conv2d.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/inverted_residual.hpp"

using namespace typenet::kernels;

namespace {

struct Block {
    std::size_t n, hw, cin, cexp, cout, stride;
    bool expand, residual;
};

struct Data {
    std::vector<float> x, we, be, wd, bd, wp, bp;
};

Data make(const Block& b, std::uint64_t seed) {
    Data d;
    d.x = naive::random(b.n * b.hw * b.hw * b.cin, seed);
    d.we = naive::random(b.cin * b.cexp, seed + 1);
    d.be = naive::random(b.cexp, seed + 2);
    d.wd = naive::random(9 * b.cexp, seed + 3);
    d.bd = naive::random(b.cexp, seed + 4);
    d.wp = naive::random(b.cexp * b.cout, seed + 5);
    d.bp = naive::random(b.cout, seed + 6);
    for (auto& v : d.x) v *= 2.0f;  // so that ReLU6 clamps at both ends sometimes
    return d;
}

// The unfused sequence with typenet's own kernels.
std::vector<float> composed(const Block& b, const Data& d) {
    const auto g = ConvGeometry::same(b.n, b.hw, b.hw, b.cexp, 3, 3, b.stride, b.stride);
    const std::size_t in_px = b.n * b.hw * b.hw, out_px = g.output_pixels();
    std::vector<float> e(in_px * b.cexp), dw(out_px * b.cexp), y(out_px * b.cout);
    const float* ein = d.x.data();
    if (b.expand) {
        gemm(Trans::No, Trans::No, in_px, b.cexp, b.cin, d.x.data(), b.cin, d.we.data(), b.cexp, e.data(), b.cexp,
             bias_relu6(d.be.data()));
        ein = e.data();
    }
    depthwise_forward(g, ein, d.wd.data(), dw.data(), bias_relu6(d.bd.data()));
    Epilogue pe = bias_clamp(d.bp.data());
    if (b.residual) pe.residual = d.x.data();
    gemm(Trans::No, Trans::No, out_px, b.cout, b.cexp, dw.data(), b.cexp, d.wp.data(), b.cout, y.data(), b.cout, pe);
    return y;
}

// The same with the naive loops.
std::vector<float> reference(const Block& b, const Data& d) {
    const auto g = ConvGeometry::same(b.n, b.hw, b.hw, b.cexp, 3, 3, b.stride, b.stride);
    const std::size_t in_px = b.n * b.hw * b.hw, out_px = g.output_pixels();
    std::vector<float> e(in_px * b.cexp), dw(out_px * b.cexp), y(out_px * b.cout);
    Epilogue relu6;
    relu6.lo = 0.0f;
    relu6.hi = 6.0f;
    if (b.expand) {
        Epilogue ee = relu6;
        ee.bias = d.be.data();
        naive::gemm(false, false, in_px, b.cexp, b.cin, d.x.data(), b.cin, d.we.data(), b.cexp, e.data(), b.cexp, ee);
    } else {
        e = d.x;
    }
    Epilogue de = relu6;
    de.bias = d.bd.data();
    naive::depthwise_forward(g, e.data(), d.wd.data(), dw.data(), de);
    Epilogue pe;
    pe.bias = d.bp.data();
    if (b.residual) pe.residual = d.x.data();
    naive::gemm(false, false, out_px, b.cout, b.cexp, dw.data(), b.cexp, d.wp.data(), b.cout, y.data(), b.cout, pe);
    return y;
}

const Block kBlocks[] = {
    {1, 12, 32, 32, 16, 1, false, false},  // MobileNetV2 block 0 (no expansion)
    {2, 12, 16, 96, 24, 2, true, false},   // block 1 shape, even input, stride 2
    {1, 11, 24, 144, 24, 1, true, true},   // residual block, odd input
    {1, 13, 24, 144, 32, 2, true, false},  // stride 2, odd input
    {3, 7, 160, 960, 160, 1, true, true},  // the 7x7 blocks
    {1, 7, 160, 960, 320, 1, true, false},
    {1, 5, 7, 17, 7, 1, true, true},       // channels off the SIMD width
    {2, 9, 3, 33, 5, 2, true, false},
    {1, 1, 8, 48, 8, 1, true, true},       // 1x1 image
    {1, 30, 24, 144, 24, 1, true, true},   // several bands
};

}  // namespace

TEST_CASE("inverted_residual_forward matches the composed kernels and the naive loops") {
    std::uint64_t seed = 1;
    for (const auto& b : kBlocks) {
        const Data d = make(b, seed);
        seed += 10;
        const auto g = ConvGeometry::same(b.n, b.hw, b.hw, b.cexp, 3, 3, b.stride, b.stride);
        std::vector<float> y(g.output_pixels() * b.cout, 99.0f);
        inverted_residual_forward(g, b.cin, b.cout, d.x.data(), d.we.data(), d.be.data(), d.wd.data(), d.bd.data(),
                                  d.wp.data(), d.bp.data(), y.data(), b.expand, b.residual);
        const auto c = composed(b, d), r = reference(b, d);
        const double ec = naive::max_rel_error(y.data(), c.data(), y.size());
        const double er = naive::max_scaled_error(y.data(), r.data(), y.size());
        // Pre-packed weights give the same values.
        InvertedResidualWeights w;
        w.pack(b.cin, b.cexp, b.cout, d.we.data(), d.be.data(), d.wd.data(), d.bd.data(), d.wp.data(), d.bp.data(),
               b.expand);
        std::vector<float> y2(y.size());
        inverted_residual_forward(g, b.cin, b.cout, d.x.data(), w, y2.data(), b.residual);
        MESSAGE(g.to_string() << " cin " << b.cin << " cout " << b.cout << ": rel err vs composed " << ec << ", vs naive (RMS floor) " << er);
        CHECK(ec < 1e-5);
        CHECK(er < 1e-5);
        CHECK(std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("inverted_residual_forward: bit-identical for 1 and 2 threads") {
    // Batch 1 of a 30x30 image: one segment of rows per thread; 7x7: the threads work as
    // a team on each band; batch 3: whole images per thread.
    for (const Block& b : {Block{1, 30, 24, 144, 24, 1, true, true}, Block{1, 7, 32, 192, 40, 1, true, false},
                           Block{1, 9, 16, 96, 24, 2, true, false}, Block{3, 10, 16, 96, 24, 2, true, false}}) {
        const Data d = make(b, 77);
        const auto g = ConvGeometry::same(b.n, b.hw, b.hw, b.cexp, 3, 3, b.stride, b.stride);
        auto run = [&](int t) {
            typenet::set_num_threads(t);
            std::vector<float> y(g.output_pixels() * b.cout);
            inverted_residual_forward(g, b.cin, b.cout, d.x.data(), d.we.data(), d.be.data(), d.wd.data(),
                                      d.bd.data(), d.wp.data(), d.bp.data(), y.data(), b.expand, b.residual);
            return y;
        };
        const auto a = run(1), c = run(2), e = run(2);
        typenet::set_num_threads(2);
        CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(c.data(), e.data(), a.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("inverted_residual_forward rejects inconsistent shapes") {
    std::vector<float> buf(100000);
    const float* p = buf.data();
    auto g = ConvGeometry::same(1, 8, 8, 48, 3, 3, 2, 2);
    // residual with stride 2
    CHECK_THROWS_AS(inverted_residual_forward(g, 8, 8, p, p, p, p, p, p, p, buf.data(), true, true), typenet::shape_error);
    // no expansion but cin != cexp
    CHECK_THROWS_AS(inverted_residual_forward(g, 8, 8, p, p, p, p, p, p, p, buf.data(), false, false), typenet::shape_error);
    // null weights
    CHECK_THROWS_AS(inverted_residual_forward(g, 8, 8, p, nullptr, p, p, p, p, p, buf.data(), true, false),
                    typenet::shape_error);
    // packed weights of another shape
    InvertedResidualWeights w;
    w.pack(8, 48, 16, p, p, p, p, p, p);
    CHECK_THROWS_AS(inverted_residual_forward(g, 8, 8, p, w, buf.data(), false), typenet::shape_error);
}

TEST_CASE("stem_inverted_residual_forward: the stem's rows made in the block's bands") {
    // A direct convolution from 3 channels (stride 2, SAME with its asymmetric padding, or
    // VALID; with and without the input map x * 2 - 1) fused with a block without
    // expansion (stride 1 or 2): equal bits to conv2d_forward then inverted_residual_forward
    // on 1 and 2 threads (whole images, row segments, or a team on each band), and within
    // float rounding of the naive loops.
    struct Case {
        std::size_t n, h, w, cs, cout, block_stride;
        bool same, mapped;
    };
    const int threads_before = typenet::max_threads();
    std::uint64_t seed = 900;
    std::size_t tried = 0;
    for (const Case& k : {Case{1, 224, 224, 32, 16, 1, true, true},  // MobileNetV2's stem and block 0
                          Case{3, 33, 31, 32, 16, 1, true, true},    // odd sizes, several images
                          Case{2, 20, 24, 20, 7, 2, true, false},    // channels off the SIMD width
                          Case{1, 15, 17, 48, 24, 1, false, true},   // VALID
                          Case{1, 6, 6, 16, 16, 1, true, true},      // a 3x3 stem output: a team per band
                          Case{1, 96, 64, 32, 16, 1, true, false},
                          Case{1, 40, 64, 4, 8, 1, true, true},   // the stem's slab wider than the block's rows
                          Case{2, 31, 36, 16, 24, 1, true, true}}) {  // 16 outputs: direct on every SIMD width
        const auto gs = k.same ? ConvGeometry::same(k.n, k.h, k.w, 3, 3, 3, 2, 2)
                               : ConvGeometry::valid(k.n, k.h, k.w, 3, 3, 3, 2, 2);
        if (!conv_direct_eligible(gs, k.cs)) {
            // The direct kernel takes at most 4 vectors of outputs (16 on SSE2 builds).
            MESSAGE("skipped on this SIMD width: " << k.cs << " stem outputs are not for the direct kernel");
            continue;
        }
        ++tried;
        const auto g = ConvGeometry::same(k.n, gs.oh, gs.ow, k.cs, 3, 3, k.block_stride, k.block_stride);
        const InputMap m = k.mapped ? InputMap{2.0f, -1.0f} : InputMap{};
        auto x = naive::random(gs.input_size(), seed++);
        for (auto& v : x) v = v * 0.5f + 0.5f;  // images in [0, 1]
        const auto ws = naive::random(27 * k.cs, seed++), bs = naive::random(k.cs, seed++);
        const auto wd = naive::random(9 * k.cs, seed++), bd = naive::random(k.cs, seed++);
        const auto wp = naive::random(k.cs * k.cout, seed++), bp = naive::random(k.cout, seed++);
        const Epilogue es = bias_relu6(bs.data());
        InvertedResidualWeights w;
        w.pack(k.cs, k.cs, k.cout, nullptr, nullptr, wd.data(), bd.data(), wp.data(), bp.data(), false);
        const std::size_t nstem = gs.output_pixels() * k.cs, ny = g.output_pixels() * k.cout;

        // The naive loops (the map applied to the input first: padding stays zero after it).
        std::vector<float> xm(x), stem_ref(nstem), y_ref(ny);
        for (auto& v : xm) v = v * m.scale + m.offset;
        naive::conv2d_forward(gs, k.cs, xm.data(), ws.data(), stem_ref.data(), es);
        Epilogue de;
        de.bias = bd.data();
        de.lo = 0.0f;
        de.hi = 6.0f;
        std::vector<float> dw(g.output_pixels() * k.cs);
        naive::depthwise_forward(g, stem_ref.data(), wd.data(), dw.data(), de);
        Epilogue pe;
        pe.bias = bp.data();
        naive::gemm(false, false, g.output_pixels(), k.cout, k.cs, dw.data(), k.cs, wp.data(), k.cout, y_ref.data(),
                    k.cout, pe);

        for (int threads : {1, 2}) {
            typenet::set_num_threads(threads);
            std::vector<float> stem(nstem), want(ny), got(ny, 99.0f);
            conv2d_forward(gs, k.cs, x.data(), ws.data(), stem.data(), es, m);
            inverted_residual_forward(g, k.cs, k.cout, stem.data(), w, want.data(), false);
            stem_inverted_residual_forward(gs, k.cs, x.data(), ws.data(), es, m, g, k.cout, w, got.data());
            INFO(gs.to_string() << " -> " << k.cs << " -> block " << g.to_string() << " -> " << k.cout << ", "
                                << threads << " thread(s)");
            const double er = naive::max_scaled_error(got.data(), y_ref.data(), ny);
            MESSAGE("stem + block " << g.to_string() << ", " << threads << " thread(s): error vs naive (RMS floor) "
                                    << er);
            CHECK(std::memcmp(got.data(), want.data(), ny * sizeof(float)) == 0);
            CHECK(er < 1e-5);
        }
    }
    typenet::set_num_threads(threads_before);
    CHECK(tried >= 2);
}

TEST_CASE("stem_inverted_residual_forward rejects what it cannot fuse") {
    // 16 stem outputs: on the direct kernel on every SIMD width.
    const auto gs = ConvGeometry::same(1, 16, 16, 3, 3, 3, 2, 2);
    const auto g = ConvGeometry::same(1, 8, 8, 16, 3, 3, 1, 1);
    std::vector<float> buf(100000, 0.1f);
    const float* p = buf.data();
    float* y = buf.data() + 50000;
    InvertedResidualWeights w;
    w.pack(16, 16, 8, nullptr, nullptr, p, p, p, p, false);
    const Epilogue es = bias_relu6(p);
    CHECK_NOTHROW(stem_inverted_residual_forward(gs, 16, p, p, es, {}, g, 8, w, y));
    // the block's input is not the stem's output
    const auto g_wrong = ConvGeometry::same(1, 8, 8, 12, 3, 3, 1, 1);
    CHECK_THROWS_WITH_AS(stem_inverted_residual_forward(gs, 16, p, p, es, {}, g_wrong, 8, w, y),
                         doctest::Contains("is not the convolution's output"), typenet::shape_error);
    // a stem the direct kernel does not take (32 input channels)
    const auto gs_wide = ConvGeometry::same(1, 16, 16, 32, 3, 3, 2, 2);
    CHECK_THROWS_WITH_AS(stem_inverted_residual_forward(gs_wide, 16, p, p, es, {}, g, 8, w, y),
                         doctest::Contains("not for the direct kernel"), typenet::shape_error);
    // a block with expansion
    InvertedResidualWeights we;
    we.pack(16, 16, 8, p, p, p, p, p, p, true);
    CHECK_THROWS_WITH_AS(stem_inverted_residual_forward(gs, 16, p, p, es, {}, g, 8, we, y),
                         doctest::Contains("no expansion"), typenet::shape_error);
    // a residual in the stem's epilogue
    Epilogue er = es;
    er.residual = p;
    CHECK_THROWS_WITH_AS(stem_inverted_residual_forward(gs, 16, p, p, er, {}, g, 8, w, y),
                         doctest::Contains("residual"), typenet::shape_error);
    // null input
    CHECK_THROWS_WITH_AS(stem_inverted_residual_forward(gs, 16, nullptr, p, es, {}, g, 8, w, y),
                         doctest::Contains("null"), typenet::shape_error);
}
