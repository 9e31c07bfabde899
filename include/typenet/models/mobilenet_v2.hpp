/// @file models/mobilenet_v2.hpp
/// `models::MobileNetV2`: the MobileNetV2 network (width 1.0) as a type.
///
/// Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (2018):
/// a 3x3 stride-2 convolution to 32 channels, 17 inverted-residual blocks
/// (t, c, n, s) = (1,16,1,1), (6,24,2,2), (6,32,3,2), (6,64,4,2), (6,96,3,1),
/// (6,160,3,2), (6,320,1,1), a 1x1 convolution to 1280 channels and global average
/// pooling: a 224x224x3 image becomes 1,280 features. Every convolution is followed by
/// batch norm (epsilon 1e-3) and, except the projections, ReLU6; padding is
/// TensorFlow's SAME (asymmetric for stride 2), so ImageNet weights trained in
/// TensorFlow give TensorFlow's answers.
///
/// Input: NHWC images with values in [0, 1]; the model applies x * 2 - 1 itself (the
/// range the ImageNet weights expect), inside the first convolution, which reads its
/// input through that map (no separate pass; the padding is zero after the map, as in
/// TensorFlow, where the rescaling is a layer of its own). `MobileNetV2<true>` adds the 1001-class ImageNet
/// classifier (index 0 = background) with the activation `TopActivation` (Softmax by
/// default; `Linear` gives logits).
///
/// It is a layer like any other: `Sequential<models::MobileNetV2<>, Dropout<0.5f>,
/// Dense<3, Softmax>>`. Sub-layers carry TF-slim's names (`Conv`, `expanded_conv`,
/// `expanded_conv_1` ... `expanded_conv_16`, `Conv_1`, `Logits`), so parameters are
/// named like the checkpoint's variables (`expanded_conv_3/project/BatchNorm/gamma`).
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "typenet/core/layer.hpp"
#include "typenet/core/sequential.hpp"
#include "typenet/layers/conv_bn.hpp"
#include "typenet/layers/dense.hpp"
#include "typenet/layers/global_average_pooling2d.hpp"
#include "typenet/layers/inverted_residual.hpp"
#include "typenet/layers/linear.hpp"
#include "typenet/layers/relu6.hpp"
#include "typenet/layers/softmax.hpp"

namespace typenet::models {

namespace detail {
template <class... Top>
using mobilenet_v2_net = Sequential<
    Conv2DBN<32, 3, 2, ReLU6, 2.0f, -1.0f>,      // Conv, reading x * 2 - 1: [0, 1] -> [-1, 1]
    InvertedResidual<1, 16, 1>,                  // expanded_conv
    InvertedResidual<6, 24, 2>, InvertedResidual<6, 24, 1>,
    InvertedResidual<6, 32, 2>, InvertedResidual<6, 32, 1>, InvertedResidual<6, 32, 1>,
    InvertedResidual<6, 64, 2>, InvertedResidual<6, 64, 1>, InvertedResidual<6, 64, 1>, InvertedResidual<6, 64, 1>,
    InvertedResidual<6, 96, 1>, InvertedResidual<6, 96, 1>, InvertedResidual<6, 96, 1>,
    InvertedResidual<6, 160, 2>, InvertedResidual<6, 160, 1>, InvertedResidual<6, 160, 1>,
    InvertedResidual<6, 320, 1>,                 // expanded_conv_16
    Conv2DBN<1280, 1, 1>,                        // Conv_1
    GlobalAveragePooling2D, Top...>;
}  // namespace detail

/// MobileNetV2 1.0 (see the file comment).
template <bool IncludeTop = false, class TopActivation = Softmax>
class MobileNetV2 {
public:
    using net_type = std::conditional_t<IncludeTop, detail::mobilenet_v2_net<Dense<1001, TopActivation>>,
                                        detail::mobilenet_v2_net<>>;
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 2;
    static constexpr std::size_t blocks = 17;
    /// Index in the layer chain of block 0 (`expanded_conv`).
    static constexpr std::size_t first_block = 1;
    static constexpr std::size_t feature_size = 1280;
    static constexpr bool outputs_probabilities = IncludeTop && typenet::outputs_probabilities<TopActivation>();
    static constexpr bool outputs_logits = IncludeTop && std::is_same_v<TopActivation, Linear>;

