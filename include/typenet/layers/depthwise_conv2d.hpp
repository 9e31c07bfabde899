/// @file layers/depthwise_conv2d.hpp
/// `DepthwiseConv2D<Kernel, Stride, Padding, UseBias>`: one filter per channel.
#pragma once

#include <cstddef>
#include <string>

#include "typenet/layers/conv_layer.hpp"

namespace typenet {

/// Depthwise convolution (channel multiplier 1): each channel convolved with its own
/// `Kernel` x `Kernel` filter, kernel `[Kernel, Kernel, channels, 1]` as TensorFlow
/// stores it. Runs on the direct NHWC depthwise kernel (3x3 has a fast path).
template <std::size_t Kernel = 3, std::size_t Stride = 1, Padding Pad = Padding::Same, bool UseBias = true>
class DepthwiseConv2D : public detail::ConvLayer<true, 0, Kernel, Stride, Pad, UseBias> {
public:
    std::string name() const { return "DepthwiseConv2D"; }
};

}  // namespace typenet
