/// @file layers/batch_norm_core.hpp
/// Batch-normalisation arithmetic shared by `BatchNormalization` and the fused
/// convolution + batch norm blocks of MobileNetV2: parameters, folding, training
/// statistics and the backward pass. Channels are the last axis; a tensor is seen as
/// `rows` x `channels`.
///
/// Reductions over rows run in fixed chunks whose partial sums are added in chunk
/// order, so results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/kernels/channel_map.hpp"
#include "typenet/kernels/elementwise.hpp"

namespace typenet {

/// How a batch-norm layer behaves in training.
enum class BatchNormMode {
    /// As Keras: batch statistics (and moving averages updated) in a training step
    /// when the layer is trainable; moving statistics otherwise.
    Auto,
    /// Always the moving statistics; gamma and beta are not trained and the moving
    /// averages never change, even while the neighbouring layers train (fine-tuning
    /// a pretrained backbone).
    Frozen,
};

namespace detail {

/// Synchronised batch norm across processes (data-parallel training): when set, batch
/// norm in training mode passes its per-channel partial sums (and its row count)
/// through this function, which must replace them by their sum over all processes
/// (an allreduce); statistics and gradients are then those of the global batch. Empty
/// (the default): each process uses its own batch. Set by typenet's distributed module.
inline std::function<void(double* values, std::size_t n)>& batchnorm_sync() {
    static std::function<void(double*, std::size_t)> hook;
    return hook;
}

class BatchNormCore {
public:
    static constexpr std::size_t chunk_rows = 512;

    float epsilon = 1e-3f;
    float momentum = 0.99f;
    BatchNormMode mode = BatchNormMode::Auto;
    Tensor<1> gamma, beta, moving_mean, moving_variance;
    Tensor<1> dgamma, dbeta;

    /// Allocate for `c` channels: gamma 1, beta 0, moving mean 0, moving variance 1.
    void build(std::size_t c) {
        gamma = Tensor<1>(Shape<1>{c});
        gamma.fill(1.0f);
        beta = zeros<1>({c});
        moving_mean = zeros<1>({c});
        moving_variance = Tensor<1>(Shape<1>{c});
        moving_variance.fill(1.0f);
        dgamma = zeros<1>({c});
        dbeta = zeros<1>({c});
        mean_.assign(c, 0.0f);
        invstd_.assign(c, 1.0f);
    }
    std::size_t channels() const noexcept { return gamma.size(); }

    /// Use batch statistics in this pass?
    bool batch_statistics(bool training, bool trainable) const noexcept {
        return mode == BatchNormMode::Auto && training && trainable;
    }
    /// Are gamma and beta trained when the layer is trainable?
    bool affine_trainable() const noexcept { return mode == BatchNormMode::Auto; }

    /// scale = gamma / sqrt(moving_variance + eps), shift = beta - moving_mean * scale.
    void fold(float* scale, float* shift) const {
        for (std::size_t c = 0; c < channels(); ++c) {
            const float s = gamma(c) / std::sqrt(moving_variance(c) + epsilon);
            scale[c] = s;
            shift[c] = beta(c) - moving_mean(c) * s;
        }
    }

    /// Training forward: statistics of z (rows x C), then
    /// y = clamp(gamma * (z - mean) / sqrt(var + eps) + beta (+ residual), lo, hi);
    /// updates the moving averages (unbiased variance, as TensorFlow's fused kernel).
    void forward_batch(const float* z, std::size_t rows, float* y, const float* residual, float lo, float hi) {
        const std::size_t C = channels();
        if (rows == 0) throw shape_error("BatchNormalization: empty batch");
        mask_from_z_ = false;
        statistics(z, rows);
        if (!batchnorm_sync()) {
            normalize(z, rows, y, residual, lo, hi);
            return;
        }
        const float* g = gamma.data();
        const float* b = beta.data();
        const float* mu = mean_.data();
        const float* is = invstd_.data();
        TYPENET_OMP(parallel for schedule(static) if (rows * C > (1u << 15)))
        for (std::size_t r = 0; r < rows; ++r) {
            const float* zr = z + r * C;
            float* yr = y + r * C;
            const float* rr = residual ? residual + r * C : nullptr;
            for (std::size_t c = 0; c < C; ++c) {
                float v = g[c] * (zr[c] - mu[c]) * is[c] + b[c];
                if (rr) v += rr[c];
                yr[c] = std::min(std::max(v, lo), hi);
            }
        }
        update_moving_averages();
    }

