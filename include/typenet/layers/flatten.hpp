/// @file layers/flatten.hpp
/// `Flatten`: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...).
#pragma once

#include <algorithm>
#include <cstddef>

#include "typenet/core/layer.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet {

/// Reshapes each example to a vector (row-major order, so NHWC becomes H, W, C order).
struct Flatten {
    static constexpr std::size_t input_rank = any_rank;
    static constexpr std::size_t output_rank = 2;

    template <std::size_t N>
    Shape<2> output_shape(const Shape<N>& in) const {
        static_assert(N >= 2, "typenet: Flatten needs a batch dimension and at least one more");
        std::size_t f = 1;
        for (std::size_t i = 1; i < N; ++i) f *= in[i];
        return {in[0], f};
    }
    template <std::size_t N>
    void forward(const Tensor<N>& x, Tensor<2>& y, const Context&) {
        std::copy(x.data(), x.data() + x.size(), y.data());
    }
    template <std::size_t N>
    void backward(const Tensor<N>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<N>* dx, const Context&) {
        if (dx) std::copy(dy.data(), dy.data() + dy.size(), dx->data());
    }
};

}  // namespace typenet
