/// @file core/layer.hpp
/// The `Layer` concept: what a type must provide to be a layer of a `Sequential`.
///
/// A layer is a plain struct. It declares the rank of the tensors it takes and gives
/// (batch dimension included; 0 means "any rank" for the input, "same as the input"
/// for the output), computes its output shape from its input shape, and implements
/// forward and backward on `Tensor<N>` (= `xt::xtensor<float, N>`):
///
/// ```cpp
/// struct Square {                                   // y = x * x, element-wise
///     static constexpr std::size_t input_rank = 2;  // (batch, features)
///     static constexpr std::size_t output_rank = 2;
///     Shape<2> output_shape(const Shape<2>& in) const { return in; }
///     void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = x * x; }
///     void backward(const Tensor<2>& x, const Tensor<2>& /*y*/, const Tensor<2>& dy,
///                   Tensor<2>* dx, const Context&) {
///         if (dx) *dx = 2.0f * x * dy;
///     }
/// };
/// ```
///
/// The container allocates `y` (shape `output_shape(x.shape)`) and `*dx` (the shape of
/// `x`) before calling, and reuses them across batches. `dx` is null when no layer
/// below needs the input gradient. `backward` also writes the gradients of the layer's
/// parameters (when `ctx.trainable`); it is called after the `forward` of the same
/// batch, with the same `x` and `y`, so a layer may keep what it needs from `forward`.
///
/// Optional members, detected when present:
/// - `void build(const Shape<In>& input_shape, Rng& rng)`: allocate and initialise the
///   parameters once the input shape is known (called by `Sequential::build`);
/// - `visit_parameters(f)` / `visit_buffers(f)`: see core/parameter.hpp;
/// - `std::string name() const`: the type's name in summaries (default: the C++ type
///   name without namespaces and template arguments);
/// - `std::string config() const`: settings that must match when loading saved weights;
/// - `set_trainable(bool)` and `bool is_trainable() const`: for layers that contain
///   others and manage freezing themselves.
/// See docs/concepts.md.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>
#include <type_traits>

#include "typenet/core/parameter.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/core/type_name.hpp"

