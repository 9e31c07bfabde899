// Paths taken only for large tensors: non-temporal stores for outputs of 32 MB or
// more and row prefetching for inputs of 8 MB or more. They must give exactly the
// bits of the ordinary path: each kernel runs on the same data twice, once with a
// 64-byte aligned output (streamed) and once with an output shifted by one float
// (not streamed), and spot rows are checked against the naive loops.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/conv2d.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/inverted_residual.hpp"
#include "typenet/kernels/workspace.hpp"

using namespace typenet::kernels;

namespace {

// Two output buffers: one 64-byte aligned (streamed), one shifted by a float (not).
struct TwoOutputs {
    AlignedBuffer a, b;
    float* aligned;
    float* shifted;
    explicit TwoOutputs(std::size_t n) {
        aligned = a.get(n);
        shifted = b.get(n + 1) + 1;
        std::memset(aligned, 0, n * sizeof(float));
        std::memset(shifted, 0, n * sizeof(float));
    }
};

}  // namespace

TEST_CASE("gemm with a 32 MB output: streamed stores give the same bits") {
    const std::size_t M = 131072 + 5, N = 64, K = 24;
    auto A = naive::random(M * K, 1), B = naive::random(K * N, 2), bias = naive::random(N, 3);
    TwoOutputs out(M * N);
    const Epilogue ep = bias_relu6(bias.data());
    gemm(Trans::No, Trans::No, M, N, K, A.data(), K, B.data(), N, out.aligned, N, ep);
    gemm(Trans::No, Trans::No, M, N, K, A.data(), K, B.data(), N, out.shifted, N, ep);
    CHECK(std::memcmp(out.aligned, out.shifted, M * N * sizeof(float)) == 0);
    // Spot rows against the naive product.
    std::vector<float> ref(N);
    double worst = 0;
    for (std::size_t i : {std::size_t(0), std::size_t(7), M / 2, M - 1}) {
        naive::gemm(false, false, 1, N, K, A.data() + i * K, K, B.data(), N, ref.data(), N, ep);
        worst = std::max(worst, naive::max_rel_error(out.aligned + i * N, ref.data(), N));
    }
    CHECK(worst < 1e-5);
}

TEST_CASE("depthwise forward on large tensors (prefetch, streamed stores) gives the same bits") {
    const auto g = ConvGeometry::same(11, 112, 112, 64, 3, 3, 1, 1);  // 35 MB in and out
    auto x = naive::random(g.input_size(), 4), w = naive::random(9 * g.c, 5), bias = naive::random(g.c, 6);
    TwoOutputs out(g.output_pixels() * g.c);
    const Epilogue ep = bias_relu6(bias.data());
    depthwise_forward(g, x.data(), w.data(), out.aligned, ep);
    depthwise_forward(g, x.data(), w.data(), out.shifted, ep);
    CHECK(std::memcmp(out.aligned, out.shifted, g.output_pixels() * g.c * sizeof(float)) == 0);
    // The last image against the naive loop.
    ConvGeometry one = g;
    one.n = 1;
    const std::size_t per_in = g.h * g.w * g.c, per_out = g.oh * g.ow * g.c;
    std::vector<float> ref(per_out);
    naive::depthwise_forward(one, x.data() + (g.n - 1) * per_in, w.data(), ref.data(), ep);
    CHECK(naive::max_rel_error(out.aligned + (g.n - 1) * per_out, ref.data(), per_out) < 1e-5);
}

TEST_CASE("stem convolution with a 32 MB output gives the same bits streamed or not") {
    const auto g = ConvGeometry::same(21, 224, 224, 3, 3, 3, 2, 2);
    auto x = naive::random(g.input_size(), 7), w = naive::random(27 * 32, 8), bias = naive::random(32, 9);
    TwoOutputs out(g.output_pixels() * 32);
    const Epilogue ep = bias_relu6(bias.data());
    conv2d_forward(g, 32, x.data(), w.data(), out.aligned, ep);
    conv2d_forward(g, 32, x.data(), w.data(), out.shifted, ep);
    CHECK(std::memcmp(out.aligned, out.shifted, g.output_pixels() * 32 * sizeof(float)) == 0);
}

TEST_CASE("fused block without expansion on a large input (prefetch, streamed stores)") {
    // MobileNetV2 block 0 at batch 11 (input 17 MB), widened to 64 outputs (35 MB).
    const auto g = ConvGeometry::same(11, 112, 112, 32, 3, 3, 1, 1);
    const std::size_t cout = 64;
    auto x = naive::random(g.input_size(), 10), wd = naive::random(9 * 32, 11), bd = naive::random(32, 12);
    auto wp = naive::random(32 * cout, 13), bp = naive::random(cout, 14);
    TwoOutputs out(g.output_pixels() * cout);
    inverted_residual_forward(g, 32, cout, x.data(), nullptr, nullptr, wd.data(), bd.data(), wp.data(), bp.data(),
                              out.aligned, false, false);
    inverted_residual_forward(g, 32, cout, x.data(), nullptr, nullptr, wd.data(), bd.data(), wp.data(), bp.data(),
                              out.shifted, false, false);
    CHECK(std::memcmp(out.aligned, out.shifted, g.output_pixels() * cout * sizeof(float)) == 0);
}
