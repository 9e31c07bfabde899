/// @file layers/conv_bn.hpp
/// `ConvBN<Act>`: a convolution without bias, batch normalisation and an optional
/// ReLU6, computed together (MobileNetV2's building unit).
///
/// Three ways to run, chosen per pass:
/// - **folded** (inference, frozen batch norm, or a frozen layer): batch norm with its
///   moving statistics is folded into the convolution (w' = w * gamma / sqrt(var + eps)
///   per output channel, b' = beta - mean * gamma / sqrt(var + eps)), and bias, ReLU6
///   and a residual add are applied in the convolution kernel's store: one pass over
///   the output. Backward (when the convolution trains under a frozen batch norm) uses
///   the folded weights for the input gradient and scales the weight gradient back.
/// - **batch statistics** (a training step with batch norm trainable, mode Auto): the
///   convolution output is kept, normalised with the batch's statistics, and the
///   moving averages are updated.
/// - **moving statistics, unfolded**: the rare case of a backward pass that must give
///   gamma and beta gradients outside training (gradient checks).
/// The folded weights are recomputed only when the parameters may have changed: an
/// optimizer step or a loader marks them (ParamRef::changed), and a training pass with
/// batch statistics moves the moving averages.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/kernels/covariance.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/epilogue.hpp"
#include "typenet/kernels/expand_depthwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/pointwise_backward.hpp"
#include "typenet/kernels/workspace.hpp"
#include "typenet/layers/batch_norm_core.hpp"
#include "typenet/layers/clamp.hpp"
#include "typenet/layers/conv_op.hpp"
#include "typenet/layers/linear.hpp"
#include "typenet/layers/relu6.hpp"

namespace typenet {

/// Convolution (spec given at run time) + batch norm + activation `Act` (Linear or ReLU6).
template <class Act = ReLU6>
class ConvBN {
    static_assert(std::is_same_v<Act, Linear> || std::is_same_v<Act, ReLU6>,
                  "typenet: ConvBN supports the activations Linear and ReLU6");

public:
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;
    static constexpr float lo = std::is_same_v<Act, ReLU6> ? 0.0f : -std::numeric_limits<float>::infinity();
    static constexpr float hi = std::is_same_v<Act, ReLU6> ? 6.0f : std::numeric_limits<float>::infinity();

    explicit ConvBN(detail::ConvSpec spec = {}, float epsilon = 1e-3f) : op_(spec) { bn_.epsilon = epsilon; }

    std::string name() const { return "ConvBN"; }
    std::string config() const {
        return op_.spec.describe() + " bn eps " + std::to_string(bn_.epsilon) +
               (std::is_same_v<Act, ReLU6> ? " relu6" : " linear");
    }

    /// Change the convolution's settings (before `build`).
    void set_spec(const detail::ConvSpec& s) { op_.spec = s; }
    const detail::ConvSpec& spec() const noexcept { return op_.spec; }
    void set_batchnorm_mode(BatchNormMode m) noexcept {
        bn_.mode = m;
        dirty_ = true;
    }
    BatchNormMode batchnorm_mode() const noexcept { return bn_.mode; }

    Shape<4> output_shape(const Shape<4>& in) const { return op_.output_shape(in, "ConvBN"); }

    void build(const Shape<4>& in, Rng& rng) {
        op_.build(in[3], rng);
        bn_.build(op_.out_channels());
        dirty_ = true;
    }

    void forward(const Tensor<4>& x, Tensor<4>& y, const Context& ctx) {
        forward_raw(x.data(), shape_of(x), y.data(), nullptr, ctx);
    }
    void backward(const Tensor<4>& x, const Tensor<4>& y, const Tensor<4>& dy, Tensor<4>* dx, const Context& ctx) {
        backward_raw(x.data(), shape_of(x), y.data(), dy.data(), dx ? dx->data() : nullptr, ctx);
    }

