/// @file core/example.hpp
/// One example of a dataset, as transforms see it.
#pragma once

#include <cstdint>
#include <string>

#include "typenet/core/tensor.hpp"

namespace typenet {

/// One (image, label) example.
///
/// `image` is HWC float32: decoded images hold pixel values 0..255 until a transform
/// rescales them (`Scale<255>` gives [0, 1]). `label` is the class index (-1 when
/// unlabelled). `target` is what a loss compares the model's output with: empty until
/// a transform such as `OneHot<3>` fills it; batching uses the one-hot target when
/// present, otherwise the index. `source` names where the example came from (a file
/// path), for error messages and reports.
struct Example {
    Tensor<3> image;
    std::int32_t label = -1;
    Tensor<1> target;
    std::string source;
};

}  // namespace typenet
