/// @file layers/inverted_residual.hpp
/// `InvertedResidual<Expansion, OutChannels, Stride>`: MobileNetV2's block.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/kernels/inverted_residual.hpp"
#include "typenet/layers/conv_bn.hpp"

namespace typenet {

/// expand 1x1 (to Expansion x input channels) + BN + ReLU6, depthwise 3x3 with
/// stride `Stride` + BN + ReLU6, project 1x1 (to `OutChannels`) + BN (linear
/// bottleneck), and the input added to the output when the stride is 1 and the
/// channel counts are equal. With Expansion 1 there is no expand convolution.
///
/// Memory: when no backward follows (inference, frozen backbone) the expanded and
/// depthwise tensors live in the model's shared scratch buffers (one set for the
/// whole model); otherwise the block keeps its own for the backward pass. In a training
/// step with batch statistics it keeps only the convolutions' pre-normalisation outputs:
/// the expanded and depthwise activations are never written, the next convolution applies
/// batch norm and ReLU6 as it reads (`ConvBN::defers_activation`, `kernels::ChannelMap`).
/// On large images the expansion and the depthwise layer run as one kernel
/// (`kernels::expand_depthwise_forward`, see `fuse_expand_depthwise`): the expanded tensor
/// is written for the backward pass and never read back in the forward.
template <std::size_t Expansion, std::size_t OutChannels, std::size_t Stride>
class InvertedResidual {
    static_assert(Expansion >= 1 && OutChannels >= 1 && (Stride == 1 || Stride == 2),
                  "typenet: InvertedResidual needs Expansion >= 1, OutChannels >= 1, stride 1 or 2");

public:
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;
    static constexpr bool has_expand = Expansion != 1;

    InvertedResidual()
        : expand_(detail::ConvSpec{0, 1, 1, Padding::Same, false}),
          depthwise_(detail::ConvSpec{0, 3, Stride, Padding::Same, true}),
          project_(detail::ConvSpec{OutChannels, 1, 1, Padding::Same, false}) {}

    std::string name() const { return "InvertedResidual"; }
    std::string config() const {
        return "t=" + std::to_string(Expansion) + " c=" + std::to_string(OutChannels) + " s=" + std::to_string(Stride);
    }

    Shape<4> output_shape(const Shape<4>& in) const {
        if (in_channels_ && in[3] != in_channels_)
            throw shape_error("InvertedResidual: input has " + std::to_string(in[3]) +
                              " channels, the block was built for " + std::to_string(in_channels_));
        const Shape<4> e{in[0], in[1], in[2], in[3] * Expansion};
        const Shape<4> d = depthwise_.output_shape(e);
        return {d[0], d[1], d[2], OutChannels};
    }

    void build(const Shape<4>& in, Rng& rng) {
        in_channels_ = in[3];
        const Shape<4> e{in[0], in[1], in[2], in[3] * Expansion};
        if constexpr (has_expand) {
            expand_.set_spec(detail::ConvSpec{in[3] * Expansion, 1, 1, Padding::Same, false});
            expand_.build(in, rng);
        }
        depthwise_.build(e, rng);
        project_.build(depthwise_.output_shape(e), rng);
    }

    /// Will a forward with `ctx` run the fused inference kernel (no backward follows and
    /// all three batch norms are folded)?
    bool fused_for(const Context& ctx) const {
        return !ctx.backward && expand_folded(ctx) && depthwise_.folded_for(ctx) && project_.folded_for(ctx);
    }