    /// Forward on raw NHWC buffers; `residual` (output-shaped, or null) is added
    /// before the activation.
    ///
    /// For a block that chains ConvBNs (`InvertedResidual`), when `defers_activation(ctx)`:
    /// `y` may be null (the activation is not written; the next layer reads
    /// `pre_activation()` through `activation_map()`), and `x` may be read through `xmap`
    /// (the previous layer's deferred activation).
    void forward_raw(const float* x, const Shape<4>& in, float* y, const float* residual, const Context& ctx,
                     const kernels::ChannelMap* xmap = nullptr) {
        geom_ = op_.geometry(in, "ConvBN");
        const std::size_t rows = geom_.n * geom_.oh * geom_.ow, C = op_.out_channels();
        path_ = path_for(ctx);
        gram_valid_ = false;
        if ((xmap && !defers_activation(ctx)) || (!y && !defers_activation(ctx) && !defers_first_activation(ctx, in)))
            throw config_error("ConvBN: a deferred activation needs a training pass with batch statistics");
        if (path_ == Path::folded) {
            refold();
            kernels::Epilogue ep;
            ep.bias = shift_.data();
            ep.residual = residual;
            ep.lo = lo;
            ep.hi = hi;
            if (op_.pointwise()) kernels::gemm(kernels::Trans::No, rows, x, geom_.c, packed_, y, C, ep);
            else op_.forward(geom_, x, folded_.data(), y, ep);
            return;
        }
        float* z = z_.get(rows * C);
        if (path_ == Path::batch && op_.pointwise()) {
            // The product made in pieces, each piece's statistics taken while it is in cache.
            train_pack_.pack(kernels::Trans::No, geom_.c, C, op_.kernel.data(), C);
            bn_.forward_batch_produced(z, rows, 1, kernels::GemmRows(rows, x, geom_.c, train_pack_, xmap), y,
                                       residual, lo, hi);
            dirty_ = true;  // the moving averages moved: the folded form must be recomputed
            return;
        }
        if (path_ == Path::batch && op_.spec.depthwise) {
            bn_.forward_batch_produced(z, rows, geom_.ow, kernels::DepthwiseRows(geom_, x, op_.kernel.data(), xmap), y,
                                       residual, lo, hi);
            dirty_ = true;
            return;
        }
        if (path_ == Path::batch && !xmap && !op_.spec.depthwise && !op_.pointwise() &&
            kernels::conv_direct_eligible(geom_, C)) {
            // A network's first layer (MobileNetV2's stem): the statistics taken piece by
            // piece as the direct kernel makes its rows, not in passes over the stored z.
            bn_.forward_batch_produced(z, rows, geom_.ow,
                                       kernels::DirectRows(geom_, C, x, op_.kernel.data(), op_.spec.input), y,
                                       residual, lo, hi);
            dirty_ = true;
            return;
        }
        op_.forward(geom_, x, op_.kernel.data(), z);
        if (path_ == Path::batch) {
            bn_.forward_batch(z, rows, y, residual, lo, hi);
            dirty_ = true;  // the moving averages moved: the folded form must be recomputed
        } else {
            refold();
            kernels::scale_shift(z, rows, C, scale_.data(), shift_.data(), y, lo, hi, residual);
        }
    }

