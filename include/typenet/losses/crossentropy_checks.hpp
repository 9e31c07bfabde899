/// @file losses/crossentropy_checks.hpp
/// Run-time checks that a cross-entropy receives what it expects.
///
/// The compile-time guard (in `train_step`) catches a softmax model paired with a
/// from-logits loss when the model's type says so; these checks catch the rest from
/// the values themselves, once, on the first batch a loss object sees.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet::detail {

/// Throws config_error when every row of `pred` is a probability distribution (values
/// in [0, 1] summing to 1): a from-logits loss would then silently train wrongly.
inline void refuse_probabilities_as_logits(const Tensor<2>& pred, const char* loss) {
    const std::size_t n = pred.shape()[0], k = pred.shape()[1];
    if (n == 0 || k < 2) return;
    for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < k; ++j) {
            const float v = pred(i, j);
            if (!(v >= 0.0f && v <= 1.0f)) return;
            s += v;
        }
        if (std::abs(s - 1.0) > 1e-4) return;
    }
    throw config_error(std::string(loss) +
                       "<FromLogits = true> received probabilities (every row is in [0, 1] and sums to 1): the model "
                       "already ends in a softmax. Use FromLogits = false, or remove the softmax.");
}

/// Throws config_error when `pred` has values outside [0, 1]: a probability loss was given logits.
inline void refuse_logits_as_probabilities(const Tensor<2>& pred, const char* loss) {
    const float* p = pred.data();
    for (std::size_t i = 0; i < pred.size(); ++i) {
        if (!(p[i] >= 0.0f && p[i] <= 1.0f)) {
            if (std::isnan(p[i])) return;  // NaN is the numeric guard's business
            throw config_error(std::string(loss) + "<FromLogits = false> received a value outside [0, 1] (" +
                               std::to_string(p[i]) +
                               "): the model outputs logits. Use FromLogits = true, or end the model in Softmax.");
        }
    }
}

}  // namespace typenet::detail
