/// @file config.hpp
/// Configuration macros of typenet, all in one place.
///
/// Define any of these before including a typenet header (or on the compiler
/// command line) to change the default.
///
/// | macro                      | default | meaning                                                   |
/// |----------------------------|---------|-----------------------------------------------------------|
/// | `TYPENET_NO_OPENMP`        | off     | never use OpenMP even when the compiler enables it        |
/// | `TYPENET_ALIGNMENT`        | 64      | byte alignment of kernel workspaces                       |
/// | `TYPENET_DEFAULT_SEED`     | 42      | seed used where the user gives none                       |
/// | `TYPENET_DATA_ENV`         | "TYPENET_DATA" | environment variable naming the data folder        |
/// | `TYPENET_DEFAULT_DATA_DIR` | "../shared"    | data folder when the variable is unset (if it exists; core/paths.hpp) |
/// | `TYPENET_L2_CACHE_BYTES`   | 0       | per-core L2 size the kernels plan for; 0: read at run time (kernels/cache.hpp) |
/// | `TYPENET_STREAM_PREFETCH_BYTES` | 2048 | how far ahead the training passes that stream rows from memory prefetch them; 0: not at all (kernels/simd.hpp) |
#pragma once

#include <cstddef>

#define TYPENET_VERSION_MAJOR 0
#define TYPENET_VERSION_MINOR 1
#define TYPENET_VERSION_PATCH 0
#define TYPENET_VERSION_STRING "0.1.0"

#if defined(_OPENMP) && !defined(TYPENET_NO_OPENMP)
#define TYPENET_HAS_OPENMP 1
#include <omp.h>
#else
#define TYPENET_HAS_OPENMP 0
#endif

#ifndef TYPENET_ALIGNMENT
#define TYPENET_ALIGNMENT 64
#endif

#ifndef TYPENET_DEFAULT_SEED
#define TYPENET_DEFAULT_SEED 42
#endif

#ifndef TYPENET_DATA_ENV
#define TYPENET_DATA_ENV "TYPENET_DATA"
#endif

#ifndef TYPENET_DEFAULT_DATA_DIR
#define TYPENET_DEFAULT_DATA_DIR "../shared"
#endif

#ifndef TYPENET_L2_CACHE_BYTES
#define TYPENET_L2_CACHE_BYTES 0
#endif

#ifndef TYPENET_STREAM_PREFETCH_BYTES
#define TYPENET_STREAM_PREFETCH_BYTES 2048
#endif

/// Pragmas that only mean something with OpenMP; empty otherwise.
#if TYPENET_HAS_OPENMP
#define TYPENET_PRAGMA(x) _Pragma(#x)
#define TYPENET_OMP(x) TYPENET_PRAGMA(omp x)
#else
#define TYPENET_OMP(x)
#endif

#if defined(__GNUC__)
#define TYPENET_RESTRICT __restrict__
#define TYPENET_INLINE inline __attribute__((always_inline))
/// After a lambda's parameter list: always inline it (for per-vector callbacks of kernel
/// loops, which GCC otherwise may leave as a call per vector).
#define TYPENET_INLINE_LAMBDA __attribute__((always_inline))
#else
#define TYPENET_RESTRICT
#define TYPENET_INLINE inline
#define TYPENET_INLINE_LAMBDA
#endif

namespace typenet {

/// Number of threads kernels may use (OpenMP's current setting, or 1).
inline int max_threads() noexcept {
#if TYPENET_HAS_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Set the number of threads kernels use (no-op without OpenMP).
inline void set_num_threads(int n) noexcept {
#if TYPENET_HAS_OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

}  // namespace typenet
