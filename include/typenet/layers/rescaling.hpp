/// @file layers/rescaling.hpp
/// `Rescaling<Scale, Offset>`: y = x * Scale + Offset (as Keras's Rescaling layer).
#pragma once

#include <cstddef>
#include <string>

#include "typenet/core/layer.hpp"

namespace typenet {

/// Element-wise affine map with fixed constants, e.g. `Rescaling<2.0f, -1.0f>` maps
/// images in [0, 1] to [-1, 1] (what MobileNetV2 expects). It takes any rank; give
/// `Rank` to fix it (needed when it is the first layer of a Sequential).
template <float Scale, float Offset = 0.0f, std::size_t Rank = any_rank>
struct Rescaling {
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;

    std::string name() const { return "Rescaling"; }
    std::string config() const { return "scale=" + std::to_string(Scale) + " offset=" + std::to_string(Offset); }

    template <std::size_t N>
    Shape<N> output_shape(const Shape<N>& in) const {
        return in;
    }
    template <std::size_t N>
    void forward(const Tensor<N>& x, Tensor<N>& y, const Context&) {
        const float* xs = x.data();
        float* ys = y.data();
        const std::size_t n = x.size();
        for (std::size_t i = 0; i < n; ++i) ys[i] = xs[i] * Scale + Offset;
    }
    template <std::size_t N>
    void backward(const Tensor<N>&, const Tensor<N>&, const Tensor<N>& dy, Tensor<N>* dx, const Context&) {
        if (!dx) return;
        const float* g = dy.data();
        float* d = dx->data();
        for (std::size_t i = 0; i < dy.size(); ++i) d[i] = g[i] * Scale;
    }
};

}  // namespace typenet
