/// @file layers/global_average_pooling2d.hpp
/// `GlobalAveragePooling2D`: (batch, h, w, c) -> (batch, c), the mean over h and w.
#pragma once

#include <cstddef>

#include "typenet/core/layer.hpp"
#include "typenet/kernels/elementwise.hpp"

namespace typenet {

/// Mean of each channel over the spatial positions of an NHWC image.
struct GlobalAveragePooling2D {
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 2;

    Shape<2> output_shape(const Shape<4>& in) const { return {in[0], in[3]}; }
    void forward(const Tensor<4>& x, Tensor<2>& y, const Context&) {
        kernels::global_avg_pool_forward(x.data(), x.shape()[0], x.shape()[1] * x.shape()[2], x.shape()[3], y.data());
    }
    void backward(const Tensor<4>& x, const Tensor<2>&, const Tensor<2>& dy, Tensor<4>* dx, const Context&) {
        if (dx)
            kernels::global_avg_pool_backward(dy.data(), x.shape()[0], x.shape()[1] * x.shape()[2], x.shape()[3],
                                              dx->data());
    }
};

}  // namespace typenet
