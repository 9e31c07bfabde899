/// @file kernels/channel_map.hpp
/// `ChannelMap`: a per-channel affine map with a clamp that a kernel applies to its input
/// as it reads it, so that the previous layer's activation need not be stored.
#pragma once

#include <cmath>
#include <cstddef>

#include "typenet/kernels/simd.hpp"

namespace typenet::kernels {

/// A per-channel affine map with a clamp, applied to a kernel's input as it reads it:
/// `x' = min(max(x * scale[ch] + shift[ch], lo), hi)`: the previous layer's batch norm and
/// ReLU6, whose activation is then never stored. Kernels apply it with the same fma and clamp
/// as `scale_shift`, so the same bits as the stored activation would have.
struct ChannelMap {
    const float* scale = nullptr;
    const float* shift = nullptr;
    float lo = -INFINITY, hi = INFINITY;
};

namespace detail {

/// `dst` (n x c, contiguous) = map(rows of `src`, leading dimension `lds`): a
/// `ChannelMap` over the c columns, the same fma and clamp as `scale_shift`.
inline void map_rows(const ChannelMap& m, const float* src, std::size_t lds, std::size_t c, std::size_t n,
                     float* dst) noexcept {
    constexpr std::size_t W = simd_width;
    const vfloat lo(m.lo), hi(m.hi);
    // The rows usually stream from memory (a pre-normalisation tensor): prefetched ahead.
    const std::size_t ahead = stream_prefetch_rows(c * sizeof(float));
    for (std::size_t r = 0; r < n; ++r) {
        const float* s = src + r * lds;
        if (ahead) prefetch_span(s, ahead * lds * sizeof(float), c * sizeof(float));
        float* d = dst + r * c;
        std::size_t j = 0;
        for (; j + W <= c; j += W)
            clamp(xsimd::fma(vfloat::load_unaligned(s + j), vfloat::load_unaligned(m.scale + j),
                             vfloat::load_unaligned(m.shift + j)),
                  lo, hi)
                .store_unaligned(d + j);
        if (j < c)
            store_partial(d + j,
                          clamp(xsimd::fma(load_partial(s + j, c - j), load_partial(m.scale + j, c - j),
                                           load_partial(m.shift + j, c - j)),
                                lo, hi),
                          c - j);
    }
}

}  // namespace detail
}  // namespace typenet::kernels
