/// @file layers/clamp.hpp
/// Element-wise clamping shared by ReLU and ReLU6.
#pragma once

#include <cstddef>
#include <limits>

#include "typenet/config.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/layers/activation.hpp"

namespace typenet::detail {

inline constexpr float no_upper_bound = std::numeric_limits<float>::infinity();

/// y = min(max(x, lo), hi).
inline void clamp_apply(const float* x, float* y, std::size_t n, float lo, float hi) {
    TYPENET_OMP(parallel for simd if (n > (1u << 16)) schedule(static))
    for (std::size_t i = 0; i < n; ++i) {
        const float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

/// dx = dy where lo < y < hi, else 0 (y is the clamped output).
inline void clamp_gradient(const float* y, const float* dy, float* dx, std::size_t n, float lo, float hi) {
    kernels::clamp_backward(y, dy, dx, n, lo, hi);
}

}  // namespace typenet::detail
