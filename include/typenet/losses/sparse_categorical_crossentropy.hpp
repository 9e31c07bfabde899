/// @file losses/sparse_categorical_crossentropy.hpp
/// `SparseCategoricalCrossentropy<FromLogits>`: cross-entropy against class indices.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/losses/crossentropy_checks.hpp"
#include "typenet/losses/loss.hpp"

namespace typenet {

/// Cross-entropy -log p_y averaged over the batch, where the target is a (batch, 1)
/// tensor of class indices (stored as floats). `FromLogits` as in CategoricalCrossentropy.
template <bool FromLogits = false>
class SparseCategoricalCrossentropy {
public:
    static constexpr bool from_logits = FromLogits;
    static constexpr bool expects_probabilities = !FromLogits;
    static constexpr bool sparse_targets = true;
    static constexpr float epsilon = 1e-7f;

    std::string name() const { return "sparse_categorical_crossentropy"; }

    float forward(const Tensor<2>& pred, const Tensor<2>& target) {
        const std::size_t n = pred.shape()[0], k = pred.shape()[1];
        check(pred, target);
        double total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const float* p = pred.data() + i * k;
            const std::size_t y = label(target, i, k);
            if constexpr (FromLogits) total += log_sum_exp(p, k) - p[y];
            else total -= std::log(std::clamp(p[y], epsilon, 1.0f - epsilon));
        }
        return n ? static_cast<float>(total / static_cast<double>(n)) : 0.0f;
    }

    void backward(const Tensor<2>& pred, const Tensor<2>& target, Tensor<2>& grad) {
        const std::size_t n = pred.shape()[0], k = pred.shape()[1];
        const float inv_n = n ? 1.0f / static_cast<float>(n) : 0.0f;
        for (std::size_t i = 0; i < n; ++i) {
            const float* p = pred.data() + i * k;
            float* g = grad.data() + i * k;
            const std::size_t y = label(target, i, k);
            if constexpr (FromLogits) {
                const double lse = log_sum_exp(p, k);
                for (std::size_t c = 0; c < k; ++c)
                    g[c] = static_cast<float>((std::exp(p[c] - lse) - (c == y ? 1.0 : 0.0)) * inv_n);
            } else {
                for (std::size_t c = 0; c < k; ++c) g[c] = 0.0f;
                const bool inside = p[y] > epsilon && p[y] < 1.0f - epsilon;
                g[y] = inside ? -1.0f / p[y] * inv_n : 0.0f;
            }
        }
    }

private:
    static std::size_t label(const Tensor<2>& target, std::size_t i, std::size_t k) {
        const float v = target(i, 0);
        if (!(v >= 0.0f) || v != std::floor(v) || static_cast<std::size_t>(v) >= k)
            throw shape_error("SparseCategoricalCrossentropy: target " + std::to_string(v) + " of example " +
                              std::to_string(i) + " is not a class index in [0, " + std::to_string(k) + ")");
        return static_cast<std::size_t>(v);
    }
    static double log_sum_exp(const float* z, std::size_t k) {
        float m = z[0];
        for (std::size_t c = 1; c < k; ++c) m = std::max(m, z[c]);
        double s = 0.0;
        for (std::size_t c = 0; c < k; ++c) s += std::exp(static_cast<double>(z[c]) - m);
        return m + std::log(s);
    }
    void check(const Tensor<2>& pred, const Tensor<2>& target) {
        if (target.shape()[0] != pred.shape()[0] || target.shape()[1] != 1)
            throw shape_error("SparseCategoricalCrossentropy: targets must have shape " +
                              shape_to_string(Shape<2>{pred.shape()[0], 1}) + ", got " +
                              shape_to_string(shape_of(target)));
        if (checked_) return;
        checked_ = true;
        if constexpr (FromLogits) detail::refuse_probabilities_as_logits(pred, "SparseCategoricalCrossentropy");
        else detail::refuse_logits_as_probabilities(pred, "SparseCategoricalCrossentropy");
    }
    bool checked_ = false;
};

}  // namespace typenet
