/// @file core/concepts.hpp
/// Index of typenet's concepts; each is specified in its own header and in docs/concepts.md.
///
/// | concept       | header                      | what it is                                        |
/// |---------------|-----------------------------|---------------------------------------------------|
/// | `Layer`       | core/layer.hpp              | forward, backward, output shape, train/eval mode  |
/// | `Trainable`   | core/parameter.hpp          | visits parameters with their gradients and names  |
/// | `Activation`  | layers/activation.hpp       | element-wise or row-wise function for Dense       |
/// | `Loss`        | losses/loss.hpp             | scalar loss of a batch and its gradient           |
/// | `Optimizer`   | optimizers/optimizer.hpp    | updates parameters from gradients                 |
/// | `Metric`      | metrics/metric.hpp          | accumulates a figure over batches                 |
/// | `Transform`   | data/transform.hpp          | changes an Example (decode, resize, augment)      |
#pragma once

#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/layers/activation.hpp"
#include "typenet/losses/loss.hpp"
#include "typenet/metrics/metric.hpp"
#include "typenet/optimizers/optimizer.hpp"
