/// @file metrics/metric.hpp
/// The `Metric` concept.
///
/// A metric accumulates over batches: `update(pred, target)` adds a batch (the same
/// tensors a loss sees), `result()` gives the value so far, `reset()` starts over,
/// `name()` names it in logs ("accuracy").
#pragma once

#include <concepts>
#include <string>

#include "typenet/core/tensor.hpp"

namespace typenet {

/// A metric (see the file comment).
template <class M>
concept Metric = requires(M& m, const M& cm, const Tensor<2>& p, const Tensor<2>& t) {
    m.update(p, t);
    { cm.result() } -> std::convertible_to<float>;
    m.reset();
    { cm.name() } -> std::convertible_to<std::string>;
};

}  // namespace typenet