    /// A preceding `ConvBN` (`first`, run with `first_ctx`) and this block (with `ctx`) as
    /// one layer, when the block has no expansion and no skip connection and `first` is on
    /// the direct kernel (a network's stem from RGB: MobileNetV2's first convolution and
    /// block 0); `first`'s output is never written. `x` is `first`'s input, `y` this block's
    /// output. Returns false, doing nothing, when the pair does not qualify (the caller then
    /// runs the two layers one after the other). `Sequential` calls this for such a pair.
    ///
    /// - Inference (both would run folded): `kernels::stem_inverted_residual_forward`.
    /// - Training with batch statistics (`first.defers_first_activation`, and this block
    ///   defers its activations): `first` keeps its convolution's output and the depthwise
    ///   layer reads it through `first`'s batch norm and ReLU6, as the block's layers read
    ///   each other's; the backward is then `backward_after`, where the depthwise layer takes
    ///   `first`'s batch-norm sums from the gradient it makes.
    template <class Act>
    bool forward_after(ConvBN<Act>& first, const Tensor<4>& x, Tensor<4>& y, const Context& first_ctx,
                       const Context& ctx) {
        after_first_ = false;
        if constexpr (has_expand) {
            return false;
        } else {
            if (first_ctx.backward && ctx.backward) return forward_after_training(first, x, y, first_ctx, ctx);
            if (first_ctx.backward || !first.folded_for(first_ctx) || !fused_for(ctx) || first.spec().depthwise)
                return false;
            const kernels::ConvGeometry gs = first.geometry(shape_of(x));
            const std::size_t cs = first.spec().filters;
            if (!kernels::conv_direct_eligible(gs, cs) || cs != in_channels_ || residual()) return false;
            const Shape<4> in{gs.n, gs.oh, gs.ow, cs};
            require_shape(y, output_shape(in), "InvertedResidual::forward_after: output");
            first.ensure_folded();
            repack_if_needed(cs);
            kernels::Epilogue es;
            es.bias = first.folded_shift();
            es.lo = ConvBN<Act>::lo;
            es.hi = ConvBN<Act>::hi;
            kernels::stem_inverted_residual_forward(gs, cs, x.data(), first.folded_weights(), es, first.spec().input,
                                                    depthwise_.geometry(in), OutChannels, fused_, y.data());
            return true;
        }
    }

    /// The backward of `first` and this block after a training `forward_after` (see there):
    /// `x` is `first`'s input, `y` and `dy` this block's output and its gradient. `first`
    /// gets no input gradient.
    template <class Act>
    void backward_after(ConvBN<Act>& first, const Tensor<4>& x, const Tensor<4>& y, const Tensor<4>& dy,
                        const Context& first_ctx, const Context& ctx) {
        if (!after_first_)
            throw config_error("InvertedResidual::backward_after: the last forward did not run fused with the layer "
                               "before the block");
        const kernels::ConvGeometry gs = first.geometry(shape_of(x));
        const Shape<4> in{gs.n, gs.oh, gs.ow, first.spec().filters};
        const Shape<4> d = depthwise_.output_shape(in);
        float* gd = project_backward_deferred(d, y, dy, ctx);
        // The gradient of first's output, with first's batch-norm sums taken as it is made.
        float* gf = scratch_or_own(ctx, Scratch::block_a, ge_, shape_size(in));
        const kernels::ChannelMap fmap = first.activation_map();
        const kernels::DxBatchNormSums fsums = first.gradient_sums();
        depthwise_.backward_raw(first.pre_activation(), in, nullptr, gd, gf, ctx, &fmap, &fsums, true);
        first.backward_raw(x.data(), shape_of(x), nullptr, gf, nullptr, first_ctx, nullptr, nullptr, true);
    }

    /// Is the skip connection used (stride 1 and equal channels)?
    bool residual() const noexcept { return Stride == 1 && in_channels_ == OutChannels; }

