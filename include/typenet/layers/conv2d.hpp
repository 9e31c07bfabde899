/// @file layers/conv2d.hpp
/// `Conv2D<Filters, Kernel, Stride, Padding, UseBias>`: 2-D convolution over NHWC images.
#pragma once

#include <cstddef>
#include <string>

#include "typenet/layers/conv_layer.hpp"

namespace typenet {

/// A convolution with `Filters` output channels, a `Kernel` x `Kernel` window,
/// stride `Stride` and TensorFlow padding (`Padding::Same` is asymmetric for stride 2
/// on even inputs, as TensorFlow's). Kernel HWIO `[Kernel, Kernel, in, Filters]`,
/// Glorot-uniform; bias zeros (when `UseBias`). A 1x1 stride-1 convolution runs on
/// the gemm kernel, one reading at most 4 input channels (an image) on the direct
/// few-channel kernel, others on im2col + gemm. Input (batch, height, width, channels).
template <std::size_t Filters, std::size_t Kernel = 3, std::size_t Stride = 1, Padding Pad = Padding::Same,
          bool UseBias = true>
class Conv2D : public detail::ConvLayer<false, Filters, Kernel, Stride, Pad, UseBias> {
public:
    std::string name() const { return "Conv2D"; }
};

}  // namespace typenet
