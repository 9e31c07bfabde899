/// @file data/transform.hpp
/// The `Transform` concept and `Compose`, which chains transforms into one type.
///
/// A transform changes one `Example` in place: `t(example, rng)`. Pixel values are
/// 0..255 after decoding until a transform rescales them. Deterministic transforms
/// ignore the `Rng`; augmentations declare `static constexpr bool is_random = true`
/// and draw from it. A dataset gives every example its own seeded stream
/// (`Rng::derive`), so results never depend on how many threads run the transforms,
/// and calls the transform from several threads at once: `operator()` must be `const`
/// and must not modify shared state.
///
/// ```
/// using Preprocess = Compose<Scale<255>, Resize<224, 224>, OneHot<3>>;
/// auto ds = folder.dataset().map(Preprocess{});
/// auto aug = ds.map(Compose{RandomFlipLeftRight{}, RandomRotation{10.0f}});
/// auto own = ds.map([](Example& e, Rng&) { e.image *= 2.0f; });  // lambdas work too
/// ```
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "typenet/core/example.hpp"
#include "typenet/core/random.hpp"

namespace typenet::data {

/// A transform: `t(example, rng)` callable on a const `t`, changing the example in place.
template <class T>
concept Transform = requires(const T& t, Example& e, Rng& rng) { t(e, rng); };

/// True when `T` declares `static constexpr bool is_random = true` (it uses the Rng).
template <class T>
inline constexpr bool is_random_transform_v = requires { requires static_cast<bool>(T::is_random); };

namespace detail {

/// Instantiated once per component type: the only static_assert a non-transform meets,
/// with the offending type named in the compiler's "required from" line.
template <class T>
struct transform_check {
    static_assert(Transform<T>,
                  "typenet: this type is not a Transform: it lacks `void operator()(Example&, Rng&) const` "
                  "(the type is T in the transform_check<T> the compiler names; see docs/concepts.md)");
    static constexpr bool value = Transform<T>;
};

}  // namespace detail

/// Several transforms applied in order, as one transform type. Random if any part is.
///
/// `Compose<Scale<255>, Resize<224, 224>>{}` default-constructs its parts;
/// `Compose{Normalize{{0.5f}, {0.25f}}, RandomFlipLeftRight{}}` takes them by value.
template <class... Ts>
class Compose {
    // Instantiates transform_check<T> for every T (its static_assert names a bad T);
    // always true itself, so a bad T gives one message, not two.
    static_assert(((detail::transform_check<Ts>::value || true) && ...));
    static constexpr bool all_transforms = (Transform<Ts> && ...);

public:
    /// True when any component uses the Rng.
    static constexpr bool is_random = (is_random_transform_v<Ts> || ...);

    Compose() = default;
    /// The components, applied left to right.
    explicit Compose(Ts... parts) : parts_(std::move(parts)...) {}

    /// Apply every component in order.
    void operator()(Example& e, Rng& rng) const
        requires all_transforms
    {
        std::apply([&](const auto&... p) { (p(e, rng), ...); }, parts_);
    }

    /// The components.
    const std::tuple<Ts...>& parts() const noexcept { return parts_; }

private:
    std::tuple<Ts...> parts_;
};

template <class... Ts>
Compose(Ts...) -> Compose<Ts...>;

}  // namespace typenet::data