    void forward(const Tensor<4>& x, Tensor<4>& y, const Context& ctx) {
        after_first_ = false;
        const Shape<4> in = shape_of(x);
        const Shape<4> e{in[0], in[1], in[2], in[3] * Expansion};
        const Shape<4> d = depthwise_.output_shape(e);
        const std::size_t ne = shape_size(e), nd = shape_size(d);
        if (!ctx.backward && expand_folded(ctx) && depthwise_.folded_for(ctx) && project_.folded_for(ctx)) {
            // Inference: the three convolutions in one pass over row bands (the expanded
            // tensor stays in cache), with the folded weights packed once.
            repack_if_needed(in[3]);
            kernels::inverted_residual_forward(depthwise_.geometry(e), in[3], OutChannels, x.data(), fused_, y.data(),
                                               residual());
            return;
        }
        // A training pass: the expanded and depthwise activations are never written; the
        // next convolution reads the previous one's output through its batch norm and ReLU6
        // as it loads it, in forward and in backward.
        deferred_ = ctx.backward && depthwise_.defers_activation(ctx) && project_.defers_activation(ctx) &&
                    (!has_expand || expand_.defers_activation(ctx));
        if (deferred_) {
            e_ = Tensor<4>();
            d_ = Tensor<4>();
            if constexpr (has_expand) {
                if (fuse_expand_depthwise(in, e)) {
                    // The expansion's statistics from the input's covariance, then both
                    // layers in one pass: the expanded tensor is written once, for the
                    // backward pass, and never read back here.
                    expand_.forward_statistics_from_input(x.data(), in, ctx);
                    depthwise_.forward_from_expansion(x.data(), in, e, expand_, ctx);
                } else {
                    expand_.forward_raw(x.data(), in, nullptr, nullptr, ctx);
                    const kernels::ChannelMap emap = expand_.activation_map();
                    depthwise_.forward_raw(expand_.pre_activation(), e, nullptr, nullptr, ctx, &emap);
                }
            } else {
                depthwise_.forward_raw(x.data(), e, nullptr, nullptr, ctx);
            }
            project_forward_deferred(d, y, residual() ? x.data() : nullptr, ctx);
            return;
        }
        float* eb;
        float* db;
        if (ctx.backward || !ctx.scratch) {
            if constexpr (has_expand) ensure_shape(e_, e);
            ensure_shape(d_, d);
            eb = has_expand ? e_.data() : nullptr;
            db = d_.data();
        } else {
            eb = has_expand ? ctx.scratch->buffer(Scratch::block_a, ne) : nullptr;
            db = ctx.scratch->buffer(Scratch::block_b, nd);
        }
        const float* ein = x.data();
        if constexpr (has_expand) {
            expand_.forward_raw(x.data(), in, eb, nullptr, ctx);
            ein = eb;
        }
        depthwise_.forward_raw(ein, e, db, nullptr, ctx);
        project_.forward_raw(db, d, y.data(), residual() ? x.data() : nullptr, ctx);
    }

    void backward(const Tensor<4>& x, const Tensor<4>& y, const Tensor<4>& dy, Tensor<4>* dx, const Context& ctx) {
        if (after_first_)
            throw config_error("InvertedResidual::backward: the last forward ran fused with the layer before the "
                               "block; its backward is backward_after");
        const Shape<4> in = shape_of(x);
        const Shape<4> e{in[0], in[1], in[2], in[3] * Expansion};
        const Shape<4> d = depthwise_.output_shape(e);
        // The gradients of the expanded and depthwise tensors are transient: the model's
        // shared scratch slots when there is one (ConvBN's own backward uses the other two).
        if (deferred_) {
            float* gd = project_backward_deferred(d, y, dy, ctx);
            if constexpr (has_expand) {
                // And the depthwise layer takes the expansion's, from the gradient it makes.
                const kernels::ChannelMap emap = expand_.activation_map();
                const kernels::DxBatchNormSums esums = expand_.gradient_sums();
                const std::size_t chunks = kernels::depthwise_backward_chunks(depthwise_.geometry(e));
                if (shape_size(in) / in[3] >= 4 * chunks * in[3]) {
                    // Large blocks: the expansion's backward consumes the depthwise input
                    // gradient row by row, so it is never stored (its per-chunk copies of
                    // dW and the pass over its input cost little next to those tensors).
                    kernels::RowConsumer* rows =
                        expand_.begin_produced_backward(x.data(), in, dx ? dx->data() : nullptr, ctx, chunks, in[2]);
                    depthwise_.backward_raw(expand_.pre_activation(), e, nullptr, gd, nullptr, ctx, &emap, &esums,
                                            true, rows);
                    expand_.finish_produced_backward(dx && residual() ? dy.data() : nullptr);
                    return;
                }
                float* ge = scratch_or_own(ctx, Scratch::block_a, ge_, shape_size(e));
                depthwise_.backward_raw(expand_.pre_activation(), e, nullptr, gd, ge, ctx, &emap, &esums, true);
                expand_.backward_raw(x.data(), in, nullptr, ge, dx ? dx->data() : nullptr, ctx, nullptr, nullptr,
                                     true);
            } else {
                depthwise_.backward_raw(x.data(), e, nullptr, gd, dx ? dx->data() : nullptr, ctx, nullptr, nullptr,
                                        true);
            }
            if (dx && residual()) add_skip_gradient(dy, *dx);
            return;
        }
        // With frozen batch norms (fine-tuning: the folded path), each layer masks its input
        // gradient by the ReLU6 of the layer before while it reads that layer's output for
        // its weight gradient; that layer then takes the gradient as it comes, instead of
        // its own pass over its output and the gradient.
        const bool chain = project_.shares_clamp_mask(ctx) && depthwise_.shares_clamp_mask(ctx) &&
                           (!has_expand || expand_.shares_clamp_mask(ctx));
        const kernels::DxClamp relu6{ConvBN<ReLU6>::lo, ConvBN<ReLU6>::hi};
        const kernels::DxClamp* mask = chain ? &relu6 : nullptr;
        float* gd = scratch_or_own(ctx, Scratch::block_b, gd_, shape_size(d));
        project_.backward_raw(d_.data(), d, y.data(), dy.data(), gd, ctx, nullptr, nullptr, false, nullptr, mask);
        if constexpr (has_expand) {
            float* ge = scratch_or_own(ctx, Scratch::block_a, ge_, shape_size(e));
            depthwise_.backward_raw(e_.data(), e, d_.data(), gd, ge, ctx, nullptr, nullptr, false, nullptr, mask,
                                    chain);
            expand_.backward_raw(x.data(), in, e_.data(), ge, dx ? dx->data() : nullptr, ctx, nullptr, nullptr, false,
                                 nullptr, nullptr, chain);
        } else {
            depthwise_.backward_raw(x.data(), e, d_.data(), gd, dx ? dx->data() : nullptr, ctx, nullptr, nullptr,
                                    false, nullptr, nullptr, chain);
        }
        if (dx && residual()) add_skip_gradient(dy, *dx);
    }