    /// `forward_batch` for a z that is being produced: `produce(u0, u1, out)` writes units
    /// [u0, u1) of z (`unit` rows each) to `out` (see `kernels::produce_channel_mean_var`)
    /// and the statistics are taken from each piece while it is in cache, instead of in a
    /// pass of their own. With synchronised statistics, z is produced whole first. A null
    /// `y` defers the activation (see `normalize`).
    template <class P>
    void forward_batch_produced(float* z, std::size_t rows, std::size_t unit, P&& produce, float* y,
                                const float* residual, float lo, float hi) {
        const std::size_t C = channels();
        if (rows == 0) throw shape_error("BatchNormalization: empty batch");
        if (batchnorm_sync()) {
            if (!y) throw config_error("BatchNormalization: a deferred activation needs unsynchronised statistics");
            produce(std::size_t(0), rows / unit, z);
            forward_batch(z, rows, y, residual, lo, hi);
            return;
        }
        mask_from_z_ = false;
        mean_.resize(C);
        batch_var_.resize(C);
        invstd_.resize(C);
        kernels::produce_channel_mean_var(rows, C, unit, z, produce, mean_.data(), batch_var_.data());
        for (std::size_t c = 0; c < C; ++c) invstd_[c] = 1.0f / std::sqrt(batch_var_[c] + epsilon);
        total_rows_ = static_cast<double>(rows);
        normalize(z, rows, y, residual, lo, hi);
    }

    /// `forward_batch_produced` with a deferred activation (null y) when the producer of z
    /// took its statistics itself (`mean`, biased `var`, over `rows` rows): the map
    /// (`activation_map`) and the moving averages from them.
    void forward_batch_statistics(const float* mean, const float* var, std::size_t rows) {
        const std::size_t C = channels();
        if (rows == 0) throw shape_error("BatchNormalization: empty batch");
        if (batchnorm_sync())
            throw config_error("BatchNormalization: statistics given by a producer need unsynchronised statistics");
        mask_from_z_ = false;
        mean_.assign(mean, mean + C);
        batch_var_.assign(var, var + C);
        invstd_.resize(C);
        for (std::size_t c = 0; c < C; ++c) invstd_[c] = 1.0f / std::sqrt(batch_var_[c] + epsilon);
        total_rows_ = static_cast<double>(rows);
        normalize(nullptr, rows, nullptr, nullptr, 0.0f, 0.0f);
    }

    /// Moving averages from the last batch statistics (variance unbiased, as TensorFlow's
    /// fused kernel).
    void update_moving_averages() {
        const float m = momentum;
        const double total = total_rows_;
        const float unbias = total > 1 ? static_cast<float>(total / (total - 1)) : 1.0f;
        for (std::size_t c = 0; c < channels(); ++c) {
            moving_mean(c) = m * moving_mean(c) + (1.0f - m) * mean_[c];
            moving_variance(c) = m * moving_variance(c) + (1.0f - m) * batch_var_[c] * unbias;
        }
    }

    /// Can `backward_batch` apply a clamp's mask itself (see there)? Not with synchronised
    /// statistics, whose reductions take the masked gradient.
    static bool fuses_clamp_mask() { return !batchnorm_sync(); }

    /// Can `backward_batch_map` be used? Not with synchronised statistics, whose input
    /// gradient needs the sums of every process.
    static bool maps_input_gradient() { return !batchnorm_sync(); }

    /// The last batch forward's `y = clamp(z * k1 + k2)` as a map a consumer can apply to z
    /// as it reads it (`forward_batch_produced` with a null y). Valid until the next
    /// forward.
    kernels::ChannelMap activation_map(float lo, float hi) const noexcept {
        return kernels::ChannelMap{k1_.data(), k2_.data(), lo, hi};
    }

