/// @file layers/linear.hpp
/// `Linear`: the identity activation (Dense's default: it outputs logits).
#pragma once

#include <algorithm>

#include "typenet/layers/activation.hpp"

namespace typenet {

/// f(x) = x.
struct Linear : ActivationLayer<Linear> {
    static void apply(const float* x, float* y, std::size_t rows, std::size_t cols) {
        if (x != y) std::copy(x, x + rows * cols, y);
    }
    static void gradient(const float*, const float* dy, float* dx, std::size_t rows, std::size_t cols) {
        if (dx != dy) std::copy(dy, dy + rows * cols, dx);
    }
};

}  // namespace typenet
