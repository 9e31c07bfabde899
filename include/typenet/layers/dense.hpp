/// @file layers/dense.hpp
/// `Dense<Units, Activation>`: a fully connected layer, y = f(x W + b).
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "typenet/core/init.hpp"
#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/layers/activation.hpp"
#include "typenet/layers/linear.hpp"

namespace typenet {

/// Fully connected layer with `Units` outputs: y = A(x W + b), x of shape (batch,
/// features), W of shape (features, Units) initialised Glorot-uniform, b zeros.
/// `A` is an activation (Linear, ReLU, ReLU6, Softmax, or your own; see layers/activation.hpp).
template <std::size_t Units, Activation A = Linear>
class Dense {
    static_assert(Units > 0, "typenet: Dense needs at least one unit");

public:
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    static constexpr std::size_t units = Units;
    static constexpr bool outputs_probabilities = typenet::outputs_probabilities<A>();
    static constexpr bool outputs_logits = std::is_same_v<A, Linear>;
    using activation = A;

    std::string name() const { return "Dense"; }

    Shape<2> output_shape(const Shape<2>& in) const {
        if (built_ && in[1] != in_features())
            throw shape_error("Dense: input has " + std::to_string(in[1]) + " features, the layer was built for " +
                              std::to_string(in_features()));
        return {in[0], Units};
    }

    void build(const Shape<2>& in, Rng& rng) {
        kernel_.resize({in[1], Units});
        bias_.resize({Units});
        dkernel_ = zeros<2>({in[1], Units});
        dbias_ = zeros<1>({Units});
        init::glorot_uniform(kernel_.data(), kernel_.size(), in[1], Units, rng);
        init::zeros(bias_.data(), bias_.size());
        built_ = true;
    }

    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) {
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        kernels::Epilogue ep;
        ep.bias = bias_.data();
        kernels::gemm(kernels::Trans::No, kernels::Trans::No, n, Units, k, x.data(), k, kernel_.data(), Units,
                      y.data(), Units, ep);
        A::apply(y.data(), y.data(), n, Units);
    }

    void backward(const Tensor<2>& x, const Tensor<2>& y, const Tensor<2>& dy, Tensor<2>* dx, const Context& ctx) {
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        ensure_shape(dz_, shape_of(dy));
        A::gradient(y.data(), dy.data(), dz_.data(), n, Units);
        if (ctx.trainable) {
            // dW = x^T dz, db = column sums of dz
            kernels::gemm(kernels::Trans::Yes, kernels::Trans::No, k, Units, n, x.data(), k, dz_.data(), Units,
                          dkernel_.data(), Units);
            kernels::column_sums(dz_.data(), n, Units, dbias_.data());
        }
        if (dx) {
            // dx = dz W^T
            kernels::gemm(kernels::Trans::No, kernels::Trans::Yes, n, k, Units, dz_.data(), Units, kernel_.data(),
                          Units, dx->data(), k);
        }
    }

    template <class F>
    void visit_parameters(F&& f) {
        ParamRef k = param_ref("kernel", kernel_, dkernel_);
        f(k);
        ParamRef b = param_ref("bias", bias_, dbias_);
        f(b);
    }

    /// Weights (features x Units) and bias (Units).
    Tensor<2>& kernel() noexcept { return kernel_; }
    Tensor<1>& bias() noexcept { return bias_; }
    const Tensor<2>& kernel() const noexcept { return kernel_; }
    const Tensor<1>& bias() const noexcept { return bias_; }
    std::size_t in_features() const noexcept { return kernel_.shape()[0]; }

private:
    bool built_ = false;
    Tensor<2> kernel_, dkernel_;
    Tensor<1> bias_, dbias_;
    Tensor<2> dz_;  ///< gradient before the activation, reused across batches
};

}  // namespace typenet
