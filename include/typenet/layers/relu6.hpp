/// @file layers/relu6.hpp
/// `ReLU6`: min(max(x, 0), 6), as an activation and as a layer (MobileNetV2's).
#pragma once

#include "typenet/layers/clamp.hpp"

namespace typenet {

/// f(x) = min(max(x, 0), 6).
struct ReLU6 : ActivationLayer<ReLU6> {
    static void apply(const float* x, float* y, std::size_t rows, std::size_t cols) {
        detail::clamp_apply(x, y, rows * cols, 0.0f, 6.0f);
    }
    static void gradient(const float* y, const float* dy, float* dx, std::size_t rows, std::size_t cols) {
        detail::clamp_gradient(y, dy, dx, rows * cols, 0.0f, 6.0f);
    }
};

}  // namespace typenet
