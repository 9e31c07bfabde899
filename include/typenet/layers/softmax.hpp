/// @file layers/softmax.hpp
/// `Softmax` over the last axis, as an activation and as a layer.
#pragma once

#include <cmath>

#include "typenet/config.hpp"
#include "typenet/layers/activation.hpp"

namespace typenet {

/// y_i = exp(x_i - max x) / sum_j exp(x_j - max x), over the last axis.
struct Softmax : ActivationLayer<Softmax> {
    static constexpr bool outputs_probabilities = true;

    static void apply(const float* x, float* y, std::size_t rows, std::size_t cols) {
        TYPENET_OMP(parallel for if (rows * cols > (1u << 16)) schedule(static))
        for (std::size_t r = 0; r < rows; ++r) {
            const float* xr = x + r * cols;
            float* yr = y + r * cols;
            float m = xr[0];
            for (std::size_t c = 1; c < cols; ++c) m = xr[c] > m ? xr[c] : m;
            double sum = 0.0;
            for (std::size_t c = 0; c < cols; ++c) {
                yr[c] = std::exp(xr[c] - m);
                sum += yr[c];
            }
            const float inv = static_cast<float>(1.0 / sum);
            for (std::size_t c = 0; c < cols; ++c) yr[c] *= inv;
        }
    }
    /// dx = y * (dy - sum(dy * y)).
    static void gradient(const float* y, const float* dy, float* dx, std::size_t rows, std::size_t cols) {
        TYPENET_OMP(parallel for if (rows * cols > (1u << 16)) schedule(static))
        for (std::size_t r = 0; r < rows; ++r) {
            const float* yr = y + r * cols;
            const float* gr = dy + r * cols;
            float* dr = dx + r * cols;
            double dot = 0.0;
            for (std::size_t c = 0; c < cols; ++c) dot += static_cast<double>(gr[c]) * yr[c];
            const float d = static_cast<float>(dot);
            for (std::size_t c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - d);
        }
    }
};

}  // namespace typenet