    void visit_parameters(ParamVisitor f) {
        auto prefixed = [&](const char* prefix) {
            return [&f, prefix](ParamRef& p) {
                p.name = std::string(prefix) + "/" + p.name;
                f(p);
            };
        };
        if constexpr (has_expand) expand_.visit_parameters(prefixed("expand"));
        depthwise_.visit_parameters(prefixed("depthwise"));
        project_.visit_parameters(prefixed("project"));
    }
    void visit_buffers(BufferVisitor f) {
        auto prefixed = [&](const char* prefix) {
            return [&f, prefix](BufferRef& b) {
                b.name = std::string(prefix) + "/" + b.name;
                f(b);
            };
        };
        if constexpr (has_expand) expand_.visit_buffers(prefixed("expand"));
        depthwise_.visit_buffers(prefixed("depthwise"));
        project_.visit_buffers(prefixed("project"));
    }

    void set_batchnorm_mode(BatchNormMode m) {
        expand_.set_batchnorm_mode(m);
        depthwise_.set_batchnorm_mode(m);
        project_.set_batchnorm_mode(m);
    }

    ConvBN<ReLU6>& expand() noexcept { return expand_; }
    ConvBN<ReLU6>& depthwise() noexcept { return depthwise_; }
    ConvBN<Linear>& project() noexcept { return project_; }

private:
    /// The projection after a depthwise layer with a deferred activation: it reads the
    /// depthwise output through that layer's batch norm and ReLU6 (`d` its input's shape).
    void project_forward_deferred(const Shape<4>& d, Tensor<4>& y, const float* skip, const Context& ctx) {
        const kernels::ChannelMap dmap = depthwise_.activation_map();
        project_.forward_raw(depthwise_.pre_activation(), d, y.data(), skip, ctx, &dmap);
    }
    /// Its backward, which also takes the depthwise batch norm's backward sums from the
    /// gradient it makes, while each block of it is in cache; returns that gradient (the
    /// depthwise output's, in the shared scratch).
    float* project_backward_deferred(const Shape<4>& d, const Tensor<4>& y, const Tensor<4>& dy, const Context& ctx) {
        float* gd = scratch_or_own(ctx, Scratch::block_b, gd_, shape_size(d));
        const kernels::ChannelMap dmap = depthwise_.activation_map();
        const kernels::DxBatchNormSums dsums = depthwise_.gradient_sums();
        project_.backward_raw(depthwise_.pre_activation(), d, y.data(), dy.data(), gd, ctx, &dmap, &dsums);
        return gd;
    }