    /// Backward on raw buffers, after `forward_raw` on the same input (and `xmap`). `y` is
    /// the forward's output (null when it was deferred), `dy` its gradient; writes `dx` when
    /// not null.
    ///
    /// Chained ConvBNs (`InvertedResidual`) with deferred activations can share a pass: a
    /// 1x1 or depthwise layer given `dx_sums` (the previous layer's `gradient_sums()`, with
    /// `xmap` its `activation_map()`) takes that layer's batch-norm backward sums from dx as
    /// it makes it; the previous layer's backward then runs with `sums_given`.
    ///
    /// A depthwise layer given `dx_rows` hands the rows of its input gradient to it instead
    /// of writing `dx` (null): the previous layer's `begin_produced_backward`.
    ///
    /// Chained 1x1 / depthwise ConvBNs on the folded path (`shares_clamp_mask`: a frozen
    /// batch norm, in fine-tuning) can share the clamp's mask: a layer given
    /// `dx_clamp` (the previous layer's ReLU6 bounds, x being that layer's output) masks dx
    /// as it makes it, and the previous layer's backward then runs with `dy_masked`, taking
    /// dy as the gradient before its activation.
    void backward_raw(const float* x, const Shape<4>& in, const float* y, const float* dy, float* dx,
                      const Context& ctx, const kernels::ChannelMap* xmap = nullptr,
                      const kernels::DxBatchNormSums* dx_sums = nullptr, bool sums_given = false,
                      kernels::RowConsumer* dx_rows = nullptr, const kernels::DxClamp* dx_clamp = nullptr,
                      bool dy_masked = false) {
        const auto g = op_.geometry(in, "ConvBN");
        const std::size_t rows = g.n * g.oh * g.ow, C = op_.out_channels();
        // Gradient before the activation. With batch statistics, batch norm's backward
        // masks it itself, in the same passes over memory.
        const float* gp = dy;
        const bool fused_mask = std::is_same_v<Act, ReLU6> && path_ == Path::batch && detail::BatchNormCore::fuses_clamp_mask();
        // Batch norm's input gradient consumed as it is made (never a tensor): by the 1x1 and
        // depthwise kernels, and by a first layer's weight gradient on the direct kernel.
        const bool batch_mapped = path_ == Path::batch && detail::BatchNormCore::maps_input_gradient();
        const bool mapped_path = batch_mapped && (op_.pointwise() || op_.spec.depthwise);
        const bool train_conv = ctx.trainable;
        // A network's first layer on the direct kernel (MobileNetV2's stem): no input
        // gradient, a weight gradient that takes its rows of the output gradient one at a time.
        const bool direct_first = !dx && train_conv && kernels::conv_direct_eligible(g, C);
        // Such a layer with batch statistics may also have deferred its activation and be
        // given its batch-norm sums by the next layer (`defers_first_activation`).
        const bool first_mapped = batch_mapped && direct_first && !mapped_path && !xmap;
        if ((xmap && !mapped_path) || (!y && !mapped_path && !first_mapped))
            throw config_error("ConvBN: backward of a deferred activation needs its training path");
        if ((dx_sums && !(mapped_path && (dx || dx_rows) && xmap)) || (sums_given && !mapped_path && !first_mapped))
            throw config_error("ConvBN: batch-norm sums shared between layers need the training path of chained "
                               "1x1 / depthwise layers, or of a first layer on the direct kernel");
        if (dx_rows && !(mapped_path && op_.spec.depthwise && !dx && xmap && dx_sums))
            throw config_error("ConvBN: an input gradient handed over row by row needs a depthwise layer's training "
                               "path, the previous layer's map and sums, and no dx");
        const bool affine = ctx.trainable && bn_.affine_trainable();  // gamma and beta get gradients
        // Moving statistics folded into the kernel (a frozen batch norm while the weights
        // train: fine-tuning): the 1x1, depthwise and first-layer kernels take the gradient
        // before the activation (dy masked by the clamp) a block of rows at a time, so it
        // is never written as a tensor and read back by each product.
        const bool folded_produced = path_ == Path::folded && (op_.pointwise() || op_.spec.depthwise || direct_first);
        if ((dx_clamp || dy_masked) && !(folded_produced && (op_.pointwise() || op_.spec.depthwise)))
            throw config_error("ConvBN: a clamp mask shared between layers needs the folded path of chained 1x1 / "
                               "depthwise layers (a frozen batch norm)");
        if (std::is_same_v<Act, ReLU6> && !fused_mask && !folded_produced) {
            float* gb = scratch_or_own(ctx, Scratch::layer_a, g_, rows * C);
            detail::clamp_gradient(y, dy, gb, rows * C, lo, hi);
            gp = gb;
        }
        if (folded_produced) {
            backward_folded_produced(g, x, y, dy, dx, train_conv, dx_clamp, dy_masked);
        } else if (path_ == Path::folded) {
            if (train_conv) {
                op_.backward_weight(g, x, gp, op_.dkernel.data());
                scale_kernel_gradient();
            }
            if (dx) op_.backward_input(g, gp, folded_.data(), dx);
        } else if (mapped_path && op_.pointwise()) {
            // Batch norm's input gradient made in L2-sized row blocks and consumed there by
            // both products of the 1x1 convolution: it is never written to memory.
            if (dx) train_pack_.pack(kernels::Trans::Yes, C, g.c, op_.kernel.data(), C);
            bn_.backward_batch_map(z_.data(), gp, rows, affine, fused_mask, y, lo, hi, [&](const auto& map) {
                kernels::pointwise_backward(
                    rows, g.c, C, x, dx ? &train_pack_ : nullptr,
                    [&map](std::size_t r0, std::size_t r1, float* out, std::size_t ldo) {
                        map.rows(r0, r1, out, ldo, false);
                    },
                    train_conv ? op_.dkernel.data() : nullptr, dx, 0, xmap, dx_sums);
            }, sums_given);
        } else if (mapped_path) {
            // The same for a depthwise convolution: rows of the gradient made a band at a
            // time, both convolution gradients taken from there.
            bn_.backward_batch_map(z_.data(), gp, rows, affine, fused_mask, y, lo, hi, [&](const auto& map) {
                const std::size_t ow = g.ow;
                kernels::depthwise_backward_produced(
                    g, x, op_.kernel.data(),
                    [&map, ow, C](std::size_t r0, std::size_t r1, float* out) {
                        map.rows(r0 * ow, r1 * ow, out, C, false);
                    },
                    train_conv ? op_.dkernel.data() : nullptr, dx, xmap, dx_sums, dx_rows);
            }, sums_given);
        } else if (first_mapped) {
            // A network's first layer (MobileNetV2's stem): no input gradient, and the weight
            // gradient on the direct kernel takes batch norm's input gradient a row at a time.
            bn_.backward_batch_map(z_.data(), gp, rows, affine, fused_mask, y, lo, hi, [&](const auto& map) {
                const std::size_t ow = g.ow;
                kernels::conv2d_backward_weight_produced(
                    g, C, x, [&map, ow, C](std::size_t r, float* out) { map.rows(r * ow, (r + 1) * ow, out, C, false); },
                    op_.dkernel.data(), op_.spec.input);
            }, sums_given);
        } else {
            float* dz = scratch_or_own(ctx, Scratch::layer_b, dz_, rows * C);
            if (path_ == Path::batch) {
                if (fused_mask) bn_.backward_batch(z_.data(), dy, rows, dz, affine, y, lo, hi);
                else bn_.backward_batch(z_.data(), gp, rows, dz, affine);
            } else {
                // y = clamp(z * scale + shift): dz = g * scale, and with gamma and beta
                // training dgamma = sum g (z - mean) / sqrt(var + eps), dbeta = sum g.
                kernels::scale_shift(gp, rows, C, scale_.data(), kernels::zero_floats(C), dz);
                if (affine) {
                    moving_sums_.resize(2 * C);
                    double* s = moving_sums_.data();
                    kernels::centred_gradient_sums(gp, z_.data(), bn_.moving_mean.data(), rows, C, s);
                    for (std::size_t c = 0; c < C; ++c) {
                        bn_.dbeta(c) = static_cast<float>(s[c]);
                        bn_.dgamma(c) = static_cast<float>(
                            s[C + c] / std::sqrt(static_cast<double>(bn_.moving_variance(c)) + bn_.epsilon));
                    }
                }
            }
            if (train_conv) op_.backward_weight(g, x, dz, op_.dkernel.data());
            if (dx) op_.backward_input(g, dz, op_.kernel.data(), dx);
        }
    }