    MobileNetV2() {
        net_.set_layer_name(0, "Conv");
        for (std::size_t b = 0; b < blocks; ++b)
            net_.set_layer_name(first_block + b, b == 0 ? "expanded_conv" : "expanded_conv_" + std::to_string(b));
        net_.set_layer_name(first_block + blocks, "Conv_1");
        net_.set_layer_name(first_block + blocks + 1, "global_average_pooling");
        if constexpr (IncludeTop) net_.set_layer_name(first_block + blocks + 2, "Logits");
    }

    std::string name() const { return "MobileNetV2"; }
    std::string config() const { return IncludeTop ? "width 1.0, top 1001" : "width 1.0"; }

    Shape<2> output_shape(const Shape<4>& in) const {
        if (in[3] != 3) throw shape_error("MobileNetV2: input must have 3 channels (RGB), got " + std::to_string(in[3]));
        return net_.output_shape(in);
    }
    void build(const Shape<4>& in, Rng& rng) { net_.build(in, rng); }
    /// Build for `size` x `size` RGB images (224 for the ImageNet weights).
    void build(std::size_t size = 224, std::uint64_t seed = 42) { net_.build({size, size, 3}, seed); }

    void forward(const Tensor<4>& x, Tensor<2>& y, const Context& ctx) { net_.forward(x, y, ctx); }
    void backward(const Tensor<4>& x, const Tensor<2>& y, const Tensor<2>& dy, Tensor<4>* dx, const Context& ctx) {
        net_.backward(x, y, dy, dx, ctx);
    }

    /// Run on a batch of images in [0, 1] (evaluation mode); returns the features
    /// (or the classifier's output with IncludeTop), valid until the next call.
    const Tensor<2>& forward(const Tensor<4>& x) { return net_.forward(x); }

    // Through a type-erased visitor: the backbone's visit is compiled once, not once per
    // caller's lambda (see `FunctionRef`).
    void visit_parameters(ParamVisitor f) { net_.visit_parameters(f); }
    void visit_buffers(BufferVisitor f) { net_.visit_buffers(f); }

    /// Freeze or unfreeze everything.
    void set_trainable(bool t) { net_.set_trainable(t); }
    bool is_trainable() const { return net_.is_trainable(); }

    /// Freeze everything below block `Block` (0..16) and unfreeze the blocks from
    /// `Block` on, the last 1x1 convolution (and the classifier).
    template <std::size_t Block>
    void unfreeze_from() {
        static_assert(Block < blocks, "typenet: MobileNetV2 has blocks 0..16");
        unfreeze_from(Block);
    }
    /// Run-time version of `unfreeze_from<Block>()`.
    void unfreeze_from(std::size_t block) {
        if (block >= blocks) throw config_error("MobileNetV2::unfreeze_from: block " + std::to_string(block) + " > 16");
        const std::size_t first = first_block + block;
        std::size_t i = 0;
        net_.for_each_layer([&](auto& slot) { slot.set_trainable(i++ >= first); });
    }
    /// Unfreeze from a block named as in TF-slim ("expanded_conv_12", "Conv_1").
    void unfreeze_from(const std::string& layer_name) {
        for (std::size_t i = 0; i < net_type::size; ++i)
            if (net_.layer_name(i) == layer_name) {
                std::size_t k = 0;
                net_.for_each_layer([&](auto& slot) { slot.set_trainable(k++ >= i); });
                return;
            }
        throw config_error("MobileNetV2::unfreeze_from: no layer named \"" + layer_name + "\"");
    }

    /// Set every batch norm's mode (e.g. Frozen to fine-tune with moving statistics).
    void set_batchnorm_mode(BatchNormMode m) {
        net_.for_each_layer([&](auto& slot) {
            if constexpr (requires { slot.set_batchnorm_mode(m); }) slot.set_batchnorm_mode(m);
        });
    }

    /// The layer chain (Conv, 17 blocks, Conv_1, pooling[, Logits]).
    net_type& net() noexcept { return net_; }
    const net_type& net() const noexcept { return net_; }

private:
    net_type net_;
};

}  // namespace typenet::models
