/// @file layers/conv_op.hpp
/// The weights and kernel dispatch shared by the convolution layers (Conv2D,
/// DepthwiseConv2D, and the fused convolution + batch norm of MobileNetV2), with
/// settings chosen at run time.
///
/// Weight layouts are TensorFlow's: a full convolution's kernel is HWIO
/// `[kh, kw, in, out]`, a depthwise kernel `[kh, kw, channels, 1]`. A 1x1 stride-1
/// convolution is a matrix product of the (N*H*W) x in activations with the in x out
/// kernel and runs on the gemm kernel; depthwise runs on the direct NHWC kernel; a
/// convolution of an input with few channels (an image) on the direct kernel of
/// kernels/conv_direct.hpp; any other convolution on im2col + gemm.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/core/init.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/kernels/conv2d.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/layers/padding.hpp"

namespace typenet::detail {

/// What a convolution computes.
struct ConvSpec {
    std::size_t filters = 0;  ///< output channels (ignored for depthwise: = input channels)
    std::size_t kernel = 1;   ///< square kernel extent
    std::size_t stride = 1;
    Padding padding = Padding::Same;
    bool depthwise = false;
    /// Map applied to the input values as they are read (`x * scale + offset`, the
    /// padding zero after it): a rescaling folded into the convolution. Full
    /// convolutions only.
    kernels::InputMap input{};

    std::string describe() const {
        std::string s = std::string(depthwise ? "depthwise " : "") + std::to_string(kernel) + "x" +
                        std::to_string(kernel) + " stride " + std::to_string(stride) +
                        (padding == Padding::Same ? " same" : " valid") +
                        (depthwise ? "" : " filters " + std::to_string(filters));
        if (!input.identity())
            s += " input x*" + format_number(input.scale) + (input.offset < 0 ? "" : "+") + format_number(input.offset);
        return s;
    }

private:
    static std::string format_number(float v) {
        std::ostringstream os;
        os << v;
        return os.str();
    }
};

/// A convolution's weights (and their gradient) and the calls into the kernels.
class ConvOp {
public:
    ConvSpec spec;
    Tensor<4> kernel, dkernel;  ///< HWIO, or [kh, kw, C, 1] for depthwise
    std::size_t in_channels = 0;

    ConvOp() = default;
    explicit ConvOp(ConvSpec s) : spec(s) {}

    bool built() const noexcept { return in_channels != 0; }
    std::size_t out_channels() const noexcept { return spec.depthwise ? in_channels : spec.filters; }
    /// A 1x1 stride-1 convolution without input map: a plain matrix product.
    bool pointwise() const noexcept {
        return !spec.depthwise && spec.kernel == 1 && spec.stride == 1 && spec.input.identity();
    }

    /// Allocate the kernel for `cin` input channels, Glorot-uniform (Keras's fans).
    void build(std::size_t cin, Rng& rng) {
        if (spec.depthwise && !spec.input.identity())
            throw config_error("convolution: an input map is only supported by full convolutions, not depthwise");
        in_channels = cin;
        const std::size_t k = spec.kernel;
        const std::size_t cout = spec.depthwise ? 1 : spec.filters;
        kernel.resize({k, k, cin, cout});
        dkernel = zeros<4>({k, k, cin, cout});
        init::glorot_uniform(kernel.data(), kernel.size(), k * k * cin, k * k * cout, rng);
    }

    /// Geometry for input `in` (NHWC); throws shape_error when it does not fit.
    kernels::ConvGeometry geometry(const Shape<4>& in, const std::string& who) const {
        if (built() && in[3] != in_channels)
            throw shape_error(who + ": input has " + std::to_string(in[3]) + " channels, the layer was built for " +
                              std::to_string(in_channels));
        const std::size_t k = spec.kernel, s = spec.stride;
        if (spec.padding == Padding::Valid && (in[1] < k || in[2] < k))
            throw shape_error(who + ": input " + std::to_string(in[1]) + "x" + std::to_string(in[2]) +
                              " is smaller than the " + std::to_string(k) + "x" + std::to_string(k) +
                              " kernel with valid padding");
        return spec.padding == Padding::Same ? kernels::ConvGeometry::same(in[0], in[1], in[2], in[3], k, k, s, s)
                                             : kernels::ConvGeometry::valid(in[0], in[1], in[2], in[3], k, k, s, s);
    }

    Shape<4> output_shape(const Shape<4>& in, const std::string& who) const {
        const auto g = geometry(in, who);
        return {in[0], g.oh, g.ow, spec.depthwise ? in[3] : spec.filters};
    }

    /// y = epilogue(conv(x, w)), with `w` laid out as `kernel` (possibly folded weights).
    void forward(const kernels::ConvGeometry& g, const float* x, const float* w, float* y,
                 const kernels::Epilogue& ep = {}) const {
        if (spec.depthwise) {
            kernels::depthwise_forward(g, x, w, y, ep);
        } else if (pointwise()) {
            const std::size_t m = g.n * g.h * g.w;
            kernels::gemm(kernels::Trans::No, kernels::Trans::No, m, spec.filters, g.c, x, g.c, w, spec.filters, y,
                          spec.filters, ep);
        } else {
            kernels::conv2d_forward(g, spec.filters, x, w, y, ep, spec.input);
        }
    }

    /// dx = d conv / d x applied to dz.
    void backward_input(const kernels::ConvGeometry& g, const float* dz, const float* w, float* dx) const {
        if (spec.depthwise) {
            kernels::depthwise_backward_input(g, dz, w, dx);
        } else if (pointwise()) {
            const std::size_t m = g.n * g.h * g.w;
            kernels::gemm(kernels::Trans::No, kernels::Trans::Yes, m, g.c, spec.filters, dz, spec.filters, w,
                          spec.filters, dx, g.c);
        } else {
            kernels::conv2d_backward_input(g, spec.filters, dz, w, dx, spec.input);
        }
    }

    /// dw = d conv / d w applied to dz (overwrites dw).
    void backward_weight(const kernels::ConvGeometry& g, const float* x, const float* dz, float* dw) const {
        if (spec.depthwise) {
            kernels::depthwise_backward_weight(g, x, dz, dw);
        } else if (pointwise()) {
            const std::size_t m = g.n * g.h * g.w;
            kernels::gemm(kernels::Trans::Yes, kernels::Trans::No, g.c, spec.filters, m, x, g.c, dz, spec.filters,
                          dw, spec.filters);
        } else {
            kernels::conv2d_backward_weight(g, spec.filters, x, dz, dw, false, spec.input);
        }
    }
};

}  // namespace typenet::detail