    void visit_parameters(ParamVisitor f) {
        ParamRef k = param_ref(op_.spec.depthwise ? "depthwise_weights" : "weights", op_.kernel, op_.dkernel);
        k.changed = &dirty_;
        f(k);
        auto named = [&f, this](ParamRef& r) {
            r.name = "BatchNorm/" + r.name;
            r.changed = &dirty_;
            f(r);
        };
        bn_.visit_parameters(named, true);
    }
    void visit_buffers(BufferVisitor f) {
        auto named = [&f, this](BufferRef& r) {
            r.name = "BatchNorm/" + r.name;
            r.changed = &dirty_;
            f(r);
        };
        bn_.visit_buffers(named);
    }

    /// Convolution kernel (HWIO, or [k, k, C, 1] depthwise) and batch-norm state.
    Tensor<4>& kernel() noexcept { return op_.kernel; }
    detail::BatchNormCore& batchnorm() noexcept {
        dirty_ = true;
        return bn_;
    }
    std::size_t out_channels() const noexcept { return op_.out_channels(); }

    /// Can a pass with `ctx` defer this layer's activation or read its input through a map
    /// (see `forward_raw`)? A training pass with batch statistics, a 1x1 or depthwise
    /// convolution, unsynchronised batch norm.
    bool defers_activation(const Context& ctx) const {
        return path_for(ctx) == Path::batch && (op_.pointwise() || op_.spec.depthwise) &&
               detail::BatchNormCore::maps_input_gradient();
    }
    /// Can a pass with `ctx` on input `in` defer the activation of this layer as a network's
    /// first layer (`forward_raw` with a null y, no xmap; MobileNetV2's stem before block
    /// 0)? A training pass with batch statistics that trains the convolution and needs no
    /// input gradient, a ReLU6 layer on the direct kernel (few input channels). Its
    /// backward then takes the output gradient with the batch-norm sums already taken
    /// (`backward_raw(x, in, nullptr, dy, nullptr, ctx, nullptr, nullptr, true)` after the
    /// next layer's backward was given `gradient_sums()`).
    bool defers_first_activation(const Context& ctx, const Shape<4>& in) const {
        return std::is_same_v<Act, ReLU6> && path_for(ctx) == Path::batch && ctx.trainable && !ctx.input_gradient &&
               !op_.pointwise() && !op_.spec.depthwise && detail::BatchNormCore::maps_input_gradient() &&
               kernels::conv_direct_eligible(op_.geometry(in, "ConvBN"), op_.out_channels());
    }
    /// After a forward with a deferred activation: the convolution's output and the map
    /// that turns it into the activation (batch norm with the batch statistics + the clamp).
    const float* pre_activation() const noexcept { return z_.data(); }
    kernels::ChannelMap activation_map() const noexcept { return bn_.activation_map(lo, hi); }
    /// After such a forward, for the next layer's `backward_raw(..., dx_sums)`: where it puts
    /// this layer's batch-norm backward sums (see `backward_raw`).
    kernels::DxBatchNormSums gradient_sums() { return bn_.gradient_sums(); }

