/// @file layers/relu.hpp
/// `ReLU`: max(x, 0), as an activation and as a layer.
#pragma once

#include "typenet/layers/clamp.hpp"

namespace typenet {

/// f(x) = max(x, 0).
struct ReLU : ActivationLayer<ReLU> {
    static void apply(const float* x, float* y, std::size_t rows, std::size_t cols) {
        detail::clamp_apply(x, y, rows * cols, 0.0f, detail::no_upper_bound);
    }
    static void gradient(const float* y, const float* dy, float* dx, std::size_t rows, std::size_t cols) {
        detail::clamp_gradient(y, dy, dx, rows * cols, 0.0f, detail::no_upper_bound);
    }
};

}  // namespace typenet