    /// Where the producer of this layer's output gradient puts batch norm's two backward
    /// sums (`kernels::DxBatchNormSums`: the batch statistics of the last forward and room
    /// for the sums), for `backward_batch_map(..., sums_given = true)`.
    kernels::DxBatchNormSums gradient_sums() {
        sums_.resize(2 * channels());
        return kernels::DxBatchNormSums{mean_.data(), invstd_.data(), sums_.data()};
    }

    /// `backward_batch` without writing dz: computes dgamma, dbeta (when `affine`) and calls
    /// `f(map)` with the `kernels::BatchNormInputGrad` that gives dz row by row, for a
    /// consumer that takes it block by block (`kernels::pointwise_backward`). The map is
    /// valid during the call. Requires `maps_input_gradient()`. With `clamp`, g is the
    /// gradient after a clamp to [lo, hi], whose mask comes from z when the forward allows
    /// it, else from the clamped output `y`.
    ///
    /// With `sums_given`, the two sums were taken by the producer of `g` into
    /// `gradient_sums()` (with the mask from z: requires `clamp` and a forward that allows
    /// it), and the pass over z and g is skipped.
    template <class F>
    void backward_batch_map(const float* z, const float* g, std::size_t rows, bool affine, bool clamp,
                            const float* y, float lo, float hi, F&& f, bool sums_given = false) {
        using kernels::ClampMaskFrom;
        if (!maps_input_gradient())
            throw config_error("BatchNormalization: the input gradient cannot be mapped with synchronised statistics");
        if (clamp && !mask_from_z_ && !y)
            throw config_error("BatchNormalization: the clamp's mask needs the forward's output");
        if (sums_given && !(clamp && mask_from_z_ && sums_.size() == 2 * channels()))
            throw config_error("BatchNormalization: backward sums given without a clamp mask from the forward");
        if (!clamp) y = nullptr;
        const std::size_t C = channels();
        float* dg = affine ? dgamma.data() : nullptr;
        float* db = affine ? dbeta.data() : nullptr;
        if (clamp && mask_from_z_)
            f(kernels::batchnorm_backward_map<ClampMaskFrom::affine>(z, mean_.data(), invstd_.data(), g, rows, C,
                                                                     gamma.data(), dg, db, nullptr, k1_.data(),
                                                                     k2_.data(), lo, hi,
                                                                     sums_given ? sums_.data() : nullptr));
        else if (y)
            f(kernels::batchnorm_backward_map<ClampMaskFrom::output>(z, mean_.data(), invstd_.data(), g, rows, C,
                                                                     gamma.data(), dg, db, y, nullptr, nullptr, lo,
                                                                     hi));
        else
            f(kernels::batchnorm_backward_map<ClampMaskFrom::none>(z, mean_.data(), invstd_.data(), g, rows, C,
                                                                   gamma.data(), dg, db, nullptr, nullptr, nullptr,
                                                                   lo, hi));
    }

