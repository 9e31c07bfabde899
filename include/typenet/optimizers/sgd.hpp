/// @file optimizers/sgd.hpp
/// `SGD`: stochastic gradient descent with optional momentum and Nesterov momentum.
#pragma once

#include <cstddef>
#include <vector>

#include "typenet/optimizers/optimizer.hpp"

namespace typenet {

namespace detail {
struct VelocityState {
    std::size_t size = 0;
    std::vector<float> velocity;
};
}  // namespace detail

/// Keras's SGD: without momentum w -= lr g; with momentum m,
/// v = m v - lr g, then w += v (or, with Nesterov, w += m v - lr g).
class SGD : public OptimizerBase<SGD, detail::VelocityState> {
public:
    explicit SGD(float learning_rate = 0.01f, float momentum = 0.0f, bool nesterov = false)
        : OptimizerBase(learning_rate), momentum_(momentum), nesterov_(nesterov) {
        if (!(momentum >= 0.0f && momentum < 1.0f)) throw config_error("SGD: momentum must be in [0, 1)");
    }
    float momentum() const noexcept { return momentum_; }
    bool nesterov() const noexcept { return nesterov_; }

    void init_state(detail::VelocityState& s, std::size_t n) {
        s.size = n;
        s.velocity.assign(n, 0.0f);
    }
    void update(detail::VelocityState& s, float* w, const float* g, std::size_t n, float lr, float gscale) {
        if (momentum_ == 0.0f) {
            detail::update_ranges(n, [&](std::size_t i0, std::size_t i1) {
                for (std::size_t i = i0; i < i1; ++i) w[i] -= lr * (g[i] * gscale);
            });
            return;
        }
        float* v = s.velocity.data();
        const float m = momentum_;
        const bool nesterov = nesterov_;
        detail::update_ranges(n, [&](std::size_t i0, std::size_t i1) {
            for (std::size_t i = i0; i < i1; ++i) {
                const float gi = g[i] * gscale;
                v[i] = m * v[i] - lr * gi;
                w[i] += nesterov ? m * v[i] - lr * gi : v[i];
            }
        });
    }

private:
    float momentum_;
    bool nesterov_;
};

}  // namespace typenet
