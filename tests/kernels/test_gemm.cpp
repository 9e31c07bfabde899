// gemm against a naive double-accumulation loop on awkward shapes: every transpose,
// leading dimensions larger than the width, K blocking, K splitting, every epilogue
// part, and thread-count determinism.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/naive.hpp"
#include "typenet/kernels/gemm.hpp"

using namespace typenet::kernels;

namespace {

struct Case {
    std::size_t M, N, K;
    bool ta, tb;
    std::size_t pad;  // extra columns in every leading dimension
};

// Run gemm and the naive loop on the same data; return the max relative error.
double run_case(const Case& c, const Epilogue& ep_in, std::uint64_t seed, bool use_packed = false) {
    const std::size_t lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
    const std::size_t arows = c.ta ? c.K : c.M, brows = c.tb ? c.N : c.K;
    auto A = naive::random(arows * lda, seed);
    auto B = naive::random(brows * ldb, seed + 1);
    auto C0 = naive::random(c.M * ldc, seed + 2);
    auto bias = naive::random(c.N, seed + 3);
    const std::size_t ldr = c.N + 2 * c.pad + 1;
    auto res = naive::random(c.M * ldr, seed + 4);
    Epilogue ep = ep_in;
    if (ep.bias) ep.bias = bias.data();
    if (ep.residual) {
        ep.residual = res.data();
        ep.ldr = ldr;
    }
    std::vector<float> C = C0, R = C0;
    if (use_packed) {
        PackedMatrix pb;
        pb.pack(c.tb ? Trans::Yes : Trans::No, c.K, c.N, B.data(), ldb);
        gemm(c.ta ? Trans::Yes : Trans::No, c.M, A.data(), lda, pb, C.data(), ldc, ep);
    } else {
        gemm(c.ta ? Trans::Yes : Trans::No, c.tb ? Trans::Yes : Trans::No, c.M, c.N, c.K, A.data(), lda, B.data(),
             ldb, C.data(), ldc, ep);
    }
    naive::gemm(c.ta, c.tb, c.M, c.N, c.K, A.data(), lda, B.data(), ldb, R.data(), ldc, ep);
    // The padding columns of C must be untouched.
    for (std::size_t i = 0; i < c.M; ++i)
        for (std::size_t j = c.N; j < ldc; ++j)
            if (C[i * ldc + j] != C0[i * ldc + j]) return 1e30;
    return naive::max_rel_error(C.data(), R.data(), C.size());
}

Epilogue full_epilogue() {
    Epilogue ep;
    ep.bias = reinterpret_cast<const float*>(1);      // replaced by run_case
    ep.residual = reinterpret_cast<const float*>(1);  // replaced by run_case
    ep.lo = -0.5f;
    ep.hi = 2.0f;
    ep.accumulate = true;
    return ep;
}

// Error bound for a sum of K products of values in [-1, 1): rounding grows like sqrt(K).
double tol(std::size_t K) { return 1e-6 * (std::sqrt(double(K)) + 2.0); }

}  // namespace

TEST_CASE("gemm matches the naive product on awkward shapes, all transposes") {
    const std::size_t Ms[] = {1, 3, 7, 8, 17, 49, 100};
    const std::size_t Ns[] = {1, 3, 7, 16, 17, 33, 50, 100};
    const std::size_t Ks[] = {1, 7, 16, 24, 32, 33};  // 16, 24, 32: the depths of MobileNetV2's shallow expansions
    double worst = 0;
    std::uint64_t seed = 1;
    for (int t = 0; t < 4; ++t)
        for (auto M : Ms)
            for (auto N : Ns)
                for (auto K : Ks) {
                    Case c{M, N, K, (t & 1) != 0, (t & 2) != 0, (M + N + K) % 3 == 0 ? 0u : 5u};
                    const double e = run_case(c, {}, seed++);
                    if (e > tol(K)) {
                        MESSAGE("M " << M << " N " << N << " K " << K << " ta " << c.ta << " tb " << c.tb
                                     << " err " << e);
                    }
                    worst = std::max(worst, e);
                }
    MESSAGE("gemm small shapes: max relative error " << worst);
    CHECK(worst < tol(33));
}

TEST_CASE("gemm epilogue: bias, residual, clamp, accumulate, each and together") {
    double worst = 0;
    std::uint64_t seed = 100;
    for (int mask = 0; mask < 16; ++mask) {
        Epilogue ep;
        if (mask & 1) ep.bias = reinterpret_cast<const float*>(1);
        if (mask & 2) ep.residual = reinterpret_cast<const float*>(1);
        if (mask & 4) {
            ep.lo = 0.0f;
            ep.hi = 6.0f;
        }
        if (mask & 8) ep.accumulate = true;
        for (bool ta : {false, true})
            for (bool tb : {false, true}) {
                worst = std::max(worst, run_case({37, 53, 29, ta, tb, 3}, ep, seed++));
                worst = std::max(worst, run_case({64, 48, 16, ta, tb, 0}, ep, seed++));
                worst = std::max(worst, run_case({40, 100, 24, ta, tb, 1}, ep, seed++));
                worst = std::max(worst, run_case({49, 96, 32, ta, tb, 0}, ep, seed++));
                // MobileNetV2's 24-channel projections: whole row tiles with a partial last
                // vector (masked in registers with AVX-512, through a buffer elsewhere).
                worst = std::max(worst, run_case({64, 24, 96, ta, tb, 2}, ep, seed++));
            }
    }
    MESSAGE("gemm epilogues: max relative error " << worst);
    CHECK(worst < tol(53));
}

