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

namespace detail {
template <class T>
inline constexpr bool is_function_ref = false;
template <class Sig>
inline constexpr bool is_function_ref<FunctionRef<Sig>> = true;
}  // namespace detail

template <class R, class... A>
class FunctionRef<R(A...)> {
public:
    /// Refer to a callable object (lambda, functor): it must outlive every call.
    template <class F>
        requires(!detail::is_function_ref<std::remove_cvref_t<F>> && !std::is_function_v<std::remove_reference_t<F>> &&
                 std::is_invocable_r_v<R, F&, A...>)
    FunctionRef(F&& f) noexcept  // NOLINT: converts implicitly, like a function pointer
        : call_([](Target t, A... a) -> R {
              auto& fn = *static_cast<std::remove_reference_t<F>*>(t.obj);
              if constexpr (std::is_void_v<R>) std::invoke(fn, std::forward<A>(a)...);
              else return std::invoke(fn, std::forward<A>(a)...);
          }) {
        target_.obj = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
    }
    /// Refer to a function (a function's name converts to its pointer).
    template <class Fn>
        requires(std::is_function_v<Fn> && std::is_invocable_r_v<R, Fn*, A...>)
    FunctionRef(Fn* fp) noexcept  // NOLINT: converts implicitly
        : call_([](Target t, A... a) -> R {
              auto* fn = reinterpret_cast<Fn*>(t.fn);
              if constexpr (std::is_void_v<R>) std::invoke(fn, std::forward<A>(a)...);
              else return std::invoke(fn, std::forward<A>(a)...);
          }) {
        target_.fn = reinterpret_cast<void (*)()>(fp);
    }
    R operator()(A... a) const { return call_(target_, std::forward<A>(a)...); }

private:
    union Target {
        void* obj;
        void (*fn)();
    };
    Target target_;
    R (*call_)(Target, A...);
};

}  // namespace typenet
