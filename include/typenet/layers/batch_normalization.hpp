/// @file layers/batch_normalization.hpp
/// `BatchNormalization`: normalise each channel (the last axis).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/layers/batch_norm_core.hpp"

namespace typenet {

/// Batch normalisation over the last axis (channels of NHWC images, or features):
/// y = gamma * (x - mean) / sqrt(var + epsilon) + beta.
///
/// Modes (`set_mode`):
/// - `BatchNormMode::Auto` (default, as Keras): in a training step of a trainable
///   layer, mean and var are the batch's and the moving averages are updated
///   (momentum 0.99, unbiased variance); otherwise the moving averages are used.
///   Freezing the layer (`set_trainable(false)` on it or an enclosing layer)
///   therefore switches it to its moving statistics, as Keras does.
/// - `BatchNormMode::Frozen`: always the moving statistics, and gamma / beta are not
///   trained: what fine-tuning a pretrained backbone usually wants.
/// After a convolution, the moving-statistics form can be folded into the
/// convolution's weights (MobileNetV2 does this; see layers/conv_bn.hpp).
/// Epsilon defaults to 1e-3 (Keras's default, and MobileNetV2's).
class BatchNormalization {
public:
    static constexpr std::size_t input_rank = any_rank;
    static constexpr std::size_t output_rank = any_rank;

    explicit BatchNormalization(float epsilon = 1e-3f, float momentum = 0.99f) {
        core_.epsilon = epsilon;
        core_.momentum = momentum;
    }

    std::string name() const { return "BatchNormalization"; }
    std::string config() const { return "epsilon=" + std::to_string(core_.epsilon); }

    void set_mode(BatchNormMode m) noexcept { core_.mode = m; }
    BatchNormMode mode() const noexcept { return core_.mode; }

    template <std::size_t N>
    Shape<N> output_shape(const Shape<N>& in) const {
        if (core_.channels() && in[N - 1] != core_.channels())
            throw shape_error("BatchNormalization: input has " + std::to_string(in[N - 1]) +
                              " channels, the layer was built for " + std::to_string(core_.channels()));
        return in;
    }

    template <std::size_t N>
    void build(const Shape<N>& in, Rng&) {
        core_.build(in[N - 1]);
    }

    template <std::size_t N>
    void forward(const Tensor<N>& x, Tensor<N>& y, const Context& ctx) {
        const std::size_t C = core_.channels(), rows = x.size() / C;
        batch_ = core_.batch_statistics(ctx.training, ctx.trainable);
        if (batch_) {
            core_.forward_batch(x.data(), rows, y.data(), nullptr, -inf, inf);
            return;
        }
        scale_.resize(C);
        shift_.resize(C);
        core_.fold(scale_.data(), shift_.data());
        const float* xs = x.data();
        float* ys = y.data();
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < C; ++c) ys[r * C + c] = xs[r * C + c] * scale_[c] + shift_[c];
    }

    template <std::size_t N>
    void backward(const Tensor<N>& x, const Tensor<N>&, const Tensor<N>& dy, Tensor<N>* dx, const Context& ctx) {
        const std::size_t C = core_.channels(), rows = x.size() / C;
        const bool affine = ctx.trainable && core_.affine_trainable();
        if (batch_) {
            core_.backward_batch(x.data(), dy.data(), rows, dx ? dx->data() : nullptr, affine);
            return;
        }
        // Moving statistics: y = x * scale + shift, a per-channel affine map.
        const float* xs = x.data();
        const float* g = dy.data();
        if (affine) {
            std::vector<double> sg(C, 0.0), sgx(C, 0.0);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t c = 0; c < C; ++c) {
                    sg[c] += g[r * C + c];
                    sgx[c] += static_cast<double>(g[r * C + c]) * (xs[r * C + c] - core_.moving_mean(c));
                }
            for (std::size_t c = 0; c < C; ++c) {
                core_.dbeta(c) = static_cast<float>(sg[c]);
                core_.dgamma(c) =
                    static_cast<float>(sgx[c] / std::sqrt(static_cast<double>(core_.moving_variance(c)) + core_.epsilon));
            }
        }
        if (dx) {
            float* d = dx->data();
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t c = 0; c < C; ++c) d[r * C + c] = g[r * C + c] * scale_[c];
        }
    }

    void visit_parameters(ParamVisitor f) { core_.visit_parameters(f, true); }
    void visit_buffers(BufferVisitor f) { core_.visit_buffers(f); }

    Tensor<1>& gamma() noexcept { return core_.gamma; }
    Tensor<1>& beta() noexcept { return core_.beta; }
    Tensor<1>& moving_mean() noexcept { return core_.moving_mean; }
    Tensor<1>& moving_variance() noexcept { return core_.moving_variance; }
    float epsilon() const noexcept { return core_.epsilon; }
    /// The shared arithmetic (for folding into a preceding convolution).
    const detail::BatchNormCore& core() const noexcept { return core_; }

private:
    static constexpr float inf = std::numeric_limits<float>::infinity();
    detail::BatchNormCore core_;
    std::vector<float> scale_, shift_;
    bool batch_ = false;
};

}  // namespace typenet
