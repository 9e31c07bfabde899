/// @file layers/dropout.hpp
/// `Dropout<Rate>`: inverted dropout, active only in training.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet {

/// Sets each value to 0 with probability `Rate` during training and scales the
/// others by 1 / (1 - Rate), so evaluation (where it is the identity) needs no
/// rescaling. The mask comes from the step's seed (`Context::seed`): the same model
/// seed and step give the same mask whatever the thread count.
template <float Rate>
class Dropout {
    static_assert(Rate >= 0.0f && Rate < 1.0f, "typenet: Dropout rate must be in [0, 1)");

public:
    static constexpr std::size_t input_rank = any_rank;
    static constexpr std::size_t output_rank = any_rank;
    static constexpr float rate = Rate;

    std::string name() const { return "Dropout"; }
    std::string config() const { return "rate=" + std::to_string(Rate); }

    template <std::size_t N>
    Shape<N> output_shape(const Shape<N>& in) const {
        return in;
    }

    template <std::size_t N>
    void forward(const Tensor<N>& x, Tensor<N>& y, const Context& ctx) {
        const std::size_t n = x.size();
        const float* xs = x.data();
        float* ys = y.data();
        active_ = ctx.training && Rate > 0.0f;
        if (!active_) {
            std::copy(xs, xs + n, ys);
            return;
        }
        mask_.resize(n);
        Rng rng(ctx.seed);
        const float keep = 1.0f / (1.0f - Rate);
        for (std::size_t i = 0; i < n; ++i) mask_[i] = rng.uniform() < Rate ? 0.0f : keep;
        for (std::size_t i = 0; i < n; ++i) ys[i] = xs[i] * mask_[i];
    }

    template <std::size_t N>
    void backward(const Tensor<N>&, const Tensor<N>&, const Tensor<N>& dy, Tensor<N>* dx, const Context&) {
        if (!dx) return;
        const std::size_t n = dy.size();
        const float* g = dy.data();
        float* d = dx->data();
        if (!active_) {
            std::copy(g, g + n, d);
            return;
        }
        for (std::size_t i = 0; i < n; ++i) d[i] = g[i] * mask_[i];
    }

private:
    std::vector<float> mask_;  ///< 0 or 1/(1-Rate) per value of the last training forward
    bool active_ = false;
};

}  // namespace typenet
