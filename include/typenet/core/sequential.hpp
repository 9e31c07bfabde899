/// @file core/sequential.hpp
/// `Sequential<Ls...>`: a network as a type, a flat chain of layers.
///
/// The layers live in a `std::tuple` and every pass over them is a fold expression,
/// never a recursive nesting of types, so a deep network compiles quickly and its
/// error messages stay short. The chain of tensor ranks is computed at compile time
/// (a `Dense` after a convolution without `Flatten` or pooling is a compile error);
/// the chain of shapes is computed at run time from the input shape.
///
/// A `Sequential` owns the activation and gradient buffers between its layers and
/// reuses them from batch to batch: they are reallocated only when the batch shape
/// changes. It is itself a layer, so sequentials nest.
///
/// ```cpp
/// Sequential<Dense<32, ReLU>, Dropout<0.2f>, Dense<3, Softmax>> model;
/// model.build({2});                       // input: 2 features per example
/// std::cout << model.summary();
/// const Tensor<2>& probs = model.forward(x);   // x: (batch, 2)
/// ```
#pragma once

#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet {

/// A layer as held by a container: the layer itself (all its members remain
/// reachable) plus the container's per-layer settings: trainable or frozen, and a
/// learning-rate multiplier.
namespace detail {
/// Stand-in base for a non-class type named as a layer (the check reports it).
struct not_a_class_layer {};
template <class L>
using slot_base = std::conditional_t<std::is_class_v<L>, L, not_a_class_layer>;
}  // namespace detail

template <class L>
class Slot : public detail::slot_base<L> {
public:
    using layer_type = L;
    Slot() = default;
    explicit Slot(L layer) : L(std::move(layer)) {}

    /// Freeze (`false`) or unfreeze (`true`) the layer: a frozen layer's parameters
    /// get no gradient and are not updated; frozen batch norm uses its moving statistics.
    void set_trainable(bool trainable) {
        if constexpr (detail::manages_trainable<L>) L::set_trainable(trainable);
        trainable_ = trainable;
    }
    /// Is any parameter of the layer trainable?
    bool is_trainable() const {
        if constexpr (detail::manages_trainable<L>) return L::is_trainable();
        else return trainable_;
    }
    /// Multiply the optimizer's learning rate by `m` for this layer's parameters.
    void set_learning_rate_multiplier(float m) { lr_multiplier_ = m; }
    float learning_rate_multiplier() const { return lr_multiplier_; }

    /// The layer itself.
    L& get() { return *this; }
    const L& get() const { return *this; }

private:
    bool trainable_ = true;
    float lr_multiplier_ = 1.0f;
};

namespace detail {

template <class L>
constexpr std::size_t out_rank_given(std::size_t in) {
    if constexpr (has_output_rank<L>) return L::output_rank == any_rank ? in : L::output_rank;
    else return in;
}

/// "MobileNetV2" -> "mobile_net_v2", "Dense" -> "dense".
inline std::string snake_case(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (std::isupper(static_cast<unsigned char>(c))) {
            if (i > 0 && (std::islower(static_cast<unsigned char>(s[i - 1])) ||
                          std::isdigit(static_cast<unsigned char>(s[i - 1]))))
                out.push_back('_');
            out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        } else if (std::isalnum(static_cast<unsigned char>(c))) {
            out.push_back(c);
        } else if (!out.empty() && out.back() != '_') {
            out.push_back('_');
        }
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
}

/// 1234567 -> "1,234,567".
inline std::string thousands(std::size_t n) {
    std::string s = std::to_string(n), out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i && (s.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(s[i]);
    }
    return out;
}

}  // namespace detail

/// A flat chain of layers; see the file comment.
template <class... Ls>
class Sequential {
    static_assert(sizeof...(Ls) > 0, "typenet: Sequential needs at least one layer");

public:
    /// Number of layers.
    static constexpr std::size_t size = sizeof...(Ls);

private:
    using types = std::tuple<Ls...>;
    template <std::size_t I>
    using type_at = std::tuple_element_t<I, types>;

