/// @file core/function_ref.hpp
/// `FunctionRef<R(A...)>`: a non-owning, non-allocating reference to a callable.
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace typenet {

/// A non-owning reference to a callable (two pointers, no allocation): what the built-in
/// layers take as their visitor and the kernels as their row producers. A layer whose
/// `visit_parameters` is a template is compiled once per visitor type, and visitors nest
/// (a model's lambda wraps a block's, which wraps a convolution's): a MobileNetV2 program
/// compiled hundreds of copies of the same few lines. Through a `FunctionRef` each is
/// compiled once. The referenced callable must outlive the call.
template <class Sig>
class FunctionRef;

template <class R, class... A>
class FunctionRef<R(A...)> {
public:
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, A...>)
    FunctionRef(F&& f) noexcept  // NOLINT: converts implicitly, like a function pointer
        : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* o, A... a) -> R {
              auto& fn = *static_cast<std::remove_reference_t<F>*>(o);
              if constexpr (std::is_void_v<R>) std::invoke(fn, std::forward<A>(a)...);
              else return std::invoke(fn, std::forward<A>(a)...);
          }) {}
    R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

private:
    void* obj_;
    R (*call_)(void*, A...);
};

}  // namespace typenet
