/// @file train/step.hpp
/// One training step and one evaluation step: the minimal training loop.
///
/// ```cpp
/// Adam opt;                                   // lr 1e-3
/// CategoricalCrossentropy<> loss;             // the model ends in Softmax
/// CategoricalAccuracy acc;
/// for (auto& [x, y] : batches) train_step(model, loss, opt, x, y, acc);
/// ```
/// `Model` is a `Sequential` (or anything with the same forward/backward/parameters
/// members). The loss and the model's last layer are checked against each other at
/// compile time: a from-logits loss after a softmax (the reference tutorial's bug),
/// or a probability loss after a plain `Dense`, does not compile.
#pragma once

#include <cstddef>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/losses/loss.hpp"
#include "typenet/metrics/metric.hpp"
#include "typenet/optimizers/optimizer.hpp"

namespace typenet {

/// Compile-time agreement of a loss and a model's output.
template <class Model, class L>
constexpr bool check_loss_matches_model() {
    constexpr bool probs = typenet::outputs_probabilities<Model>();
    constexpr bool logits = typenet::outputs_logits<Model>();
    static_assert(!(loss_expects_logits<L>() && probs),
                  "typenet: the loss expects logits (FromLogits = true) but the model ends in Softmax: use the loss "
                  "with FromLogits = false, or drop the Softmax");
    static_assert(!(loss_expects_probabilities<L>() && logits),
                  "typenet: the loss expects probabilities (FromLogits = false) but the model ends in a linear "
                  "layer (logits): use the loss with FromLogits = true, or end the model in Softmax");
    return !(loss_expects_logits<L>() && probs) && !(loss_expects_probabilities<L>() && logits);
}

/// Forward, loss, backward and one optimizer update on the batch (x, y); updates
/// `metrics` with this batch's outputs. Returns the batch's loss.
template <class Model, Loss L, Optimizer O, Metric... Ms>
float train_step(Model& model, L& loss, O& optimizer, const typename Model::input_type& x, const Tensor<2>& y,
                 Ms&... metrics) {
    [[maybe_unused]] constexpr bool agree = check_loss_matches_model<Model, L>();  // asserts inside
    static thread_local Tensor<2> grad;  // reused: no allocation per step once shaped
    const auto& out = model.forward(x, /*training=*/true);
    const float value = loss.forward(out, y);
    ensure_shape(grad, shape_of(out));
    loss.backward(out, y, grad);
    model.backward(grad);
    std::vector<ParamRef> params = model.parameters();
    optimizer.step(params);
    (metrics.update(out, y), ...);
    return value;
}

/// Forward in evaluation mode and the loss on the batch (x, y); updates `metrics`.
/// Returns the batch's loss.
template <class Model, Loss L, Metric... Ms>
float evaluate_step(Model& model, L& loss, const typename Model::input_type& x, const Tensor<2>& y,
                    Ms&... metrics) {
    [[maybe_unused]] constexpr bool agree = check_loss_matches_model<Model, L>();  // asserts inside
    const auto& out = model.forward(x, /*training=*/false);
    const float value = loss.forward(out, y);
    (metrics.update(out, y), ...);
    return value;
}

}  // namespace typenet
