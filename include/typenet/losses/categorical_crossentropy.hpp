/// @file losses/categorical_crossentropy.hpp
/// `CategoricalCrossentropy<FromLogits>`: cross-entropy against one-hot targets.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "typenet/core/tensor.hpp"
#include "typenet/losses/crossentropy_checks.hpp"
#include "typenet/losses/loss.hpp"

namespace typenet {

/// Cross-entropy -sum_c t_c log p_c, averaged over the batch, for targets `t` given as
/// one-hot (or any distribution) rows.
///
/// - `FromLogits = false` (default): `pred` holds probabilities (a softmax output);
///   they are clipped to [1e-7, 1 - 1e-7] as Keras does.
/// - `FromLogits = true`: `pred` holds logits; the loss applies log-softmax itself
///   with the log-sum-exp trick, which is the numerically stable choice.
/// Mixing them up is refused: at compile time in `train_step` when the model's type
/// shows a softmax, and at run time from the values on the first batch.
template <bool FromLogits = false>
class CategoricalCrossentropy {
public:
    static constexpr bool from_logits = FromLogits;
    static constexpr bool expects_probabilities = !FromLogits;
    static constexpr float epsilon = 1e-7f;

    std::string name() const { return "categorical_crossentropy"; }

    float forward(const Tensor<2>& pred, const Tensor<2>& target) {
        require_shape(target, shape_of(pred), "CategoricalCrossentropy: targets");
        check_once(pred);
        const std::size_t n = pred.shape()[0], k = pred.shape()[1];
        double total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const float* p = pred.data() + i * k;
            const float* t = target.data() + i * k;
            if constexpr (FromLogits) {
                const double lse = log_sum_exp(p, k);
                for (std::size_t c = 0; c < k; ++c) total += t[c] * (lse - p[c]);
            } else {
                for (std::size_t c = 0; c < k; ++c)
                    if (t[c] != 0.0f) total -= t[c] * std::log(std::clamp(p[c], epsilon, 1.0f - epsilon));
            }
        }
        return n ? static_cast<float>(total / static_cast<double>(n)) : 0.0f;
    }

    void backward(const Tensor<2>& pred, const Tensor<2>& target, Tensor<2>& grad) {
        const std::size_t n = pred.shape()[0], k = pred.shape()[1];
        const float inv_n = n ? 1.0f / static_cast<float>(n) : 0.0f;
        for (std::size_t i = 0; i < n; ++i) {
            const float* p = pred.data() + i * k;
            const float* t = target.data() + i * k;
            float* g = grad.data() + i * k;
            if constexpr (FromLogits) {
                // d/dz [sum_c t_c (lse(z) - z_c)] = softmax(z) * sum(t) - t
                const double lse = log_sum_exp(p, k);
                double tsum = 0.0;
                for (std::size_t c = 0; c < k; ++c) tsum += t[c];
                for (std::size_t c = 0; c < k; ++c)
                    g[c] = static_cast<float>((std::exp(p[c] - lse) * tsum - t[c]) * inv_n);
            } else {
                for (std::size_t c = 0; c < k; ++c) {
                    const bool inside = p[c] > epsilon && p[c] < 1.0f - epsilon;
                    g[c] = inside ? -t[c] / p[c] * inv_n : 0.0f;
                }
            }
        }
    }

private:
    static double log_sum_exp(const float* z, std::size_t k) {
        float m = z[0];
        for (std::size_t c = 1; c < k; ++c) m = std::max(m, z[c]);
        double s = 0.0;
        for (std::size_t c = 0; c < k; ++c) s += std::exp(static_cast<double>(z[c]) - m);
        return m + std::log(s);
    }
    void check_once(const Tensor<2>& pred) {
        if (checked_) return;
        checked_ = true;
        if constexpr (FromLogits) detail::refuse_probabilities_as_logits(pred, "CategoricalCrossentropy");
        else detail::refuse_logits_as_probabilities(pred, "CategoricalCrossentropy");
    }
    bool checked_ = false;
};

}  // namespace typenet