    /// The training forward of a 1x1 layer (deferred activation, batch statistics) whose
    /// output the next layer makes (`forward_from_expansion`): batch norm's statistics from
    /// the input's covariance (`kernels::CentredGram`: the output is linear in the input),
    /// so the map (`activation_map()`) is known before the output exists; the moving
    /// averages updated, the weights packed (`forward_weights()`), the output buffer
    /// (`pre_activation()`) allocated. Nothing else is computed.
    void forward_statistics_from_input(const float* x, const Shape<4>& in, const Context& ctx) {
        geom_ = op_.geometry(in, "ConvBN");
        path_ = path_for(ctx);
        if (!(defers_activation(ctx) && op_.pointwise()))
            throw config_error("ConvBN: statistics from the input need the training path of a 1x1 layer");
        const std::size_t rows = geom_.n * geom_.oh * geom_.ow, C = op_.out_channels();
        z_.get(rows * C);
        train_pack_.pack(kernels::Trans::No, geom_.c, C, op_.kernel.data(), C);
        gram_.compute(x, rows, geom_.c);
        gram_valid_ = true;  // for the backward on the same input (begin_produced_backward)
        stat_mean_.resize(C);
        stat_var_.resize(C);
        gram_.product_statistics(op_.kernel.data(), C, stat_mean_.data(), stat_var_.data());
        bn_.forward_batch_statistics(stat_mean_.data(), stat_var_.data(), rows);
        dirty_ = true;  // the moving averages moved
    }
    /// After `forward_statistics_from_input`: the packed weights.
    const kernels::PackedMatrix& forward_weights() const noexcept { return train_pack_; }
    /// Was this layer's last forward `forward_statistics_from_input` on an input of shape `in`?
    bool statistics_from_input_ready(const Shape<4>& in) const noexcept {
        return gram_valid_ && gram_.rows() == in[0] * in[1] * in[2] && gram_.cols() == in[3];
    }

