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
/// `Dense<0, A>` takes its number of units at run time: `Dense<0, Softmax>(classes)`
/// (for a number of classes known only from the data).
template <std::size_t Units, Activation A = Linear>
class Dense {
public:
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    /// Units fixed at compile time (0: set at run time, see `units()`).
    static constexpr std::size_t static_units = Units;
    static constexpr bool outputs_probabilities = typenet::outputs_probabilities<A>();
    static constexpr bool outputs_logits = std::is_same_v<A, Linear>;
    using activation = A;

    /// `units` must equal `Units` unless `Units` is 0 (run-time units).
    explicit Dense(std::size_t units = Units) : units_(units) {
        if (units == 0) throw config_error("Dense: the number of units must be at least 1 (Dense<0> takes it at run time)");
        if (Units != 0 && units != Units)
            throw config_error("Dense<" + std::to_string(Units) + ">: constructed with " + std::to_string(units) + " units");
    }

    std::string name() const { return "Dense"; }
    std::string config() const { return Units == 0 ? "units=" + std::to_string(units_) : std::string(); }
    /// Number of outputs.
    std::size_t units() const noexcept { return units_; }

    Shape<2> output_shape(const Shape<2>& in) const {
        if (built_ && in[1] != in_features())
            throw shape_error("Dense: input has " + std::to_string(in[1]) + " features, the layer was built for " +
                              std::to_string(in_features()));
        return {in[0], units_};
    }

    void build(const Shape<2>& in, Rng& rng) {
        const std::size_t u = units_;
        kernel_.resize({in[1], u});
        bias_.resize({u});
        dkernel_ = zeros<2>({in[1], u});
        dbias_ = zeros<1>({u});
        init::glorot_uniform(kernel_.data(), kernel_.size(), in[1], u, rng);
        init::zeros(bias_.data(), bias_.size());
        built_ = true;
    }

    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) {
        const std::size_t n = x.shape()[0], k = x.shape()[1], u = units_;
        kernels::Epilogue ep;
        ep.bias = bias_.data();
        kernels::gemm(kernels::Trans::No, kernels::Trans::No, n, u, k, x.data(), k, kernel_.data(), u,
                      y.data(), u, ep);
        A::apply(y.data(), y.data(), n, u);
    }

    void backward(const Tensor<2>& x, const Tensor<2>& y, const Tensor<2>& dy, Tensor<2>* dx, const Context& ctx) {
        const std::size_t n = x.shape()[0], k = x.shape()[1], u = units_;
        ensure_shape(dz_, shape_of(dy));
        A::gradient(y.data(), dy.data(), dz_.data(), n, u);
        if (ctx.trainable) {
            // dW = x^T dz, db = column sums of dz
            kernels::gemm(kernels::Trans::Yes, kernels::Trans::No, k, u, n, x.data(), k, dz_.data(), u,
                          dkernel_.data(), u);
            kernels::column_sums(dz_.data(), n, u, dbias_.data());
        }
        if (dx) {
            // dx = dz W^T
            kernels::gemm(kernels::Trans::No, kernels::Trans::Yes, n, k, u, dz_.data(), u, kernel_.data(),
                          u, dx->data(), k);
        }
    }

    void visit_parameters(ParamVisitor f) {
        ParamRef k = param_ref("kernel", kernel_, dkernel_);
        f(k);
        ParamRef b = param_ref("bias", bias_, dbias_);
        f(b);
    }

    /// Weights (features x units) and bias (units).
    Tensor<2>& kernel() noexcept { return kernel_; }
    Tensor<1>& bias() noexcept { return bias_; }
    const Tensor<2>& kernel() const noexcept { return kernel_; }
    const Tensor<1>& bias() const noexcept { return bias_; }
    std::size_t in_features() const noexcept { return kernel_.shape()[0]; }

private:
    std::size_t units_;
    bool built_ = false;
    Tensor<2> kernel_, dkernel_;
    Tensor<1> bias_, dbias_;
    Tensor<2> dz_;  ///< gradient before the activation, reused across batches
};

}  // namespace typenet
