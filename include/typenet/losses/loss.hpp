/// @file losses/loss.hpp
/// The `Loss` concept.
///
/// A loss compares a batch of model outputs `pred` (batch, k) with targets `target`
/// (batch, k) (one-hot rows, or (batch, 1) class indices for the sparse losses):
/// - `float forward(const Tensor<2>& pred, const Tensor<2>& target)`: the loss,
///   averaged over the batch;
/// - `void backward(const Tensor<2>& pred, const Tensor<2>& target, Tensor<2>& grad)`:
///   d(forward) / d pred, written into `grad` (already shaped like `pred`).
/// A loss that takes logits (unnormalised scores) sets `static constexpr bool
/// from_logits = true`; `train_step` then refuses, at compile time, a model whose
/// last layer is a softmax (the reference tutorial's bug).
#pragma once

#include <concepts>

#include "typenet/core/tensor.hpp"

namespace typenet {

/// A loss function (see the file comment).
template <class L>
concept Loss = requires(L& l, const Tensor<2>& p, const Tensor<2>& t, Tensor<2>& g) {
    { l.forward(p, t) } -> std::convertible_to<float>;
    l.backward(p, t, g);
};

/// Does the loss expect logits?
template <class L>
constexpr bool loss_expects_logits() {
    if constexpr (requires { L::from_logits; }) return L::from_logits;
    else return false;
}

/// Does the loss take class indices ((batch, 1) targets) instead of one-hot rows?
template <class L>
constexpr bool loss_uses_sparse_targets() {
    if constexpr (requires { L::sparse_targets; }) return L::sparse_targets;
    else return false;
}

/// Does the loss expect probabilities (a cross-entropy without from_logits)?
template <class L>
constexpr bool loss_expects_probabilities() {
    if constexpr (requires { L::expects_probabilities; }) return L::expects_probabilities;
    else return false;
}

}  // namespace typenet