    /// The training forward of a depthwise layer (deferred activation, batch statistics)
    /// whose input is `expand`'s deferred output, after `expand.forward_statistics_from_input(x,
    /// in, ctx)`: both outputs made in one pass (`kernels::expand_depthwise_forward`), the
    /// expansion's written into its `pre_activation()` and never read back. `e` is the
    /// expanded shape (this layer's input).
    template <class Expand>
    void forward_from_expansion(const float* x, const Shape<4>& in, const Shape<4>& e, Expand& expand,
                                const Context& ctx) {
        geom_ = op_.geometry(e, "ConvBN");
        path_ = path_for(ctx);
        if (!(defers_activation(ctx) && op_.spec.depthwise))
            throw config_error("ConvBN: a forward from the expansion needs the training path of a depthwise layer");
        if (!expand.statistics_from_input_ready(in))
            throw config_error("ConvBN: forward_from_expansion needs the expansion's forward_statistics_from_input on "
                               "the same input first");
        const std::size_t rows = geom_.n * geom_.oh * geom_.ow, C = op_.out_channels();
        float* z = z_.get(rows * C);
        stat_mean_.resize(C);
        stat_var_.resize(C);
        kernels::expand_depthwise_forward(geom_, in[3], x, expand.forward_weights(), expand.activation_map(),
                                          op_.kernel.data(), expand.pre_activation_buffer(), z, stat_mean_.data(),
                                          stat_var_.data());
        bn_.forward_batch_statistics(stat_mean_.data(), stat_var_.data(), rows);
        dirty_ = true;
    }
    /// The output buffer `forward_from_expansion` writes (see `forward_statistics_from_input`).
    float* pre_activation_buffer() noexcept { return z_.data(); }

    /// A 1x1 layer whose activation was deferred, when the next layer (a depthwise one,
    /// `backward_raw(..., dx_rows)`) makes this layer's output gradient row by row and
    /// takes its batch-norm sums (`gradient_sums()`): its backward consumes those rows as
    /// they come (`kernels::BatchNormPointwiseBackward`), so neither the gradient nor batch
    /// norm's input gradient is ever stored. `begin_produced_backward` before the next
    /// layer's backward (`chunks`: its chunk count, `row_pixels`: pixels a row), then
    /// `finish_produced_backward` (adds `dx_residual` to dx when not null).
    kernels::RowConsumer* begin_produced_backward(const float* x, const Shape<4>& in, float* dx, const Context& ctx,
                                                  std::size_t chunks, std::size_t row_pixels) {
        if (!(defers_activation(ctx) && op_.pointwise() && std::is_same_v<Act, ReLU6> &&
              detail::BatchNormCore::fuses_clamp_mask()))
            throw config_error("ConvBN: a produced output gradient needs the training path of a 1x1 layer + ReLU6");
        const auto g = op_.geometry(in, "ConvBN");
        const std::size_t C = op_.out_channels();
        if (dx) train_pack_.pack(kernels::Trans::Yes, C, g.c, op_.kernel.data(), C);
        const kernels::DxBatchNormSums st = bn_.gradient_sums();
        kernels::BatchNormPointwiseBackward::Problem p;
        p.rows = g.n * g.oh * g.ow;
        p.cin = g.c;
        p.cout = C;
        p.x = x;
        p.x_stats = gram_valid_ && gram_.rows() == p.rows && gram_.cols() == g.c ? &gram_ : nullptr;
        p.w = op_.kernel.data();
        p.wt = dx ? &train_pack_ : nullptr;
        p.z = z_.data();
        p.act = activation_map();
        p.gamma = bn_.gamma.data();
        p.mean = st.mean;
        p.invstd = st.invstd;
        p.dw = ctx.trainable ? op_.dkernel.data() : nullptr;
        p.dx = dx;
        produced_rows_ = p.rows;
        produced_affine_ = ctx.trainable && bn_.affine_trainable();
        produced_.begin(p, chunks, row_pixels);
        return &produced_;
    }
    void finish_produced_backward(const float* dx_residual = nullptr) {
        const kernels::DxBatchNormSums st = bn_.gradient_sums();
        produced_.finish(st.out, dx_residual);
        // Batch norm's own gradients from the same sums (no pass over any tensor).
        bn_.backward_batch_map(z_.data(), nullptr, produced_rows_, produced_affine_, true, nullptr, lo, hi,
                               [](const auto&) {}, true);
    }