    static constexpr std::array<std::size_t, size + 1> compute_ranks() {
        std::array<std::size_t, size + 1> r{};
        r[0] = declared_input_rank<type_at<0>>();
        if (r[0] == any_rank) r[0] = 2;  // reported by the check below
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((r[I + 1] = detail::out_rank_given<type_at<I>>(r[I])), ...);
        }(std::make_index_sequence<size>{});
        return r;
    }

public:
    /// ranks[i]: rank of the input of layer i; ranks[size]: rank of the output.
    static constexpr std::array<std::size_t, size + 1> ranks = compute_ranks();
    static constexpr std::size_t input_rank = ranks[0];
    static constexpr std::size_t output_rank = ranks[size];
    using input_type = Tensor<input_rank>;
    using output_type = Tensor<output_rank>;
    /// The last layer ends in a softmax (a from-logits loss would be wrong).
    static constexpr bool outputs_probabilities = typenet::outputs_probabilities<type_at<size - 1>>();
    /// The last layer is known to output logits (a probability loss would be wrong).
    static constexpr bool outputs_logits = typenet::outputs_logits<type_at<size - 1>>();

private:
    static constexpr bool check_all() {
        static_assert(declared_input_rank<type_at<0>>() != any_rank || !detail::has_input_rank<type_at<0>>,
                      "typenet: the first layer of a Sequential must declare its input rank (a layer such as "
                      "ReLU accepts any rank, so it cannot come first)");
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return (check_layer<type_at<I>, ranks[I]>() && ...);
        }(std::make_index_sequence<size>{});
    }