TEST_CASE("gemm with a clamp only (ReLU6) really clamps and keeps NaN") {
    const std::size_t M = 9, N = 20, K = 4;
    std::vector<float> A(M * K, 3.0f), B(K * N, 1.0f), C(M * N);
    A[0] = NAN;
    Epilogue ep;
    ep.lo = 0.0f;
    ep.hi = 6.0f;
    gemm(Trans::No, Trans::No, M, N, K, A.data(), K, B.data(), N, C.data(), N, ep);
    CHECK(std::isnan(C[0]));
    CHECK(C[N] == 6.0f);  // 12 clamped to 6
    for (auto& a : A) a = -1.0f;
    gemm(Trans::No, Trans::No, M, N, K, A.data(), K, B.data(), N, C.data(), N, ep);
    CHECK(C[5] == 0.0f);
}

TEST_CASE("gemm blocking paths: K blocks, K split, N split, packed weights") {
    std::uint64_t seed = 500;
    const Case cases[] = {
        {300, 40, 1100, false, false, 2},   // several K blocks, M blocked between them
        {300, 40, 1100, true, true, 0},     // same, transposed
        {20, 33, 3000, true, false, 1},     // K split (weight-gradient shape), partial panel
        {24, 48, 5000, true, false, 0},     // K split, B read in place
        {50, 70, 4100, false, true, 3},     // K split with packed, transposed B
        {144, 24, 2000, true, false, 1},    // narrow weight gradient: computed as C^T = B^T A
        {100, 17, 1500, true, false, 0},    // same, partial tiles
        {9, 200, 64, false, false, 0},      // few rows: panels split between threads
        {49, 1280, 40, false, false, 0},    // MobileNetV2's last 1x1 shape at batch 1 (K cut)
        {200, 96, 16, false, false, 0},     // expand-like
        {131, 400, 1100, true, false, 3},   // column-major A, long rows, many panels: A tiles copied, K blocks
        {131, 400, 700, true, true, 0},     // same with op(B) transposed; the last tile copied lane by lane
    };
    for (const auto& c : cases) {
        const double e1 = run_case(c, {}, seed++);
        const double e2 = run_case(c, full_epilogue(), seed++);
        MESSAGE("M " << c.M << " N " << c.N << " K " << c.K << ": rel err " << e1 << " / with epilogue " << e2);
        CHECK(e1 < tol(c.K));
        CHECK(e2 < tol(c.K));
        const double ep = run_case(c, full_epilogue(), seed++, true);
        MESSAGE("  PackedMatrix: rel err " << ep);
        CHECK(ep < tol(c.K));
    }
}

TEST_CASE("gemm K == 0 applies the epilogue to zero") {
    std::vector<float> C(6, 5.0f), bias = {1, 2, 3};
    Epilogue ep;
    ep.bias = bias.data();
    ep.accumulate = true;
    gemm(Trans::No, Trans::No, 2, 3, 0, nullptr, 1, nullptr, 3, C.data(), 3, ep);
    CHECK(C[0] == 6.0f);
    CHECK(C[5] == 8.0f);
}

TEST_CASE("gemm results: same thread count bit-identical, 1 vs 2 threads close") {
    const Case cases[] = {{1000, 144, 24, false, false, 0}, {24, 144, 20000, true, false, 0}, {49, 320, 960, false, false, 0}};
    for (const auto& c : cases) {
        const std::size_t lda = c.ta ? c.M : c.K, ldb = c.N;
        auto A = naive::random((c.ta ? c.K : c.M) * lda, 7), B = naive::random(c.K * ldb, 8);
        std::vector<float> C1(c.M * c.N), C2a(c.M * c.N), C2b(c.M * c.N);
        const Trans ta = c.ta ? Trans::Yes : Trans::No;
        typenet::set_num_threads(1);
        gemm(ta, Trans::No, c.M, c.N, c.K, A.data(), lda, B.data(), ldb, C1.data(), c.N);
        typenet::set_num_threads(2);
        gemm(ta, Trans::No, c.M, c.N, c.K, A.data(), lda, B.data(), ldb, C2a.data(), c.N);
        gemm(ta, Trans::No, c.M, c.N, c.K, A.data(), lda, B.data(), ldb, C2b.data(), c.N);
        CHECK(std::memcmp(C2a.data(), C2b.data(), C2a.size() * sizeof(float)) == 0);
        const double e = naive::max_rel_error(C1.data(), C2a.data(), C1.size());
        MESSAGE("M " << c.M << " N " << c.N << " K " << c.K << ": 1 vs 2 threads rel diff " << e);
        CHECK(e < tol(c.K));
    }
}

TEST_CASE("gemm rejects bad arguments") {
    std::vector<float> A(16), B(16), C(16);
    CHECK_THROWS_AS(gemm(Trans::No, Trans::No, 4, 4, 4, A.data(), 3, B.data(), 4, C.data(), 4), typenet::shape_error);
    CHECK_THROWS_AS(gemm(Trans::No, Trans::No, 4, 4, 4, A.data(), 4, B.data(), 3, C.data(), 4), typenet::shape_error);
    CHECK_THROWS_AS(gemm(Trans::No, Trans::No, 4, 4, 4, A.data(), 4, B.data(), 4, C.data(), 3), typenet::shape_error);
    CHECK_THROWS_AS(gemm(Trans::No, Trans::No, 4, 4, 4, nullptr, 4, B.data(), 4, C.data(), 4), typenet::shape_error);
    CHECK_NOTHROW(gemm(Trans::No, Trans::No, 0, 4, 4, nullptr, 4, nullptr, 4, nullptr, 4));
}