namespace typenet {

/// `input_rank = any_rank` accepts any rank; `output_rank = any_rank` keeps the input's.
inline constexpr std::size_t any_rank = 0;

/// Transient buffers shared by the layers of a model: intermediate tensors that do
/// not outlive one call (an inverted-residual block's expanded and depthwise tensors
/// in inference, the gradients inside a block or a ConvBN during backward) live here
/// instead of in each layer, so a deep model holds one set of them, not one per layer.
/// Buffers only grow; `buffer(i, n)` keeps its address until a larger size is asked for.
class Scratch {
public:
    static constexpr std::size_t slots = 4;
    /// Who uses which slot. A composite block (InvertedResidual) holds `block_a`/`block_b`
    /// for the duration of one forward or backward call, and the layers it calls use
    /// `layer_a`/`layer_b` inside their own calls only; nothing survives a call.
    static constexpr std::size_t block_a = 0, block_b = 1, layer_a = 2, layer_b = 3;
    /// Buffer `i` (< slots) with room for at least `n` floats (uninitialised).
    float* buffer(std::size_t i, std::size_t n) {
        Slot& s = slots_[i];
        if (s.size < n) {
            s.data.reset(new float[n]);
            s.size = n;
        }
        return s.data.get();
    }
    /// Total floats held.
    std::size_t capacity() const noexcept {
        std::size_t t = 0;
        for (const Slot& s : slots_) t += s.size;
        return t;
    }

private:
    struct Slot {
        std::unique_ptr<float[]> data;
        std::size_t size = 0;
    };
    Slot slots_[slots];
};

struct Context;

/// A transient buffer of `n` floats: slot `slot` of the context's shared scratch when it has
/// one (one set for the whole model instead of one per layer), else `own`, grown to `n`.
inline float* scratch_or_own(const Context& ctx, std::size_t slot, std::vector<float>& own, std::size_t n);

/// What a forward or backward call is for.
struct Context {
    /// A training step: dropout is active and batch norm (unless frozen) uses batch statistics.
    bool training = false;
    /// The layer's parameters are being trained: `backward` must write their gradients.
    bool trainable = true;
    /// Seed of this step for this layer: layers that draw random numbers (dropout) use
    /// `Rng(ctx.seed)`, so results depend only on the model's seed and the step.
    std::uint64_t seed = 0;
    /// A backward pass will follow this forward: keep what it needs. When false
    /// (inference, or a frozen part of the model), a layer may use `scratch`.
    bool backward = true;
    /// That backward will ask for the input gradient (`dx` not null).
    bool input_gradient = true;
    /// Shared transient buffers (see Scratch); may be null (a layer then uses its own).
    Scratch* scratch = nullptr;
};

inline float* scratch_or_own(const Context& ctx, std::size_t slot, std::vector<float>& own, std::size_t n) {
    if (ctx.scratch) return ctx.scratch->buffer(slot, n);
    own.resize(n);
    return own.data();
}

namespace detail {
template <class L>
concept has_input_rank = requires {
    { L::input_rank } -> std::convertible_to<std::size_t>;
};
template <class L>
concept has_output_rank = requires {
    { L::output_rank } -> std::convertible_to<std::size_t>;
};
}  // namespace detail

/// The rank a layer takes, 0 for any (or when the type declares none).
template <class L>
constexpr std::size_t declared_input_rank() {
    if constexpr (detail::has_input_rank<L>) return L::input_rank;
    else return any_rank;
}

/// The rank a layer gives when fed rank `In`.
template <class L, std::size_t In>
constexpr std::size_t output_rank_for() {
    if constexpr (detail::has_output_rank<L>) return L::output_rank == any_rank ? In : L::output_rank;
    else return In;
}

/// Does `L` accept rank-`In` input (by its declaration)?
template <class L, std::size_t In>
constexpr bool accepts_rank() {
    return declared_input_rank<L>() == any_rank || declared_input_rank<L>() == In;
}

/// Individual requirements of the Layer concept, for readable diagnostics.
namespace detail {
template <class L, std::size_t N, std::size_t M = output_rank_for<L, N>()>
concept has_output_shape = requires(const L& l, const Shape<N>& s) {
    { l.output_shape(s) } -> std::same_as<Shape<M>>;
};
template <class L, std::size_t N, std::size_t M = output_rank_for<L, N>()>
concept has_forward = requires(L& l, const Tensor<N>& x, Tensor<M>& y, const Context& c) { l.forward(x, y, c); };
template <class L, std::size_t N, std::size_t M = output_rank_for<L, N>()>
concept has_backward = requires(L& l, const Tensor<N>& x, const Tensor<M>& y, Tensor<N>* dx, const Context& c) {
    l.backward(x, y, y, dx, c);
};
template <class L, std::size_t N>
concept has_build = requires(L& l, const Shape<N>& s, Rng& r) { l.build(s, r); };
template <class L>
concept has_name = requires(const L& l) {
    { l.name() } -> std::convertible_to<std::string>;
};
template <class L>
concept has_config = requires(const L& l) {
    { l.config() } -> std::convertible_to<std::string>;
};
template <class L>
concept manages_trainable = requires(L& l, const L& cl) {
    l.set_trainable(true);
    { cl.is_trainable() } -> std::convertible_to<bool>;
};
}  // namespace detail

/// `L` is a layer that can take rank-`N` input.
template <class L, std::size_t N>
concept LayerFor = std::is_class_v<L> && detail::has_input_rank<L> && detail::has_output_rank<L> &&
                   accepts_rank<L, N>() && detail::has_output_shape<L, N> && detail::has_forward<L, N> &&
                   detail::has_backward<L, N>;

/// `L` is a layer (checked at its declared input rank, or rank 2 for any-rank layers).
template <class L>
concept Layer = LayerFor<L, (declared_input_rank<L>() == any_rank ? 2 : declared_input_rank<L>())>;

/// Checks each requirement of `LayerFor<L, N>` with its own readable message; use it
/// where a layer type enters a container, so a wrong type gives one clear error.
template <class L, std::size_t N>
constexpr bool check_layer() {
    if constexpr (!std::is_class_v<L>) {
        static_assert(std::is_class_v<L>, "typenet: this type is not a Layer: a layer must be a class (see docs/concepts.md)");
        return false;
    } else if constexpr (!detail::has_input_rank<L>) {
        static_assert(detail::has_input_rank<L>,
                      "typenet: this type is not a Layer: it has no `static constexpr std::size_t input_rank` (see docs/concepts.md)");
        return false;
    } else if constexpr (!detail::has_output_rank<L>) {
        static_assert(detail::has_output_rank<L>,
                      "typenet: this type is not a Layer: it has no `static constexpr std::size_t output_rank` (see docs/concepts.md)");
        return false;
    } else if constexpr (!accepts_rank<L, N>()) {
        static_assert(accepts_rank<L, N>(),
                      "typenet: layer input rank mismatch: the previous layer's output rank differs from this layer's `input_rank`");
        return false;
    } else if constexpr (!detail::has_output_shape<L, N>) {
        static_assert(detail::has_output_shape<L, N>,
                      "typenet: this type is not a Layer: it lacks `Shape<out> output_shape(const Shape<in>&) const` (see docs/concepts.md)");
        return false;
    } else if constexpr (!detail::has_forward<L, N>) {
        static_assert(detail::has_forward<L, N>,
                      "typenet: this type is not a Layer: it lacks `void forward(const Tensor<in>& x, Tensor<out>& y, const Context&)` (see docs/concepts.md)");
        return false;
    } else if constexpr (!detail::has_backward<L, N>) {
        static_assert(detail::has_backward<L, N>,
                      "typenet: this type is not a Layer: it lacks `void backward(const Tensor<in>& x, const Tensor<out>& y, const Tensor<out>& dy, Tensor<in>* dx, const Context&)` (see docs/concepts.md)");
        return false;
    } else {
        return true;
    }
}

/// Does `T` (a layer or an activation) output probabilities (it ends in a softmax)?
template <class T>
constexpr bool outputs_probabilities() {
    if constexpr (requires { T::outputs_probabilities; }) return T::outputs_probabilities;
    else return false;
}

/// Is `T` (a layer) known to output logits (an affine map with no activation)?
template <class T>
constexpr bool outputs_logits() {
    if constexpr (requires { T::outputs_logits; }) return T::outputs_logits;
    else return false;
}

/// The display name of a layer type: `name()` if it has one, else the type's base name.
template <class L>
std::string layer_type_name(const L& l) {
    if constexpr (detail::has_name<L>) return std::string(l.name());
    else return base_type_name<L>();
}

/// Number of trainable-parameter elements of a layer (0 when it has none).
template <class L>
std::size_t count_parameters(L& l) {
    std::size_t n = 0;
    if constexpr (Trainable<L>) l.visit_parameters([&](ParamRef& p) { n += p.size; });
    return n;
}

/// Number of persistent buffer elements of a layer (0 when it has none).
template <class L>
std::size_t count_buffers(L& l) {
    std::size_t n = 0;
    if constexpr (HasBuffers<L>) l.visit_buffers([&](BufferRef& b) { n += b.size; });
    return n;
}

}  // namespace typenet