    /// Will a pass with `ctx` use the folded form (moving statistics folded into the weights)?
    bool folded_for(const Context& ctx) const { return path_for(ctx) == Path::folded; }
    /// Can the backward after a pass with `ctx` share a clamp's mask with the layers beside
    /// it (`backward_raw`'s `dx_clamp` and `dy_masked`)? The folded path of a 1x1 or
    /// depthwise convolution (a frozen batch norm).
    bool shares_clamp_mask(const Context& ctx) const {
        return folded_for(ctx) && (op_.pointwise() || op_.spec.depthwise);
    }
    /// Convolution geometry for input `in`.
    kernels::ConvGeometry geometry(const Shape<4>& in) const { return op_.geometry(in, "ConvBN"); }
    /// Bring the folded weights up to date; returns a number that changes whenever they do.
    std::uint64_t ensure_folded() {
        refold();
        return fold_version_;
    }
    const float* folded_weights() const noexcept { return folded_.data(); }
    const float* folded_shift() const noexcept { return shift_.data(); }

    /// The folded kernel and bias of the moving-statistics form (for tests and export).
    const std::vector<float>& folded_kernel() {
        refold();
        return folded_;
    }
    const std::vector<float>& folded_bias() {
        refold();
        return shift_;
    }

private:
    enum class Path { folded, batch, moving };

    Path path_for(const Context& ctx) const {
        if (bn_.batch_statistics(ctx.training, ctx.trainable)) return Path::batch;
        if (ctx.backward && ctx.trainable && bn_.affine_trainable()) return Path::moving;
        return Path::folded;
    }

    /// Recompute scale/shift and the folded kernel when the parameters may have changed.
    void refold() {
        if (!dirty_ && !folded_.empty()) return;
        const std::size_t C = op_.out_channels();
        scale_.resize(C);
        shift_.resize(C);
        bn_.fold(scale_.data(), shift_.data());
        folded_.resize(op_.kernel.size());
        const float* w = op_.kernel.data();
        float* f = folded_.data();
        const float* s = scale_.data();
        const std::size_t n = op_.kernel.size();
        // The output channel is the last axis of HWIO, the channel axis (third) of
        // [k, k, C, 1]: in both layouts the kernel is rows of C values, one per channel.
        for (std::size_t o = 0; o < n; o += C)
            for (std::size_t c = 0; c < C; ++c) f[o + c] = w[o + c] * s[c];
        // 1x1 convolutions run on the gemm with the folded weights packed once.
        if (op_.pointwise()) packed_.pack(kernels::Trans::No, op_.in_channels, C, folded_.data(), C);
        ++fold_version_;
        dirty_ = false;
    }
    /// The folded path's backward with the gradient before the activation produced a block
    /// of rows at a time (see `backward_raw`); `folded_produced` there says when.
    /// `dx_clamp`, `dy_masked`: see `backward_raw`.
    void backward_folded_produced(const kernels::ConvGeometry& g, const float* x, const float* y, const float* dy,
                                  float* dx, bool train_conv, const kernels::DxClamp* dx_clamp, bool dy_masked) {
        const std::size_t C = op_.out_channels(), ow = g.ow;
        float* dw = train_conv ? op_.dkernel.data() : nullptr;
        // Output pixels [p0, p1) of dy masked by the clamp (ReLU6; copied when dy comes
        // masked, or for a linear layer) to `out`, rows `ldo` apart.
        auto rows_of = [y, dy, C, dy_masked](std::size_t p0, std::size_t p1, float* out, std::size_t ldo) {
            auto one = [&](std::size_t p, std::size_t n, float* o) {
                if (dy_masked) kernels::copy_prefetched(dy + p * C, o, n);
                else mask_rows(y + p * C, dy + p * C, o, n);
            };
            if (ldo == C) return one(p0, (p1 - p0) * C, out);
            for (std::size_t p = p0; p < p1; ++p) one(p, C, out + (p - p0) * ldo);
        };
        if (op_.pointwise()) {
            if (dx) train_pack_.pack(kernels::Trans::Yes, C, g.c, folded_.data(), C);
            kernels::pointwise_backward(g.n * g.oh * g.ow, g.c, C, x, dx ? &train_pack_ : nullptr, rows_of, dw, dx, 0,
                                        nullptr, nullptr, dx_clamp);
        } else if (op_.spec.depthwise) {
            kernels::depthwise_backward_produced(
                g, x, folded_.data(),
                [&rows_of, ow, C](std::size_t r0, std::size_t r1, float* out) { rows_of(r0 * ow, r1 * ow, out, C); },
                dw, dx, nullptr, nullptr, nullptr, dx_clamp);
        } else {
            kernels::conv2d_backward_weight_produced(
                g, C, x, [&rows_of, ow, C](std::size_t r, float* out) { rows_of(r * ow, (r + 1) * ow, out, C); }, dw,
                op_.spec.input);
        }
        if (dw) scale_kernel_gradient();
    }
    /// `n` floats of the gradient before the activation: dy where lo < y < hi (ReLU6), or dy.
    static void mask_rows(const float* y, const float* dy, float* out, std::size_t n) {
        if constexpr (std::is_same_v<Act, ReLU6>) kernels::clamp_backward_stream(y, dy, out, n, lo, hi);
        else std::copy(dy, dy + n, out);
    }