public:
    /// true when every layer satisfies the Layer concept (otherwise compilation has
    /// already stopped with a message naming the missing member).
    static constexpr bool valid = check_all();
    static_assert(valid || true);  // instantiates the checks with the class

    Sequential() { init_names(); }
    /// Construct from layer objects (for layers with run-time settings).
    explicit Sequential(Ls... layers) : layers_(Slot<Ls>(std::move(layers))...) { init_names(); }

    Sequential(const Sequential& o) : layers_(o.layers_), names_(o.names_), built_(o.built_),
                                      example_shape_(o.example_shape_), seed_(o.seed_), step_(o.step_) {}
    Sequential& operator=(const Sequential& o) {
        if (this != &o) {
            layers_ = o.layers_;
            names_ = o.names_;
            built_ = o.built_;
            example_shape_ = o.example_shape_;
            seed_ = o.seed_;
            step_ = o.step_;
            last_input_ = nullptr;
        }
        return *this;
    }
    Sequential(Sequential&&) = default;
    Sequential& operator=(Sequential&&) = default;

    // ------------------------------------------------------------------ access
    /// Layer `I` (with the container's `set_trainable`, `set_learning_rate_multiplier`).
    template <std::size_t I>
    Slot<type_at<I>>& layer() {
        static_assert(I < size, "typenet: layer index out of range");
        return std::get<I>(layers_);
    }
    template <std::size_t I>
    const Slot<type_at<I>>& layer() const {
        static_assert(I < size, "typenet: layer index out of range");
        return std::get<I>(layers_);
    }
    /// Call `f(slot)` for every layer in order (a generic lambda sees each layer's type).
    template <class F>
    void for_each_layer(F&& f) {
        std::apply([&](auto&... s) { (f(s), ...); }, layers_);
    }
    template <class F>
    void for_each_layer(F&& f) const {
        std::apply([&](const auto&... s) { (f(s), ...); }, layers_);
    }

    /// Instance name of layer `i` ("dense", "dense_1", ...), used as parameter prefix.
    const std::string& layer_name(std::size_t i) const { return names_.at(i); }
    /// Rename layer `i` (names must stay unique: they key saved weights).
    void set_layer_name(std::size_t i, std::string name) { names_.at(i) = std::move(name); }

    // ------------------------------------------------------------------- build
    /// Allocate and initialise every layer's parameters for examples of shape
    /// `example_shape` (without the batch dimension), with the weights' seed `seed`.
    void build(const std::array<std::size_t, input_rank - 1>& example_shape,
               std::uint64_t seed = TYPENET_DEFAULT_SEED) {
        Shape<input_rank> s{};
        s[0] = 1;
        for (std::size_t i = 1; i < input_rank; ++i) s[i] = example_shape[i - 1];
        Rng rng(seed);
        build(s, rng);
        seed_ = seed;
    }

    /// Layer interface: build for input shape `in` (batch dimension included).
    void build(const Shape<input_rank>& in, Rng& rng) {
        build_chain(in, rng);
        for (std::size_t i = 1; i < input_rank; ++i) example_shape_[i - 1] = in[i];
        built_ = true;
        seed_ = rng();
    }
    bool built() const noexcept { return built_; }

    /// Seed of the random draws made while training (dropout masks).
    void set_seed(std::uint64_t seed) noexcept {
        seed_ = seed;
        step_ = 0;
    }

    // ------------------------------------------------------------ layer interface
    /// Output shape for an input of shape `in` (throws shape_error when a layer refuses it).
    Shape<output_rank> output_shape(const Shape<input_rank>& in) const {
        return shape_chain(in, std::make_index_sequence<size>{});
    }

    /// Layer interface: forward pass writing into `y`.
    void forward(const input_type& x, output_type& y, const Context& ctx) {
        if (!built_) auto_build(x);
        Context c = ctx;
        if (!c.scratch) c.scratch = &scratch_;
        // Layers below the lowest trainable one need no backward, unless the caller
        // wants the input gradient.
        const std::size_t lowest = !c.backward ? size : c.input_gradient ? 0 : first_trainable();
        std::size_t skip = 0;
        [&]<std::size_t... I>(std::index_sequence<I...>) { (forward_one<0, I>(x, y, c, lowest, skip), ...); }(
            std::make_index_sequence<size>{});
    }

    /// Layer interface: backward pass (after the forward of the same batch).
    void backward(const input_type& x, const output_type& y, const output_type& dy, input_type* dx,
                  const Context& ctx) {
        const std::size_t stop = dx ? 0 : first_trainable();
        if (stop >= size) return;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (backward_one<0, size - 1 - I>(x, y, dy, dx, stop, ctx), ...);
        }(std::make_index_sequence<size>{});
    }

    // ---------------------------------------------------------- top-level use
    /// Run the model on a batch. In training mode (`training = true`) dropout is
    /// active, the step's random seed advances, and the layers keep what `backward`
    /// needs; `input_gradient` asks that `backward` can also return d loss / d input.
    /// The result stays valid until the next call.
    const output_type& forward(const input_type& x, bool training = false, bool input_gradient = false) {
        Context ctx;
        ctx.training = training;
        ctx.trainable = true;
        ctx.seed = training ? Rng::derive(seed_, step_++)() : seed_;
        ctx.backward = training || input_gradient;
        ctx.input_gradient = input_gradient;
        ctx.scratch = &scratch_;
        last_ctx_ = ctx;
        forward(x, out_, ctx);
        last_input_ = &x;
        tail_input_ = nullptr;
        return out_;
    }

    /// Back-propagate `dy` (d loss / d output of the last `forward`), writing the
    /// gradients of every trainable parameter. With `input_gradient` (which the
    /// forward must have asked for), also returns d loss / d input (else nullptr).
    /// The input of the last forward must still exist.
    const input_type* backward(const output_type& dy, bool input_gradient = false) {
        if (!last_input_) throw config_error("Sequential::backward called without a preceding forward");
        if (!last_ctx_.backward)
            throw config_error("Sequential::backward: the last forward was not a training forward");
        if (input_gradient && !last_ctx_.input_gradient)
            throw config_error("Sequential::backward: input gradient asked for, but the forward did not ask for it");
        require_shape(dy, shape_of(out_), "Sequential::backward: gradient of the output");
        if (input_gradient) ensure_shape(dx_, shape_of(*last_input_));
        backward(*last_input_, out_, dy, input_gradient ? &dx_ : nullptr, last_ctx_);
        return input_gradient ? &dx_ : nullptr;
    }

    /// Run only layers `First` .. size-1 on `x`, the input layer `First` takes (for
    /// instance features a frozen backbone computed once: the frozen-feature cache).
    /// Same modes and seeds as `forward`; `backward_from<First>` follows it.
    template <std::size_t First>
    const output_type& forward_from(const Tensor<ranks[First]>& x, bool training = false) {
        static_assert(First < size, "typenet: forward_from: no such layer");
        if (!built_) throw config_error("Sequential::forward_from: build the model first");
        Context ctx;
        ctx.training = training;
        ctx.trainable = true;
        ctx.seed = training ? Rng::derive(seed_, step_++)() : seed_;
        ctx.backward = training;
        ctx.input_gradient = false;
        ctx.scratch = &scratch_;
        last_ctx_ = ctx;
        const std::size_t lowest = !ctx.backward ? size : std::max(First, first_trainable());
        std::size_t skip = 0;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (forward_one<First, First + I>(x, out_, ctx, lowest, skip), ...);
        }(
            std::make_index_sequence<size - First>{});
        tail_input_ = &x;
        tail_first_ = First;
        last_input_ = nullptr;
        return out_;
    }

    /// Back-propagate through layers `First` .. size-1 after `forward_from<First>`.
    template <std::size_t First>
    void backward_from(const output_type& dy) {
        if (!tail_input_ || tail_first_ != First || !last_ctx_.backward)
            throw config_error("Sequential::backward_from: no preceding training forward_from of the same layer");
        require_shape(dy, shape_of(out_), "Sequential::backward_from: gradient of the output");
        const auto& x = *static_cast<const Tensor<ranks[First]>*>(tail_input_);
        const std::size_t stop = std::max(First, first_trainable());
        if (stop >= size) return;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (backward_one<First, size - 1 - I>(x, out_, dy, static_cast<Tensor<ranks[First]>*>(nullptr), stop, last_ctx_),
             ...);
        }(std::make_index_sequence<size - First>{});
    }

    /// The output of the last forward pass.
    const output_type& output() const noexcept { return out_; }

    /// The output of layer `I` (not the last) in the last forward pass: empty when that
    /// pass ran layer `I` fused with the next one (a stem convolution and a block after it,
    /// in inference, or in training with batch statistics: see `forward_one`), whose
    /// kernels never write it.
    template <std::size_t I>
    const auto& activation() const noexcept {
        static_assert(I + 1 < size, "typenet: activation<I>: the last layer's output is output()");
        return std::get<I>(acts_);
    }

    /// The instance name of the first layer whose output of the last forward pass holds
    /// NaN or infinity, or "" when none does (the numerical guard of `fit`).
    std::string first_non_finite_output() const {
        std::string found;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((found.empty() && !all_finite(I == size - 1 ? static_cast<const void*>(&out_) : nullptr, I) ? (void)(found = names_[I])
                                                                                                       : (void)0),
             ...);
        }(std::make_index_sequence<size>{});
        return found;
    }

    /// The name of the first trainable parameter whose gradient holds NaN or infinity
    /// ("dense_1/kernel"), or "" when none does.
    std::string first_non_finite_gradient() {
        std::string found;
        visit_parameters([&](ParamRef& p) {
            if (!found.empty() || !p.trainable) return;
            for (std::size_t i = 0; i < p.size; ++i)
                if (!std::isfinite(p.grad[i])) {
                    found = p.name;
                    return;
                }
        });
        return found;
    }

    // ------------------------------------------------------------- parameters
    /// Visit every trainable tensor, names prefixed by the layer's instance name.
    /// (Through a `ParamVisitor`: the walk over the layers is compiled once per model type,
    /// not once per caller's lambda.)
    template <class F>
    void visit_parameters(F&& f) {
        visit_all_parameters(ParamVisitor(f));
    }
    /// Visit every persistent non-trainable tensor (batch-norm statistics).
    template <class F>
    void visit_buffers(F&& f) {
        visit_all_buffers(BufferVisitor(f));
    }
    /// All parameters, in visiting order.
    std::vector<ParamRef> parameters() {
        std::vector<ParamRef> ps;
        visit_parameters([&](ParamRef& p) { ps.push_back(p); });
        return ps;
    }

    /// Freeze or unfreeze every layer.
    void set_trainable(bool t) {
        std::apply([&](auto&... s) { (s.set_trainable(t), ...); }, layers_);
    }
    /// Is any layer trainable?
    bool is_trainable() const {
        return std::apply([&](const auto&... s) { return (s.is_trainable() || ...); }, layers_);
    }

    /// Parameter counts: {total, trainable, non-trainable} (buffers count as non-trainable, as in Keras).
    std::array<std::size_t, 3> parameter_counts() {
        std::size_t total = 0, trainable = 0;
        visit_parameters([&](ParamRef& p) {
            total += p.size;
            if (p.trainable) trainable += p.size;
        });
        visit_buffers([&](BufferRef& b) { total += b.size; });
        return {total, trainable, total - trainable};
    }

    /// Keras-style summary: each layer's name, type, output shape and parameter count,
    /// then total / trainable / non-trainable. Needs the input shape (`build` first).
    std::string summary(const std::string& model_name = "sequential") {
        std::ostringstream os;
        const std::string rule(74, '_'), dbl(74, '=');
        os << "Model: \"" << model_name << "\"\n" << rule << "\n";
        os << std::left << std::setw(36) << " Layer (type)" << std::setw(26) << "Output Shape" << "Param #\n";
        os << dbl << "\n";
        Shape<input_rank> s{};
        s[0] = 1;
        for (std::size_t i = 1; i < input_rank; ++i) s[i] = example_shape_[i - 1];
        summary_rows(os, s, std::make_index_sequence<size>{});
        os << dbl << "\n";
        const auto c = parameter_counts();
        os << "Total params: " << detail::thousands(c[0]) << "\n";
        os << "Trainable params: " << detail::thousands(c[1]) << "\n";
        os << "Non-trainable params: " << detail::thousands(c[2]) << "\n" << rule << "\n";
        return os.str();
    }

    /// A text naming every layer type, its settings and its output shape; equal
    /// signatures mean saved weights fit (used by the model file format).
    std::string signature() const {
        std::ostringstream os;
        Shape<input_rank> s{};
        s[0] = 1;
        for (std::size_t i = 1; i < input_rank; ++i) s[i] = example_shape_[i - 1];
        os << "input" << shape_to_string(s, true) << "\n";
        signature_rows(os, s, std::make_index_sequence<size>{});
        return os.str();
    }

    /// Shape of one example (without the batch dimension), known after `build`.
    const std::array<std::size_t, input_rank - 1>& example_shape() const noexcept { return example_shape_; }

    std::string name() const { return "Sequential"; }

