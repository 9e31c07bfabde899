/// @file kernels/cache.hpp
/// The size of the CPU's per-core L2 cache, read once at run time, for the kernels
/// whose working sets are sized to stay in it (the fused inverted-residual block's
/// row buffers).
///
/// Read with `sysconf(_SC_LEVEL2_CACHE_SIZE)` where the C library provides it (glibc
/// on x86 asks CPUID); `TYPENET_L2_CACHE_BYTES` (config.hpp) overrides it, and where
/// neither gives a size, 1 MB is assumed. Seen here: 2 MB per core on an AVX-512 Xeon
/// (Sapphire / Emerald Rapids class), 512 KB on an AMD EPYC (Zen 3).
#pragma once

#include <cstddef>

#include "typenet/config.hpp"

#if defined(__has_include)
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif
#endif

namespace typenet::kernels {

/// Bytes of L2 cache per core (see the file comment); computed on the first call.
inline std::size_t l2_cache_bytes() noexcept {
    static const std::size_t bytes = [] {
        if (TYPENET_L2_CACHE_BYTES > 0) return std::size_t(TYPENET_L2_CACHE_BYTES);
#if defined(_SC_LEVEL2_CACHE_SIZE)
        const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
        // Sizes outside 64 KB .. 64 MB are not a per-core L2 (some hypervisors report 0
        // or a whole cache hierarchy's size): use the default then.
        if (v >= (64L << 10) && v <= (64L << 20)) return std::size_t(v);
#endif
        return std::size_t(1) << 20;
    }();
    return bytes;
}

/// Bytes from which a training step's tensors (the pre-normalisation outputs kept for the
/// backward, the input gradients) are written with non-temporal stores
/// (`use_streaming_stores`' threshold): 4x the L2 size. Past the L2 caches a later pass reads
/// them from memory anyway, and streaming spares the stores the reads of their lines.
inline std::size_t training_stream_bytes() noexcept { return 4 * l2_cache_bytes(); }

}  // namespace typenet::kernels