    /// d loss / d w = d loss / d w' * scale (w' = w * scale per output channel).
    void scale_kernel_gradient() {
        const std::size_t C = op_.out_channels();
        float* d = op_.dkernel.data();
        const float* s = scale_.data();
        for (std::size_t o = 0; o < op_.dkernel.size(); o += C)
            for (std::size_t c = 0; c < C; ++c) d[o + c] *= s[c];
    }

    detail::ConvOp op_;
    detail::BatchNormCore bn_;
    kernels::ConvGeometry geom_{};
    Path path_ = Path::folded;
    bool dirty_ = true;
    std::uint64_t fold_version_ = 0;
    std::vector<float> folded_, scale_, shift_;
    kernels::PackedMatrix packed_;  ///< folded 1x1 weights in the gemm's panel layout
    /// A 1x1 convolution's weights packed for the training kernels: W for the forward, W^T
    /// for the input gradient (each packs it again).
    kernels::PackedMatrix train_pack_;
    /// Pre-norm output, kept for backward; aligned, so that the kernels writing and reading
    /// it can use whole aligned vectors and stream a large one past the caches.
    kernels::AlignedBuffer z_;
    std::vector<float> g_, dz_;  ///< masked gradient, its input gradient (when there is no scratch)
    std::vector<double> moving_sums_;  ///< gamma's and beta's gradient sums on the moving-statistics path
    kernels::BatchNormPointwiseBackward produced_;  ///< backward from a produced output gradient
    kernels::CentredGram gram_;                     ///< the input's statistics (forward_statistics_from_input)
    bool gram_valid_ = false;                       ///< gram_ is of the last forward's input
    std::vector<float> stat_mean_, stat_var_;       ///< batch statistics made by this layer's kernels
    std::size_t produced_rows_ = 0;
    bool produced_affine_ = false;
};

/// `ConvBN` with its convolution fixed at compile time: `Filters` outputs, square
/// `Kernel`, `Stride`, TensorFlow SAME padding. The convolution reads its input as
/// `x * InScale + InOffset` (padding zero after the map): a rescaling folded in, at no
/// cost with the direct kernel of few-channel inputs (MobileNetV2's stem: 2, -1).
template <std::size_t Filters, std::size_t Kernel, std::size_t Stride, class Act = ReLU6, float InScale = 1.0f,
          float InOffset = 0.0f>
class Conv2DBN : public ConvBN<Act> {
public:
    Conv2DBN()
        : ConvBN<Act>(detail::ConvSpec{Filters, Kernel, Stride, Padding::Same, false,
                                       kernels::InputMap{InScale, InOffset}}) {}
    std::string name() const { return "Conv2DBN"; }
};

}  // namespace typenet
