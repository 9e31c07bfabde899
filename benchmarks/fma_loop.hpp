// The fp32 FMA loop the benchmarks measure the machine's peak with (bench_kernels,
// fma_peak): independent chains of vector FMAs for the SIMD architecture typenet is
// compiled for, enough of them to cover the FMA latency x throughput of current x86
// cores (4 cycles x 2 pipes), and never touching memory.
#pragma once

#include <xsimd/xsimd.hpp>

#include "typenet/kernels/simd.hpp"

namespace bench {

/// Independent accumulator chains of `fma_chains`.
inline constexpr int fma_chain_count = typenet::kernels::simd_registers >= 32 ? 16 : 10;

/// Runs `iters` x `fma_chain_count` vector FMAs on the calling thread; returns a value the
/// caller must keep (so the loop is not removed).
__attribute__((noinline)) inline float fma_chains(long iters, float seed) {
    using typenet::kernels::vfloat;
    vfloat acc[fma_chain_count];
    for (int i = 0; i < fma_chain_count; ++i) acc[i] = vfloat(seed + 0.01f * float(i));
    const vfloat m(0.999999f), c(1e-7f);
    for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 16
        for (int i = 0; i < fma_chain_count; ++i) acc[i] = xsimd::fma(acc[i], m, c);
    }
    vfloat s(0.0f);
    for (int i = 0; i < fma_chain_count; ++i) s += acc[i];
    return xsimd::hadd(s);
}

/// Floating-point operations of one `fma_chains(iters, ...)` call.
inline double fma_chains_flops(long iters) {
    return 2.0 * fma_chain_count * double(typenet::kernels::simd_width) * double(iters);
}

}  // namespace bench
