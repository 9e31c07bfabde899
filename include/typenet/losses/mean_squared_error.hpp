/// @file losses/mean_squared_error.hpp
/// `MeanSquaredError`: mean of (pred - target)^2 over all values.
#pragma once

#include <cstddef>
#include <string>

#include "typenet/core/tensor.hpp"
#include "typenet/losses/loss.hpp"

namespace typenet {

/// Mean over the batch of the mean over outputs of (pred - target)^2 (Keras's definition).
struct MeanSquaredError {
    std::string name() const { return "mean_squared_error"; }

    float forward(const Tensor<2>& pred, const Tensor<2>& target) const {
        require_shape(target, shape_of(pred), "MeanSquaredError: targets");
        double s = 0.0;
        for (std::size_t i = 0; i < pred.size(); ++i) {
            const double d = static_cast<double>(pred.data()[i]) - target.data()[i];
            s += d * d;
        }
        return pred.size() ? static_cast<float>(s / static_cast<double>(pred.size())) : 0.0f;
    }
    void backward(const Tensor<2>& pred, const Tensor<2>& target, Tensor<2>& grad) const {
        const float scale = pred.size() ? 2.0f / static_cast<float>(pred.size()) : 0.0f;
        for (std::size_t i = 0; i < pred.size(); ++i) grad.data()[i] = scale * (pred.data()[i] - target.data()[i]);
    }
};

}  // namespace typenet
