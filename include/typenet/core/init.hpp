/// @file core/init.hpp
/// Weight initialisers (Keras's defaults).
#pragma once

#include <cmath>
#include <cstddef>

#include "typenet/core/random.hpp"

namespace typenet::init {

/// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); Keras's default for kernels.
inline void glorot_uniform(float* w, std::size_t n, std::size_t fan_in, std::size_t fan_out, Rng& rng) {
    const float limit = std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
    for (std::size_t i = 0; i < n; ++i) w[i] = rng.uniform(-limit, limit);
}

/// He (Kaiming) normal: N(0, 2 / fan_in), for ReLU networks.
inline void he_normal(float* w, std::size_t n, std::size_t fan_in, Rng& rng) {
    const float sd = std::sqrt(2.0f / static_cast<float>(fan_in));
    for (std::size_t i = 0; i < n; ++i) w[i] = sd * rng.normal();
}

/// All zeros (Keras's default for biases).
inline void zeros(float* w, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) w[i] = 0.0f;
}

}  // namespace typenet::init
