/// @file kernels/simd.hpp
/// The SIMD vocabulary of the kernels: the float batch type of the architecture the
/// compiler targets, its width, and partial (tail) loads and stores.
///
/// The architecture is chosen at compile time from the compiler's flags
/// (`xsimd::default_arch`): AVX-512 with `-march=native` on an AVX-512 machine, AVX2
/// with `-mavx2 -mfma`, SSE2 with no flags. Every kernel is written once against
/// `vfloat` and `simd_width`; register-blocking sizes derive from `simd_registers`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TYPENET_X86 1
#else
#define TYPENET_X86 0
#endif

#include "typenet/config.hpp"

namespace typenet::kernels {

/// The xsimd architecture the kernels are compiled for.
using simd_arch = xsimd::default_arch;

/// A SIMD register of floats for `simd_arch`.
using vfloat = xsimd::batch<float, simd_arch>;

/// Number of floats in a `vfloat` (16 with AVX-512, 8 with AVX2, 4 with SSE2).
inline constexpr std::size_t simd_width = vfloat::size;

/// Number of architectural vector registers (32 with AVX-512, 16 otherwise).
inline constexpr std::size_t simd_registers =
#if defined(__AVX512F__)
    32;
#else
    16;
#endif

/// True when partial vectors load and store with a lane mask in one instruction
/// (AVX-512): `load_partial` / `store_partial` then cost about what full ones do; without
/// it they go through a buffer, one float at a time.
inline constexpr bool simd_has_masked_memory =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

/// True when the target has a fused multiply-add instruction (results of `fma` are
/// then rounded once; without it, `fma(a, b, c)` is `a * b + c` rounded twice).
inline constexpr bool simd_has_fma =
#if defined(__FMA__) || defined(__AVX512F__)
    true;
#else
    false;
#endif

namespace detail {

/// Load `n < simd_width` floats from `p` (the others are zero), never reading past `p + n`.
TYPENET_INLINE vfloat load_partial(const float* p, std::size_t n) noexcept {
#if defined(__AVX512F__)
    if constexpr (simd_width == 16) {
        const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
        return vfloat(_mm512_maskz_loadu_ps(m, p));
    }
#endif
    alignas(64) float tmp[simd_width] = {};
    for (std::size_t i = 0; i < n; ++i) tmp[i] = p[i];
    return vfloat::load_aligned(tmp);
}

/// Store the first `n < simd_width` lanes of `v` to `p`, never writing past `p + n`.
TYPENET_INLINE void store_partial(float* p, const vfloat& v, std::size_t n) noexcept {
#if defined(__AVX512F__)
    if constexpr (simd_width == 16) {
        const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
        _mm512_mask_storeu_ps(p, m, v);
        return;
    }
#endif
    alignas(64) float tmp[simd_width];
    v.store_aligned(tmp);
    for (std::size_t i = 0; i < n; ++i) p[i] = tmp[i];
}

/// Load `n <= simd_width` floats (a full unaligned load when `n == simd_width`).
TYPENET_INLINE vfloat load_n(const float* p, std::size_t n) noexcept {
    return n == simd_width ? vfloat::load_unaligned(p) : load_partial(p, n);
}

/// Store `n <= simd_width` lanes (a full unaligned store when `n == simd_width`).
TYPENET_INLINE void store_n(float* p, const vfloat& v, std::size_t n) noexcept {
    if (n == simd_width)
        v.store_unaligned(p);
    else
        store_partial(p, v, n);
}

/// Non-temporal store of a full vector to 64-byte (AVX-512) / vector-aligned `p`:
/// the line goes to memory without being read first (for outputs too large to stay
/// in cache). Call `stream_fence()` before other threads read the data.
TYPENET_INLINE void store_stream(float* p, const vfloat& v) noexcept {
#if defined(__AVX512F__)
    static_assert(simd_width == 16);
    _mm512_stream_ps(p, v);
#elif defined(__AVX__)
    static_assert(simd_width == 8);
    _mm256_stream_ps(p, v);
#elif defined(__SSE__)
    static_assert(simd_width == 4);
    _mm_stream_ps(p, v);
#else
    v.store_aligned(p);
#endif
}

/// Whether an output of `rows x cols` floats (leading dimension `ld`) is large enough
/// that writing it with non-temporal stores pays (it would not stay in cache anyway,
/// and the stores then need not read the lines first), and aligned for them. `threshold`
/// (bytes): the default (32 MB) for outputs of inference; the training step's tensors pass
/// `training_stream_bytes()` (kernels/cache.hpp).
inline bool use_streaming_stores(const float* y, std::size_t ld, std::size_t rows, std::size_t cols,
                                 bool accumulate, std::size_t threshold = std::size_t(32) << 20) noexcept {
    if (accumulate || cols < 16) return false;
    if (reinterpret_cast<std::uintptr_t>(y) % 64 != 0 || ld % 16 != 0) return false;
    return rows * ld * sizeof(float) >= threshold;
}

/// Copy `n` floats with non-temporal stores (`dst` 64-byte aligned, `n` a multiple of 16).
inline void stream_copy(const float* src, float* dst, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; i += simd_width) store_stream(dst + i, vfloat::load_unaligned(src + i));
}

/// Hint that the cache line at `p` will be read soon (no-op off x86; never faults).
TYPENET_INLINE void prefetch_l1(const void* p) noexcept {
#if TYPENET_X86
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
#else
    (void)p;
#endif
}

/// Rows ahead that a pass reading rows of `row_bytes` bytes from memory, one after the
/// other, prefetches (`TYPENET_STREAM_PREFETCH_BYTES` of them, at least one row; 0 when that
/// macro is 0). The hardware prefetchers lose the several streams that the training
/// backward's row passes read at once (a gradient and a pre-normalisation tensor, between
/// kernels that fill the caches). Measured on a MobileNetV2 training step (batch 32, AMD
/// EPYC Zen 5, 2 threads, 2026-12-02): the loads of batch norm's input-gradient map and of
/// the depthwise weight gradient's mapped input had been a quarter and a ninth of the
/// depthwise backward's samples; with 2 KB ahead the step took 0.85-0.94x the time in four
/// interleaved rounds (1 KB and 4-8 KB within the noise of 2 KB).
inline std::size_t stream_prefetch_rows(std::size_t row_bytes) noexcept {
    constexpr std::size_t bytes = TYPENET_STREAM_PREFETCH_BYTES;
    if (bytes == 0 || row_bytes == 0) return 0;
    return (bytes + row_bytes - 1) / row_bytes;
}

/// Prefetch the cache lines of `bytes` bytes starting `offset` bytes after `base` (one
/// hint per 64-byte line). A prefetch never faults, so the span may lie past the end of
/// `base`'s array: the address is computed as an integer, not by pointer arithmetic.
TYPENET_INLINE void prefetch_span(const void* base, std::size_t offset, std::size_t bytes) noexcept {
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(base) + offset;
    for (std::size_t q = 0; q < bytes; q += 64) prefetch_l1(reinterpret_cast<const void*>(a + q));
}

/// Hide the pointers `p[0..N)` from the optimiser for one loop iteration (no code). For a
/// kernel that walks a few row pointers and reads a fixed pattern of run-time strided
/// columns from each: g++ 12 otherwise turns every (row, column) address into an induction
/// variable of its own, more than there are registers, and reloads them from the stack
/// for each vector load; opaque, each address is its row pointer plus an offset hoisted out
/// of the loop.
template <class T, std::size_t N>
TYPENET_INLINE void opaque_pointers(T* (&p)[N]) noexcept {
#if defined(__GNUC__)
#pragma GCC unroll 16
    for (std::size_t i = 0; i < N; ++i) asm("" : "+r"(p[i]));
#else
    (void)p;
#endif
}

/// Order earlier non-temporal stores before later stores.
TYPENET_INLINE void stream_fence() noexcept {
#if TYPENET_X86
    _mm_sfence();
#endif
}

/// `min(max(x, lo), hi)`, NaN in x propagating.
TYPENET_INLINE vfloat clamp(const vfloat& x, const vfloat& lo, const vfloat& hi) noexcept {
#if defined(__AVX512F__)
    if constexpr (simd_width == 16) {
        // The zero-masked forms (all lanes selected) avoid a GCC 12 false
        // -Wmaybe-uninitialized inside _mm512_max_ps / _mm512_min_ps.
        const __m512 m = _mm512_maskz_max_ps(__mmask16(0xFFFF), lo, x);
        return vfloat(_mm512_maskz_min_ps(__mmask16(0xFFFF), hi, m));
    }
#endif
    return xsimd::min(hi, xsimd::max(lo, x));
}

/// Sum of the lanes of `v`.
TYPENET_INLINE float hsum(const vfloat& v) noexcept { return xsimd::hadd(v); }

/// Round `n` up to a multiple of `m`.
constexpr std::size_t round_up(std::size_t n, std::size_t m) noexcept { return (n + m - 1) / m * m; }

/// Ceiling of `a / b`.
constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept { return (a + b - 1) / b; }

}  // namespace detail
}  // namespace typenet::kernels
