/// @file layers/activation.hpp
/// Activation functions: the `Activation` concept and the base that turns one into a layer.
///
/// An activation is a type with two static functions over a row-major block of
/// `rows` x `cols` values (rows = everything but the last axis):
/// - `apply(x, y, rows, cols)`: y = f(x) (y may alias x);
/// - `gradient(y, dy, dx, rows, cols)`: dx = dy * f'(x), computed from the output y
///   (dx may alias dy).
///
/// `Dense<Units, A>` applies one after its affine map; `ActivationLayer<A>` makes it a
/// layer of any rank (ReLU, ReLU6, Softmax are both). An activation whose output is a
/// probability distribution sets `static constexpr bool outputs_probabilities = true`,
/// which lets a loss that expects logits refuse it at compile time.
#pragma once

#include <concepts>
#include <cstddef>

#include "typenet/core/layer.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet {

/// A type usable as `Dense`'s activation.
template <class A>
concept Activation = requires(const float* x, float* y, std::size_t n) {
    A::apply(x, y, n, n);
    A::gradient(x, x, y, n, n);
};

/// Makes an activation `A` (the derived class, CRTP) a layer of any rank.
template <class A>
struct ActivationLayer {
    static constexpr std::size_t input_rank = any_rank;
    static constexpr std::size_t output_rank = any_rank;

    template <std::size_t N>
    Shape<N> output_shape(const Shape<N>& in) const {
        return in;
    }
    template <std::size_t N>
    void forward(const Tensor<N>& x, Tensor<N>& y, const Context&) {
        const auto [rows, cols] = split(x);
        A::apply(x.data(), y.data(), rows, cols);
    }
    template <std::size_t N>
    void backward(const Tensor<N>& x, const Tensor<N>& y, const Tensor<N>& dy, Tensor<N>* dx, const Context&) {
        if (!dx) return;
        const auto [rows, cols] = split(x);
        A::gradient(y.data(), dy.data(), dx->data(), rows, cols);
    }

private:
    template <std::size_t N>
    static std::pair<std::size_t, std::size_t> split(const Tensor<N>& x) {
        const std::size_t cols = N ? x.shape()[N - 1] : 1;
        return {cols ? x.size() / cols : 0, cols};
    }
};

}  // namespace typenet