    /// The training case of `forward_after` (block without expansion).
    template <class Act>
    bool forward_after_training(ConvBN<Act>& first, const Tensor<4>& x, Tensor<4>& y, const Context& first_ctx,
                                const Context& ctx) {
        if (!first.defers_first_activation(first_ctx, shape_of(x)) || !depthwise_.defers_activation(ctx) ||
            !project_.defers_activation(ctx))
            return false;
        const kernels::ConvGeometry gs = first.geometry(shape_of(x));
        const std::size_t cs = first.spec().filters;
        if (cs != in_channels_ || residual()) return false;
        const Shape<4> in{gs.n, gs.oh, gs.ow, cs};
        const Shape<4> d = depthwise_.output_shape(in);
        require_shape(y, output_shape(in), "InvertedResidual::forward_after: output");
        first.forward_raw(x.data(), shape_of(x), nullptr, nullptr, first_ctx);
        e_ = Tensor<4>();
        d_ = Tensor<4>();
        const kernels::ChannelMap fmap = first.activation_map();
        depthwise_.forward_raw(first.pre_activation(), in, nullptr, nullptr, ctx, &fmap);
        project_forward_deferred(d, y, nullptr, ctx);
        deferred_ = true;
        after_first_ = true;
        return true;
    }

    /// Does a training pass with deferred activations run the expansion and the depthwise
    /// layer fused (`kernels::expand_depthwise_forward`)? With two images or more (threads
    /// take whole images) of at least 28x28 pixels: each image's products then have rows
    /// enough to reuse the packed weights. Forward of MobileNetV2's blocks, batch 32, 2
    /// threads (AMD EPYC, AVX2), fused against unfused, interleaved runs: block 1 (112x112
    /// input) 50-55 -> 40-42 ms, blocks 2 and 3 (56x56) 10% and 17% faster, block 4 (28x28,
    /// stride 1) 4-9% faster, block 6 (28x28, stride 2) the same, block 7 (14x14) 15%
    /// slower, block 16 (7x7) twice as slow.
    bool fuse_expand_depthwise(const Shape<4>& in, const Shape<4>& e) const {
        return in[0] >= 2 && in[1] * in[2] >= 28 * 28 && kernels::expand_depthwise_fusable(depthwise_.geometry(e));
    }
    bool expand_folded(const Context& ctx) const {
        if constexpr (has_expand) return expand_.folded_for(ctx);
        else return true;
    }
    void repack_if_needed(std::size_t cin) {
        const std::uint64_t ve = has_expand ? expand_.ensure_folded() : 0;
        const std::uint64_t vd = depthwise_.ensure_folded(), vp = project_.ensure_folded();
        if (packed_ && ve == ve_ && vd == vd_ && vp == vp_) return;
        const std::size_t cexp = cin * Expansion;
        fused_.pack(cin, cexp, OutChannels, has_expand ? expand_.folded_weights() : nullptr,
                    has_expand ? expand_.folded_shift() : nullptr, depthwise_.folded_weights(), depthwise_.folded_shift(),
                    project_.folded_weights(), project_.folded_shift(), has_expand);
        ve_ = ve;
        vd_ = vd;
        vp_ = vp;
        packed_ = true;
    }

    std::size_t in_channels_ = 0;
    kernels::InvertedResidualWeights fused_;  ///< packed folded weights of the fused inference path
    std::uint64_t ve_ = 0, vd_ = 0, vp_ = 0;
    bool packed_ = false;
    ConvBN<ReLU6> expand_, depthwise_;
    ConvBN<Linear> project_;
    Tensor<4> e_, d_;    ///< expanded and depthwise outputs, kept for backward (not when deferred_)
    bool deferred_ = false;  ///< the last forward deferred the activations (see forward)
    bool after_first_ = false;  ///< the last forward was a training forward_after (see there)

    /// The skip connection's share of the input gradient.
    static void add_skip_gradient(const Tensor<4>& dy, Tensor<4>& dx) {
        float* g = dx.data();
        const float* s = dy.data();
        for (std::size_t i = 0; i < dx.size(); ++i) g[i] += s[i];
    }
    std::vector<float> ge_, gd_;  ///< their gradients (when the context has no scratch)
};

}  // namespace typenet