    /// Training backward from g = d loss / d (normalised output before the clamp; the
    /// caller has applied the clamp's mask, or passes the clamped output `y` and [lo, hi]
    /// when `fuses_clamp_mask()`, and g is then the gradient after the clamp). Writes
    /// dgamma, dbeta (when `affine`) and dz (when not null). `z` is the input of the forward.
    void backward_batch(const float* z, const float* g, std::size_t rows, float* dz, bool affine,
                        const float* y = nullptr, float lo = 0.0f, float hi = 0.0f) {
        const std::size_t C = channels();
        if (!batchnorm_sync()) {
            if (y && mask_from_z_) {
                kernels::batchnorm_backward_clamped(z, mean_.data(), invstd_.data(), g, rows, C, gamma.data(), dz,
                                                    affine ? dgamma.data() : nullptr,
                                                    affine ? dbeta.data() : nullptr, k1_.data(), k2_.data(), lo, hi);
                return;
            }
            kernels::batchnorm_backward(z, mean_.data(), invstd_.data(), g, rows, C, gamma.data(), dz,
                                        affine ? dgamma.data() : nullptr, affine ? dbeta.data() : nullptr, y, lo, hi);
            return;
        }
        if (y) throw config_error("BatchNormalization: a clamp mask cannot be fused with synchronised statistics");
        const std::size_t chunks = (rows + chunk_rows - 1) / chunk_rows;
        partial_.assign(2 * chunks * C, 0.0f);
        const float* mu = mean_.data();
        const float* is = invstd_.data();
        TYPENET_OMP(parallel for schedule(static) if (chunks > 1))
        for (std::size_t k = 0; k < chunks; ++k) {
            float* a = partial_.data() + 2 * k * C;
            float* bsum = a + C;
            const std::size_t r1 = std::min(rows, (k + 1) * chunk_rows);
            for (std::size_t r = k * chunk_rows; r < r1; ++r) {
                const float* zr = z + r * C;
                const float* gr = g + r * C;
                for (std::size_t c = 0; c < C; ++c) {
                    a[c] += gr[c];
                    bsum[c] += gr[c] * (zr[c] - mu[c]) * is[c];
                }
            }
        }
        sum_g_.assign(C, 0.0);
        sum_gx_.assign(C, 0.0);
        double* sum_g = sum_g_.data();
        double* sum_gx = sum_gx_.data();
        for (std::size_t k = 0; k < chunks; ++k)
            for (std::size_t c = 0; c < C; ++c) {
                sum_g[c] += partial_[2 * k * C + c];
                sum_gx[c] += partial_[2 * k * C + C + c];
            }
        // gamma and beta get this process's own sums (averaged over the processes
        // afterwards like every other gradient); the input gradient needs the global ones.
        if (affine)
            for (std::size_t c = 0; c < C; ++c) {
                dbeta(c) = static_cast<float>(sum_g[c]);
                dgamma(c) = static_cast<float>(sum_gx[c]);
            }
        if (auto& sync = batchnorm_sync(); sync) {
            both_.resize(2 * C);
            std::copy(sum_g, sum_g + C, both_.begin());
            std::copy(sum_gx, sum_gx + C, both_.begin() + static_cast<long>(C));
            sync(both_.data(), 2 * C);
            std::copy(both_.begin(), both_.begin() + static_cast<long>(C), sum_g);
            std::copy(both_.begin() + static_cast<long>(C), both_.end(), sum_gx);
        }
        if (!dz) return;
        k1_.resize(C);
        k2_.resize(C);
        k3_.resize(C);
        float* k1 = k1_.data();
        float* k2 = k2_.data();
        float* k3 = k3_.data();
        const double inv_m = 1.0 / total_rows_;
        for (std::size_t c = 0; c < C; ++c) {
            k1[c] = gamma(c) * is[c];
            k2[c] = static_cast<float>(sum_g[c] * inv_m);
            k3[c] = static_cast<float>(sum_gx[c] * inv_m);
        }
        TYPENET_OMP(parallel for schedule(static) if (rows * C > (1u << 15)))
        for (std::size_t r = 0; r < rows; ++r) {
            const float* zr = z + r * C;
            const float* gr = g + r * C;
            float* dr = dz + r * C;
            for (std::size_t c = 0; c < C; ++c) {
                const float xh = (zr[c] - mu[c]) * is[c];
                dr[c] = k1[c] * (gr[c] - k2[c] - xh * k3[c]);
            }
        }
    }

    void visit_parameters(ParamVisitor f, bool trainable) {
        ParamRef g = param_ref("gamma", gamma, dgamma);
        g.trainable = trainable && affine_trainable();
        f(g);
        ParamRef b = param_ref("beta", beta, dbeta);
        b.trainable = trainable && affine_trainable();
        f(b);
    }
    void visit_buffers(BufferVisitor f) {
        BufferRef m = buffer_ref("moving_mean", moving_mean);
        f(m);
        BufferRef v = buffer_ref("moving_variance", moving_variance);
        f(v);
    }

