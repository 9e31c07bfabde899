// The SIMD layer under every kernel (kernels/simd.hpp): which architecture the build
// compiled for, and the small helpers the kernels build on, each against plain scalar code.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "typenet/kernels/simd.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

using namespace typenet::kernels;

TEST_CASE("the kernels are compiled for the SIMD architecture the build asked for") {
    const std::string name = simd_arch::name();
    MESSAGE("kernels built for " << name << ": " << simd_width << " floats a vector, " << simd_registers
                                 << " registers");
    CHECK(sizeof(vfloat) == simd_width * sizeof(float));
    // 32 registers exactly when the vectors are AVX-512's.
    CHECK(simd_registers == (simd_width == 16 ? 32u : 16u));
    // .ci/run builds the kernel tests for SSE2 and AVX2 besides the native build, and says
    // which architecture each build must have: a flag lost on the way fails here.
    if (const char* want = std::getenv("TYPENET_EXPECT_SIMD")) CHECK(name == std::string(want));
}

TEST_CASE("load_partial reads n floats and zeroes the other lanes") {
    constexpr std::size_t W = simd_width;
    std::vector<float> src(2 * W);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 1.0f;
    for (std::size_t n = 0; n < W; ++n) {
        alignas(64) float out[W];
        detail::load_partial(src.data() + 3, n).store_unaligned(out);
        for (std::size_t l = 0; l < W; ++l) CHECK(out[l] == (l < n ? src[3 + l] : 0.0f));
    }
}

#if defined(__linux__)
TEST_CASE("load_partial never reads past its n floats (the page after them unreadable)") {
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    char* base = static_cast<char*>(m);
    REQUIRE(mprotect(base + page, page, PROT_NONE) == 0);
    float* end = reinterpret_cast<float*>(base + page);  // the first float that would fault
    for (std::size_t n = 0; n < simd_width; ++n) {
        for (std::size_t i = 0; i < n; ++i) end[-std::ptrdiff_t(n) + std::ptrdiff_t(i)] = float(i) + 0.5f;
        alignas(64) float out[simd_width];
        detail::load_partial(end - n, n).store_unaligned(out);  // a fault here ends the test program
        for (std::size_t l = 0; l < simd_width; ++l) CHECK(out[l] == (l < n ? float(l) + 0.5f : 0.0f));
    }
    munmap(m, 2 * page);
}
#endif

TEST_CASE("clamp is min(max(x, lo), hi) and lets NaN through") {
    constexpr std::size_t W = simd_width;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float values[] = {-7.0f, -0.0f, 0.0f, 0.5f, 5.999f, 6.0f, 6.5f, 1e30f, -1e30f, nan};
    alignas(64) float in[W], out[W];
    for (std::size_t start = 0; start < std::size(values); start += W) {
        for (std::size_t l = 0; l < W; ++l) in[l] = values[(start + l) % std::size(values)];
        detail::clamp(vfloat::load_unaligned(in), vfloat(0.0f), vfloat(6.0f)).store_unaligned(out);
        for (std::size_t l = 0; l < W; ++l) {
            if (std::isnan(in[l])) {
                CHECK(std::isnan(out[l]));
            } else {
                const float want = in[l] < 0.0f ? 0.0f : (in[l] > 6.0f ? 6.0f : in[l]);
                CHECK(out[l] == want);
            }
        }
    }
}

TEST_CASE("hsum adds the lanes") {
    constexpr std::size_t W = simd_width;
    alignas(64) float in[W];
    double want = 0;
    for (std::size_t l = 0; l < W; ++l) {
        in[l] = 0.25f * float(l * l) - 3.0f;  // exact in float, and so is every partial sum
        want += in[l];
    }
    CHECK(detail::hsum(vfloat::load_unaligned(in)) == float(want));
}

TEST_CASE("opaque_pointers leaves the pointers as they were") {
    float a[8] = {};
    float* p[3] = {a, a + 3, a + 7};
    detail::opaque_pointers(p);
    CHECK(p[0] == a);
    CHECK(p[1] == a + 3);
    CHECK(p[2] == a + 7);
}
