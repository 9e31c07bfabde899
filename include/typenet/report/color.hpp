/// @file report/color.hpp
/// Colours of the report pictures: 8-bit RGB values, named colours, the palette of
/// plot series, a white-to-blue colour map for heatmaps, and the choice of a text
/// colour readable on a given background.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace typenet::report {

/// An 8-bit RGB colour.
struct Color {
    std::uint8_t r = 0, g = 0, b = 0;

    friend constexpr bool operator==(const Color&, const Color&) = default;

    /// "#rrggbb", as SVG and HTML write colours.
    std::string hex() const {
        char buf[8];
        std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
        return buf;
    }
};

/// Named colours.
namespace colors {
inline constexpr Color white{255, 255, 255};
inline constexpr Color black{0, 0, 0};
inline constexpr Color text{34, 34, 34};        ///< near-black used for labels
inline constexpr Color gray{128, 128, 128};
inline constexpr Color light_gray{224, 224, 224};  ///< grid lines
inline constexpr Color red{214, 39, 40};         ///< wrong predictions
inline constexpr Color green{44, 160, 44};       ///< right predictions
inline constexpr Color blue{31, 119, 180};
inline constexpr Color orange{255, 127, 14};
}  // namespace colors

/// The colour of plot series number `i`: ten well-separated colours, repeated.
inline constexpr Color palette(std::size_t i) noexcept {
    constexpr std::array<Color, 10> p{{{31, 119, 180},
                                       {255, 127, 14},
                                       {44, 160, 44},
                                       {214, 39, 40},
                                       {148, 103, 189},
                                       {140, 86, 75},
                                       {227, 119, 194},
                                       {127, 127, 127},
                                       {188, 189, 34},
                                       {23, 190, 207}}};
    return p[i % p.size()];
}

/// Linear mix of two colours: `a` at t = 0, `b` at t = 1 (t clamped to [0, 1]).
inline Color mix(Color a, Color b, double t) noexcept {
    t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0);
    auto ch = [t](std::uint8_t x, std::uint8_t y) {
        return static_cast<std::uint8_t>(std::lround(x + (static_cast<double>(y) - x) * t));
    };
    return {ch(a.r, b.r), ch(a.g, b.g), ch(a.b, b.b)};
}

/// A white-to-dark-blue colour map for heatmaps: t = 0 is almost white, t = 1 dark
/// blue, through light and medium blues (piecewise linear between five stops; t is
/// clamped to [0, 1], NaN counts as 0).
inline Color blues(double t) noexcept {
    constexpr std::array<Color, 5> stops{{{247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}}};
    t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0);
    const double pos = t * (stops.size() - 1);
    const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(pos), stops.size() - 2);
    return mix(stops[i], stops[i + 1], pos - static_cast<double>(i));
}

/// Relative luminance in [0, 1] (sRGB decoded to linear light, Rec. 709 weights).
inline double luminance(Color c) noexcept {
    auto lin = [](std::uint8_t v) {
        const double x = v / 255.0;
        return x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

/// Black-ish or white text, whichever contrasts more with `background` (WCAG
/// contrast ratio).
inline Color readable_on(Color background) noexcept {
    const double l = luminance(background);
    const double with_white = 1.05 / (l + 0.05);
    const double with_dark = (l + 0.05) / (luminance(colors::text) + 0.05);
    return with_white > with_dark ? colors::white : colors::text;
}

}  // namespace typenet::report
