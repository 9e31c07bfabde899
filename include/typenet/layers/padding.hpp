/// @file layers/padding.hpp
/// Padding of convolutions, with TensorFlow's rules.
#pragma once

namespace typenet {

/// `Same`: output size ceil(input / stride), zeros added around the input; for an
/// even input and stride 2 the odd padding pixel goes to the bottom/right (0 top/left,
/// 1 bottom/right for a 3x3 kernel), exactly as TensorFlow does. `Valid`: no padding.
enum class Padding { Same, Valid };

}  // namespace typenet
