/// @file layers/conv_layer.hpp
/// The layer interface shared by Conv2D and DepthwiseConv2D: a `ConvOp` plus an
/// optional bias, settings fixed at compile time.
#pragma once

#include <cstddef>
#include <string>

#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/layers/conv_op.hpp"

namespace typenet::detail {

template <bool Depthwise, std::size_t Filters, std::size_t Kernel, std::size_t Stride, Padding Pad, bool UseBias>
class ConvLayer {
    static_assert(Kernel > 0 && Stride > 0, "typenet: a convolution needs a positive kernel and stride");
    static_assert(Depthwise || Filters > 0, "typenet: Conv2D needs at least one filter");

public:
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;

    ConvLayer() : op_(ConvSpec{Filters, Kernel, Stride, Pad, Depthwise}) {}

    std::string config() const { return op_.spec.describe() + (UseBias ? " bias" : ""); }

    Shape<4> output_shape(const Shape<4>& in) const { return op_.output_shape(in, who()); }

    void build(const Shape<4>& in, Rng& rng) {
        op_.build(in[3], rng);
        if constexpr (UseBias) {
            bias_ = zeros<1>({op_.out_channels()});
            dbias_ = zeros<1>({op_.out_channels()});
        }
    }

    void forward(const Tensor<4>& x, Tensor<4>& y, const Context&) {
        const auto g = op_.geometry(shape_of(x), who());
        kernels::Epilogue ep;
        if constexpr (UseBias) ep.bias = bias_.data();
        op_.forward(g, x.data(), op_.kernel.data(), y.data(), ep);
    }

    void backward(const Tensor<4>& x, const Tensor<4>&, const Tensor<4>& dy, Tensor<4>* dx, const Context& ctx) {
        const auto g = op_.geometry(shape_of(x), who());
        if (ctx.trainable) {
            op_.backward_weight(g, x.data(), dy.data(), op_.dkernel.data());
            if constexpr (UseBias)
                kernels::column_sums(dy.data(), g.n * g.oh * g.ow, op_.out_channels(), dbias_.data());
        }
        if (dx) op_.backward_input(g, dy.data(), op_.kernel.data(), dx->data());
    }

    void visit_parameters(ParamVisitor f) {
        ParamRef k = param_ref(Depthwise ? "depthwise_kernel" : "kernel", op_.kernel, op_.dkernel);
        f(k);
        if constexpr (UseBias) {
            ParamRef b = param_ref("bias", bias_, dbias_);
            f(b);
        }
    }

    /// Kernel: HWIO for Conv2D, [k, k, channels, 1] for DepthwiseConv2D.
    Tensor<4>& kernel() noexcept { return op_.kernel; }
    /// Bias (empty without UseBias).
    Tensor<1>& bias() noexcept { return bias_; }

private:
    static std::string who() { return Depthwise ? "DepthwiseConv2D" : "Conv2D"; }
    ConvOp op_;
    Tensor<1> bias_, dbias_;
};

}  // namespace typenet::detail
