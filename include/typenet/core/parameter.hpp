/// @file core/parameter.hpp
/// Parameters and persistent buffers of a layer, and the `Trainable` concept.
///
/// A layer that owns weights exposes them by *visiting*: `visit_parameters(f)` calls
/// `f(ParamRef&)` once per trainable tensor (weights with their gradients), and the
/// optional `visit_buffers(f)` calls `f(BufferRef&)` once per persistent tensor that
/// is not trained by gradient descent (batch-norm moving statistics). Visiting order
/// must be the same every time: optimizers keep their per-parameter state by position.
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <vector>

#include "typenet/core/function_ref.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet {

/// A view of one trainable tensor and its gradient.
///
/// Writing through `value` changes the weights. A layer that caches values derived
/// from its weights (folded batch norm) sets `changed` to its flag: whoever writes
/// through `value` sets `*changed = true` (optimizers, the gradient checker), or calls
/// `weights_changed(model)` after writing many (loaders).
struct ParamRef {
    std::string name;                ///< "kernel", "bias"; containers prefix "dense_1/kernel"
    float* value = nullptr;          ///< the weights
    float* grad = nullptr;           ///< d loss / d weights, written by `backward`
    std::size_t size = 0;            ///< number of elements
    std::vector<std::size_t> shape;  ///< extents (for summaries and files)
    bool trainable = true;           ///< false when the layer (or an enclosing one) is frozen
    float lr_multiplier = 1.0f;      ///< per-layer learning-rate factor (product over enclosing layers)
    bool* changed = nullptr;         ///< the owning layer's "weights changed" flag, if it caches anything

    /// Tell the owning layer the values changed.
    void mark_changed() const noexcept {
        if (changed) *changed = true;
    }
};

/// A view of one persistent, non-trained tensor (saved with the model, not optimised).
struct BufferRef {
    std::string name;
    float* value = nullptr;
    std::size_t size = 0;
    std::vector<std::size_t> shape;
    bool* changed = nullptr;  ///< as ParamRef::changed

    void mark_changed() const noexcept {
        if (changed) *changed = true;
    }
};

/// A `ParamRef` over a tensor and its gradient tensor.
template <std::size_t N>
ParamRef param_ref(std::string name, Tensor<N>& value, Tensor<N>& grad) {
    ParamRef p;
    p.name = std::move(name);
    p.value = value.data();
    p.grad = grad.data();
    p.size = value.size();
    p.shape.assign(value.shape().begin(), value.shape().end());
    return p;
}

/// A `BufferRef` over a tensor.
template <std::size_t N>
BufferRef buffer_ref(std::string name, Tensor<N>& value) {
    BufferRef b;
    b.name = std::move(name);
    b.value = value.data();
    b.size = value.size();
    b.shape.assign(value.shape().begin(), value.shape().end());
    return b;
}

/// The visitor of `visit_parameters` as the built-in layers take it.
using ParamVisitor = FunctionRef<void(ParamRef&)>;
/// The visitor of `visit_buffers` as the built-in layers take it.
using BufferVisitor = FunctionRef<void(BufferRef&)>;

namespace detail {
struct param_probe {
    void operator()(ParamRef&) const {}
};
struct buffer_probe {
    void operator()(BufferRef&) const {}
};
}  // namespace detail

/// A type with trainable parameters: `visit_parameters(f)` calls `f(ParamRef&)` for each.
template <class T>
concept Trainable = requires(T& t, detail::param_probe f) { t.visit_parameters(f); };

/// A type with persistent non-trainable buffers: `visit_buffers(f)` calls `f(BufferRef&)` for each.
template <class T>
concept HasBuffers = requires(T& t, detail::buffer_probe f) { t.visit_buffers(f); };

}  // namespace typenet

namespace typenet {

/// Every persistent tensor of a model (parameters, then buffers), in visiting order,
/// as `BufferRef`s (name, pointer, size, shape): what saving and loading weights need.
template <class M>
std::vector<BufferRef> state_tensors(M& model) {
    std::vector<BufferRef> out;
    if constexpr (Trainable<M>)
        model.visit_parameters([&](ParamRef& p) { out.push_back(BufferRef{p.name, p.value, p.size, p.shape, p.changed}); });
    if constexpr (HasBuffers<M>) model.visit_buffers([&](BufferRef& b) { out.push_back(b); });
    return out;
}

/// Tell a model its weights were changed through pointers (refreshes derived caches
/// such as folded batch norm); call after writing into `state_tensors`.
template <class M>
void weights_changed(M& model) {
    if constexpr (Trainable<M>) model.visit_parameters([](ParamRef& p) { p.mark_changed(); });
    if constexpr (HasBuffers<M>) model.visit_buffers([](BufferRef& b) { b.mark_changed(); });
}

}  // namespace typenet