    /// Batch mean and 1/sqrt(var + eps) of the last training forward.
    const std::vector<float>& batch_mean() const noexcept { return mean_; }
    const std::vector<float>& batch_invstd() const noexcept { return invstd_; }

private:
    /// With this process's batch statistics: y = clamp(z * k1 + k2 (+ residual)) with the
    /// vectorised kernels (not when y is null: the caller's consumer applies
    /// `activation_map` as it reads z), then the moving averages.
    void normalize(const float* z, std::size_t rows, float* y, const float* residual, float lo, float hi) {
        if (!y && residual) throw config_error("BatchNormalization: a deferred activation cannot add a residual");
        const std::size_t C = channels();
        k1_.resize(C);
        k2_.resize(C);
        for (std::size_t c = 0; c < C; ++c) {
            k1_[c] = gamma(c) * invstd_[c];
            k2_[c] = beta(c) - mean_[c] * k1_[c];
        }
        // Without a residual, y = clamp(z * k1 + k2): backward can recompute the
        // clamp's mask from z and these coefficients rather than read y.
        mask_from_z_ = !residual;
        // Deferred (null y): the consumer applies activation_map() as it reads z.
        if (y) kernels::scale_shift(z, rows, C, k1_.data(), k2_.data(), y, lo, hi, residual);
        update_moving_averages();
    }

    /// Two-pass mean and (biased) variance per channel, in fixed row chunks.
    void statistics(const float* z, std::size_t rows) {
        const std::size_t C = channels();
        if (!batchnorm_sync()) {
            mean_.resize(C);
            batch_var_.resize(C);
            invstd_.resize(C);
            kernels::channel_mean_var(z, rows, C, mean_.data(), batch_var_.data());
            for (std::size_t c = 0; c < C; ++c) invstd_[c] = 1.0f / std::sqrt(batch_var_[c] + epsilon);
            total_rows_ = static_cast<double>(rows);
            return;
        }
        const std::size_t chunks = (rows + chunk_rows - 1) / chunk_rows;
        partial_.assign(chunks * C, 0.0f);
        TYPENET_OMP(parallel for schedule(static) if (chunks > 1))
        for (std::size_t k = 0; k < chunks; ++k) {
            float* s = partial_.data() + k * C;
            const std::size_t r1 = std::min(rows, (k + 1) * chunk_rows);
            for (std::size_t r = k * chunk_rows; r < r1; ++r)
                for (std::size_t c = 0; c < C; ++c) s[c] += z[r * C + c];
        }
        auto& sync = batchnorm_sync();
        both_.assign(C + 1, 0.0);
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t k = 0; k < chunks; ++k) both_[c] += partial_[k * C + c];
        both_[C] = static_cast<double>(rows);
        if (sync) sync(both_.data(), C + 1);
        total_rows_ = both_[C];
        mean_.assign(C, 0.0f);
        for (std::size_t c = 0; c < C; ++c) mean_[c] = static_cast<float>(both_[c] / total_rows_);
        const float* mu = mean_.data();
        std::fill(partial_.begin(), partial_.end(), 0.0f);
        TYPENET_OMP(parallel for schedule(static) if (chunks > 1))
        for (std::size_t k = 0; k < chunks; ++k) {
            float* s = partial_.data() + k * C;
            const std::size_t r1 = std::min(rows, (k + 1) * chunk_rows);
            for (std::size_t r = k * chunk_rows; r < r1; ++r)
                for (std::size_t c = 0; c < C; ++c) {
                    const float d = z[r * C + c] - mu[c];
                    s[c] += d * d;
                }
        }
        both_.assign(C, 0.0);
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t k = 0; k < chunks; ++k) both_[c] += partial_[k * C + c];
        if (sync) sync(both_.data(), C);
        batch_var_.assign(C, 0.0f);
        invstd_.assign(C, 0.0f);
        for (std::size_t c = 0; c < C; ++c) {
            batch_var_[c] = static_cast<float>(both_[c] / total_rows_);
            invstd_[c] = 1.0f / std::sqrt(batch_var_[c] + epsilon);
        }
    }

    std::vector<float> mean_, invstd_, batch_var_, k1_, k2_, k3_;
    bool mask_from_z_ = false;  ///< the last forward_batch computed y = clamp(z * k1_ + k2_)
    std::vector<double> sum_g_, sum_gx_, both_;
    std::vector<double> sums_;  ///< backward sums taken by the gradient's producer (gradient_sums)
    double total_rows_ = 1.0;  ///< rows of the (global) batch of the last training forward
    std::vector<float> partial_;  ///< per-chunk partial sums, reused (grows once)
};

}  // namespace detail
}  // namespace typenet
