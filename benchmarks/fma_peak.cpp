// fma_peak: the fp32 fused multiply-add throughput of this machine for the SIMD
// architecture typenet's kernels are compiled for, on 1 and 2 threads.
//
//     fma_peak [--min-time SECONDS]
//
// Prints a line per thread count on stderr and, as its last line on stdout, one JSON
// object: {"tool": "typenet_fma_peak", "arch": "avx2", "simd_width": 8,
// "fma_gflops_1t": ..., "fma_gflops_2t": ...} (medians of five timed repetitions).
//
// benchmarks/compare.sh uses it for the "% peak" column when the peer kit cannot
// measure the peak (its own probe is written for AVX-512 and does not build on
// AVX2-only machines). The loop is bench_kernels' (fma_loop.hpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <omp.h>

#include "fma_loop.hpp"
#include "typenet/kernels/simd.hpp"

namespace {

using typenet::kernels::simd_width;

/// GFLOP/s of `threads` threads running the chains together (median of `reps`).
double measure(int threads, double min_time, int reps) {
    long iters = 1 << 16;
    const auto run = [&](long n) {
        const auto t0 = std::chrono::steady_clock::now();
        float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += bench::fma_chains(n, 1.0f + float(omp_get_thread_num()));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (sink == 12345.0f) std::fprintf(stderr, " ");  // never true; keeps `sink` alive
        return s;
    };
    while (run(iters) < min_time / 4) iters *= 2;
    std::vector<double> g;
    for (int r = 0; r < reps; ++r) {
        const double s = run(iters);
        g.push_back(bench::fma_chains_flops(iters) * threads / s * 1e-9);
    }
    std::sort(g.begin(), g.end());
    return g[g.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    double min_time = 0.3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--min-time" && i + 1 < argc)
            min_time = std::atof(argv[++i]);
        else {
            std::fprintf(stderr, "usage: fma_peak [--min-time SECONDS]\n");
            return 2;
        }
    }
    const char* arch = typenet::kernels::simd_arch::name();
    const double g1 = measure(1, min_time, 5);
    const double g2 = measure(2, min_time, 5);
    std::fprintf(stderr, "fp32 FMA peak (%s, %zu lanes): %.1f GFLOP/s on 1 thread, %.1f on 2\n", arch,
                 simd_width, g1, g2);
    std::printf("{\"tool\": \"typenet_fma_peak\", \"arch\": \"%s\", \"simd_width\": %zu, \"fma_gflops_1t\": %.1f, "
                "\"fma_gflops_2t\": %.1f}\n",
                arch, simd_width, g1, g2);
    return 0;
}