private:
    // --------------------------------------------------------------- helpers
    /// Are the values of layer i's last output finite? (the last layer's is `out_`,
    /// passed as `last`; a nested use writing elsewhere is not checked.)
    bool all_finite(const void* last, std::size_t i) const {
        bool ok = true;
        auto check = [&](const auto& t) {
            for (std::size_t k = 0; k < t.size() && ok; ++k) ok = std::isfinite(t.data()[k]);
        };
        [&]<std::size_t... J>(std::index_sequence<J...>) {
            ((J == i ? check(std::get<J>(acts_)) : void()), ...);
        }(std::make_index_sequence<size - 1>{});
        if (i == size - 1 && last) check(*static_cast<const output_type*>(last));
        return ok;
    }

    template <std::size_t First, std::size_t I, class X>
    const auto& input_of(const X& x) const {
        if constexpr (I == First) return x;
        else return std::get<I - 1>(acts_);
    }
    template <std::size_t I, class Y>
    auto& output_of(Y& y) {
        if constexpr (I == size - 1) return y;
        else return std::get<I>(acts_);
    }
    template <std::size_t I>
    Context layer_context(const Context& ctx) const {
        Context c = ctx;
        c.trainable = ctx.trainable && std::get<I>(layers_).is_trainable();
        std::uint64_t sm = ctx.seed + 0x632BE59BD9B4E019ull * (I + 1);
        c.seed = splitmix64(sm);
        return c;
    }

    /// The context layer `I` runs with in a forward pass from layer `First` with `ctx`.
    template <std::size_t First, std::size_t I>
    Context forward_context(const Context& ctx, std::size_t lowest) const {
        Context c = layer_context<I>(ctx);
        c.backward = ctx.backward && I >= lowest;
        c.input_gradient = ctx.backward && (I > lowest || (I == First && ctx.input_gradient));
        return c;
    }

    /// Can layer `I + 1` run fused with layer `I` (`next.forward_after(layer, x, y, c, c_next)`,
    /// which returns false where the pair does not qualify for a given pass)? In a pass with
    /// a backward (both contexts `backward`), only when the pair can also run its backward
    /// as one (`fuses_backward_with_next`).
    template <std::size_t I>
    static constexpr bool fuses_with_next() {
        if constexpr (I + 1 >= size) {
            return false;
        } else {
            return requires(type_at<I + 1>& next, type_at<I>& layer, const Tensor<ranks[I]>& x,
                            Tensor<ranks[I + 2]>& y, const Context& c) {
                { next.forward_after(layer, x, y, c, c) } -> std::same_as<bool>;
            };
        }
    }

    /// Can a pair that `fuses_with_next<I>` also run fused in a pass with a backward (layer
    /// `I + 1` has `backward_after(layer, x, y, dy, c, c_next)`)? Without it, such a pass
    /// runs the two layers one after the other.
    template <std::size_t I>
    static constexpr bool fuses_backward_with_next() {
        if constexpr (!fuses_with_next<I>()) {
            return false;
        } else {
            return requires(type_at<I + 1>& next, type_at<I>& layer, const Tensor<ranks[I]>& x,
                            const Tensor<ranks[I + 2]>& y, const Context& c) {
                next.backward_after(layer, x, y, y, c, c);
            };
        }
    }

    /// Run layer `I` of a forward pass from layer `First`, unless the previous layer ran
    /// it fused (`I < skip`); where layer `I` and the next can run as one kernel in this
    /// pass (`fuses_with_next`), that computes the next layer's output and layer `I`'s
    /// output is neither written nor allocated (its backward, if any, runs inside the next
    /// layer's: `fused_backward_`).
    template <std::size_t First, std::size_t I, class X>
    void forward_one(const X& x, output_type& y, const Context& ctx, std::size_t lowest, std::size_t& skip) {
        if (I < skip) return;
        auto& l = std::get<I>(layers_);
        const auto& in = input_of<First, I>(x);
        const Context c = forward_context<First, I>(ctx, lowest);
        if constexpr (fuses_with_next<I>()) {
            const Context cn = forward_context<First, I + 1>(ctx, lowest);
            fused_backward_[I] = false;
            if (c.backward ? cn.backward && fuses_backward_with_next<I>() : !cn.backward) {
                auto& next = std::get<I + 1>(layers_);
                auto& out2 = output_of<I + 1>(y);
                ensure_shape(out2, next.output_shape(l.output_shape(shape_of(in))));
                if (next.get().forward_after(l.get(), in, out2, c, cn)) {
                    fused_backward_[I] = c.backward;
                    fused_backward_[I + 1] = false;  // layer I + 1 is not run on its own
                    skip = I + 2;
                    return;
                }
            }
        }
        auto& out = output_of<I>(y);
        ensure_shape(out, l.output_shape(shape_of(in)));
        l.forward(in, out, c);
    }

    template <std::size_t First, std::size_t I, class X>
    void backward_one(const X& x, const output_type& y, const output_type& dy, X* dx, std::size_t stop,
                      const Context& ctx) {
        if (I < stop) return;
        if constexpr (fuses_backward_with_next<I>()) {
            if (fused_backward_[I]) return;  // run by layer I + 1's backward_after
        }
        if constexpr (I > First) {
            if constexpr (fuses_backward_with_next<I - 1>()) {
                if (fused_backward_[I - 1]) {
                    backward_pair<First, I - 1>(x, y, dy, dx, ctx);
                    return;
                }
            }
        }
        auto& l = std::get<I>(layers_);
        const auto& in = input_of<First, I>(x);
        const auto& out = output_of_const<I>(y);
        const auto& g = gradient_of<I>(dy);
        Tensor<ranks[I]>* dxi = nullptr;
        if constexpr (I == First) {
            dxi = dx;
        } else {
            if (I > stop) {
                auto& t = std::get<I - 1>(grads_);
                ensure_shape(t, shape_of(in));
                dxi = &t;
            }
        }
        l.backward(in, out, g, dxi, layer_context<I>(ctx));
    }

    /// The backward of layers `I` and `I + 1` after a forward that ran them fused: layer
    /// `I`'s output and its gradient were never tensors. Such a pair never gives layer `I`
    /// an input gradient (the forward fuses only a pair whose first layer needs none).
    template <std::size_t First, std::size_t I, class X>
    void backward_pair(const X& x, const output_type& y, const output_type& dy, X* dx, const Context& ctx) {
        if (I == First && dx)
            throw config_error("Sequential::backward: an input gradient was asked for after a forward without one");
        std::get<I + 1>(layers_).get().backward_after(std::get<I>(layers_).get(), input_of<First, I>(x),
                                                      output_of_const<I + 1>(y), gradient_of<I + 1>(dy),
                                                      layer_context<I>(ctx), layer_context<I + 1>(ctx));
    }
    template <std::size_t I>
    const auto& output_of_const(const output_type& y) const {
        if constexpr (I == size - 1) return y;
        else return std::get<I>(acts_);
    }
    template <std::size_t I>
    const auto& gradient_of(const output_type& dy) const {
        if constexpr (I == size - 1) return dy;
        else return std::get<I>(grads_);
    }

    /// Index of the lowest layer whose parameters train (size when none).
    std::size_t first_trainable() {
        std::size_t first = size;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((first == size && Trainable<type_at<I>> && std::get<I>(layers_).is_trainable() ? (void)(first = I)
                                                                                             : (void)0),
             ...);
        }(std::make_index_sequence<size>{});
        return first;
    }

    void visit_all_parameters(ParamVisitor f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) { (visit_params_of<I>(f), ...); }(
            std::make_index_sequence<size>{});
    }
    void visit_all_buffers(BufferVisitor f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) { (visit_buffers_of<I>(f), ...); }(
            std::make_index_sequence<size>{});
    }
    template <std::size_t I, class F>
    void visit_params_of(F& f) {
        auto& s = std::get<I>(layers_);
        if constexpr (Trainable<type_at<I>>) {
            const bool slot_trainable = s.is_trainable();
            const float mult = s.learning_rate_multiplier();
            s.get().visit_parameters([&](ParamRef& p) {
                p.name = names_[I] + "/" + p.name;
                if constexpr (!detail::manages_trainable<type_at<I>>) p.trainable = p.trainable && slot_trainable;
                p.lr_multiplier *= mult;
                f(p);
            });
        }
    }
    template <std::size_t I, class F>
    void visit_buffers_of(F& f) {
        if constexpr (HasBuffers<type_at<I>>) {
            std::get<I>(layers_).get().visit_buffers([&](BufferRef& b) {
                b.name = names_[I] + "/" + b.name;
                f(b);
            });
        }
    }

    template <std::size_t... I>
    Shape<output_rank> shape_chain(const Shape<input_rank>& in, std::index_sequence<I...>) const {
        std::tuple<Shape<ranks[I]>..., Shape<output_rank>> shapes;
        std::get<0>(shapes) = in;
        ((std::get<I + 1>(shapes) = std::get<I>(layers_).output_shape(std::get<I>(shapes))), ...);
        return std::get<size>(shapes);
    }

    void build_chain(const Shape<input_rank>& in, Rng& rng) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            std::tuple<Shape<ranks[I]>..., Shape<output_rank>> shapes;
            std::get<0>(shapes) = in;
            ((build_one<I>(std::get<I>(shapes), rng), std::get<I + 1>(shapes) = std::get<I>(layers_).output_shape(std::get<I>(shapes))),
             ...);
        }(std::make_index_sequence<size>{});
    }
    template <std::size_t I>
    void build_one(const Shape<ranks[I]>& in, Rng& rng) {
        if constexpr (detail::has_build<type_at<I>, ranks[I]>) std::get<I>(layers_).get().build(in, rng);
    }

    void auto_build(const input_type& x) {
        Shape<input_rank> s = shape_of(x);
        Rng rng(seed_);
        build(s, rng);
    }

    template <std::size_t... I>
    void summary_rows(std::ostream& os, const Shape<input_rank>& in, std::index_sequence<I...>) {
        std::tuple<Shape<ranks[I]>..., Shape<output_rank>> shapes;
        std::get<0>(shapes) = in;
        ((std::get<I + 1>(shapes) = std::get<I>(layers_).output_shape(std::get<I>(shapes)),
          summary_row(os, names_[I] + " (" + layer_type_name(std::get<I>(layers_).get()) + ")",
                      shape_to_string(std::get<I + 1>(shapes), true),
                      count_parameters(std::get<I>(layers_).get()) + count_buffers(std::get<I>(layers_).get()))),
         ...);
    }
    static void summary_row(std::ostream& os, const std::string& name, const std::string& shape, std::size_t params) {
        os << " " << std::left << std::setw(35) << name << std::setw(26) << shape << params << "\n";
    }

    template <std::size_t... I>
    void signature_rows(std::ostream& os, const Shape<input_rank>& in, std::index_sequence<I...>) const {
        std::tuple<Shape<ranks[I]>..., Shape<output_rank>> shapes;
        std::get<0>(shapes) = in;
        ((std::get<I + 1>(shapes) = std::get<I>(layers_).output_shape(std::get<I>(shapes)),
          os << names_[I] << " " << short_type_name<type_at<I>>() << config_of(std::get<I>(layers_).get()) << " -> "
             << shape_to_string(std::get<I + 1>(shapes), true) << "\n"),
         ...);
    }
    template <class L>
    static std::string config_of(const L& l) {
        if constexpr (detail::has_config<L>) {
            const std::string c = l.config();
            return c.empty() ? c : " {" + c + "}";
        } else {
            return "";
        }
    }

    void init_names() {
        std::vector<std::string> base;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (base.push_back(detail::snake_case(layer_type_name(std::get<I>(layers_).get()))), ...);
        }(std::make_index_sequence<size>{});
        names_.clear();
        for (std::size_t i = 0; i < base.size(); ++i) {
            std::size_t k = 0;
            for (std::size_t j = 0; j < i; ++j) k += base[j] == base[i];
            names_.push_back(k ? base[i] + "_" + std::to_string(k) : base[i]);
        }
    }

    template <class Seq>
    struct buffers_of;
    template <std::size_t... I>
    struct buffers_of<std::index_sequence<I...>> {
        using type = std::tuple<Tensor<ranks[I + 1]>...>;
    };
    using inner_buffers = typename buffers_of<std::make_index_sequence<size - 1>>::type;

    std::tuple<Slot<Ls>...> layers_;
    std::vector<std::string> names_;
    bool built_ = false;
    std::array<std::size_t, input_rank - 1> example_shape_{};
    std::uint64_t seed_ = TYPENET_DEFAULT_SEED;
    std::uint64_t step_ = 0;

    inner_buffers acts_;   ///< acts_[i]: output of layer i (i < size - 1)
    inner_buffers grads_;  ///< grads_[i]: d loss / d output of layer i
    /// fused_backward_[i]: the last forward ran layers i and i + 1 fused with a backward to
    /// follow (see `forward_one`).
    std::array<bool, size> fused_backward_{};
    output_type out_;
    input_type dx_;
    const input_type* last_input_ = nullptr;
    const void* tail_input_ = nullptr;  ///< input of the last forward_from
    std::size_t tail_first_ = 0;
    Context last_ctx_{};
    Scratch scratch_;
};

}  // namespace typenet
