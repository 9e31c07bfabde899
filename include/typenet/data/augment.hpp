/// @file data/augment.hpp
/// Random augmentations: transforms with `is_random = true` that draw from the
/// example's own `Rng` (so a seed reproduces them exactly, whatever the threads).
///
/// | augmentation            | effect                                                              |
/// |-------------------------|---------------------------------------------------------------------|
/// | `RandomFlipLeftRight`   | mirror left-right with probability p (0.5)                          |
/// | `RandomFlipUpDown`      | mirror top-bottom with probability p (0.5)                          |
/// | `RandomCrop<H, W>`      | an H x W window at a uniformly random position                      |
/// | `RandomZoom`            | zoom by 1 + z, z uniform in [lower, upper]; z > 0 zooms out (Keras's sign) |
/// | `RandomRotation`        | rotate by an angle uniform in [-max_degrees, max_degrees] around the centre; positive is counter-clockwise |
/// | `RandomBrightness`      | add a delta uniform in [-max_delta, max_delta], clamp to [lo, hi]   |
/// | `RandomContrast`        | (x - mean_c) * f + mean_c per channel, f uniform in [lower, upper], clamp to [lo, hi] |
///
/// Zoom and rotation keep the image size and sample bilinearly (`zoom`, `rotate`). Where the sample
/// falls outside the image, `FillMode::constant` uses `fill_value` (default 255:
/// white in 0..255 pixel units, the background of the rock-paper-scissors renders;
/// use 1 after `Scale<255>`), and `FillMode::edge` repeats the nearest edge pixel.
/// Values are in the units of the image when the augmentation runs: put
/// augmentations before `Scale<255>` to use the defaults, or adapt `fill_value`,
/// `max_delta`, `lo` and `hi`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/core/example.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/transform.hpp"

namespace typenet::data {

/// What zoom and rotation put where they sample outside the image.
enum class FillMode {
    constant,  ///< `fill_value`
    edge,      ///< the nearest edge pixel
};

namespace detail {

/// out(y, x) = in at (cx + a u + b v, cy + c u + d v), u = x - cx, v = y - cy, with
/// (cx, cy) the image centre; bilinear, outside points filled as `mode` says.
inline Tensor<3> warp_affine(const Tensor<3>& in, float a, float b, float c, float d, FillMode mode, float fill) {
    const std::size_t h = in.shape()[0], w = in.shape()[1], ch = in.shape()[2];
    Tensor<3> out(Shape<3>{h, w, ch});
    const float cx = (static_cast<float>(w) - 1.0f) * 0.5f, cy = (static_cast<float>(h) - 1.0f) * 0.5f;
    const auto iw = static_cast<std::ptrdiff_t>(w), ih = static_cast<std::ptrdiff_t>(h);
    const float* src = in.data();
    float* dst = out.data();
    auto value = [&](std::ptrdiff_t y, std::ptrdiff_t x, std::size_t k) -> float {
        if (y < 0 || y >= ih || x < 0 || x >= iw) {
            if (mode == FillMode::constant) return fill;
            y = std::clamp<std::ptrdiff_t>(y, 0, ih - 1);
            x = std::clamp<std::ptrdiff_t>(x, 0, iw - 1);
        }
        return src[(static_cast<std::size_t>(y) * w + static_cast<std::size_t>(x)) * ch + k];
    };
    for (std::size_t y = 0; y < h; ++y) {
        const float v = static_cast<float>(y) - cy;
        for (std::size_t x = 0; x < w; ++x) {
            const float u = static_cast<float>(x) - cx;
            const float sx = cx + a * u + b * v, sy = cy + c * u + d * v;
            const float fx0 = std::floor(sx), fy0 = std::floor(sy);
            const float fx = sx - fx0, fy = sy - fy0;
            // Far outside: both neighbours are fill (or the same clamped edge pixel).
            const auto x0 = static_cast<std::ptrdiff_t>(std::clamp(fx0, -2.0f, static_cast<float>(w) + 1.0f));
            const auto y0 = static_cast<std::ptrdiff_t>(std::clamp(fy0, -2.0f, static_cast<float>(h) + 1.0f));
            float* o = dst + (y * w + x) * ch;
            for (std::size_t k = 0; k < ch; ++k) {
                const float p00 = value(y0, x0, k), p01 = value(y0, x0 + 1, k);
                const float p10 = value(y0 + 1, x0, k), p11 = value(y0 + 1, x0 + 1, k);
                const float top = p00 + (p01 - p00) * fx, bottom = p10 + (p11 - p10) * fx;
                o[k] = top + (bottom - top) * fy;
            }
        }
    }
    return out;
}

inline void clamp_all(Tensor<3>& t, float lo, float hi) {
    float* p = t.data();
    const std::size_t n = t.size();
    for (std::size_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], lo), hi);
}

}  // namespace detail

/// The image rotated by `degrees` (positive: counter-clockwise) around its centre,
/// same size, bilinear; the uncovered corners filled as `fill` says.
inline Tensor<3> rotate(const Tensor<3>& image, float degrees, FillMode fill = FillMode::constant,
                        float fill_value = 255.0f) {
    const float t = degrees * 3.14159265358979f / 180.0f;
    const float cs = std::cos(t), sn = std::sin(t);
    // Output offset (u, v) from the centre shows the input at the inverse rotation of
    // (u, v); y points down, so counter-clockwise on screen.
    return detail::warp_affine(image, cs, -sn, sn, cs, fill, fill_value);
}

/// The image zoomed around its centre: output offset (u, v) from the centre shows the
/// input at (s u, s v). s < 1 zooms in, s > 1 zooms out (border filled as `fill` says).
inline Tensor<3> zoom(const Tensor<3>& image, float s, FillMode fill = FillMode::constant, float fill_value = 255.0f) {
    return detail::warp_affine(image, s, 0.0f, 0.0f, s, fill, fill_value);
}

/// Mirror the image left-right with probability `probability`.
struct RandomFlipLeftRight {
    static constexpr bool is_random = true;
    float probability = 0.5f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        if (!(rng.uniform() < probability)) return;
        const std::size_t h = e.image.shape()[0], w = e.image.shape()[1], c = e.image.shape()[2];
        float* p = e.image.data();
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w / 2; ++x)
                std::swap_ranges(p + (y * w + x) * c, p + (y * w + x + 1) * c, p + (y * w + (w - 1 - x)) * c);
    }
};

/// Mirror the image top-bottom with probability `probability`.
struct RandomFlipUpDown {
    static constexpr bool is_random = true;
    float probability = 0.5f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        if (!(rng.uniform() < probability)) return;
        const std::size_t h = e.image.shape()[0], row = e.image.shape()[1] * e.image.shape()[2];
        float* p = e.image.data();
        for (std::size_t y = 0; y < h / 2; ++y) std::swap_ranges(p + y * row, p + (y + 1) * row, p + (h - 1 - y) * row);
    }
};

/// An H x W window of the image at a uniformly random position.
/// @throws shape_error naming the source when the image is smaller than H x W.
template <std::size_t H, std::size_t W>
struct RandomCrop {
    static_assert(H > 0 && W > 0, "typenet: RandomCrop<H, W> needs a nonzero size");
    static constexpr bool is_random = true;
    /// Apply to one example (draws two numbers).
    void operator()(Example& e, Rng& rng) const {
        const std::size_t ih = e.image.shape()[0], iw = e.image.shape()[1], c = e.image.shape()[2];
        if (ih < H || iw < W)
            throw shape_error(e.source + ": RandomCrop<" + std::to_string(H) + ", " + std::to_string(W) +
                              "> needs an image at least that large, got " + shape_to_string(shape_of(e.image)));
        const std::size_t top = rng.below(ih - H + 1), left = rng.below(iw - W + 1);
        Tensor<3> out(Shape<3>{H, W, c});
        for (std::size_t y = 0; y < H; ++y)
            std::copy_n(e.image.data() + ((top + y) * iw + left) * c, W * c, out.data() + y * W * c);
        e.image = std::move(out);
    }
};

/// Zoom around the centre by 1 + z, z uniform in [lower, upper] (-1 < lower <= upper):
/// z < 0 zooms in (shows a smaller region, enlarged), z > 0 zooms out (the image
/// shrinks, the border is filled), as Keras's `RandomZoom`. The size is unchanged.
struct RandomZoom {
    static constexpr bool is_random = true;
    float lower = -0.2f, upper = 0.2f;
    FillMode fill = FillMode::constant;
    float fill_value = 255.0f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        if (!(lower > -1.0f && lower <= upper))
            throw config_error("RandomZoom: needs -1 < lower <= upper, got [" + std::to_string(lower) + ", " +
                               std::to_string(upper) + "]");
        e.image = zoom(e.image, 1.0f + rng.uniform(lower, upper), fill, fill_value);
    }
};

/// Rotate around the centre by an angle uniform in [-max_degrees, max_degrees]
/// (positive: counter-clockwise), bilinear; the corners are filled. The size is unchanged.
struct RandomRotation {
    static constexpr bool is_random = true;
    float max_degrees = 10.0f;
    FillMode fill = FillMode::constant;
    float fill_value = 255.0f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        e.image = rotate(e.image, rng.uniform(-max_degrees, max_degrees), fill, fill_value);
    }
};

/// Add one delta, uniform in [-max_delta, max_delta], to every pixel, then clamp to [lo, hi].
struct RandomBrightness {
    static constexpr bool is_random = true;
    float max_delta = 25.0f;
    float lo = 0.0f, hi = 255.0f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        const float delta = rng.uniform(-max_delta, max_delta);
        float* p = e.image.data();
        for (std::size_t i = 0; i < e.image.size(); ++i) p[i] += delta;
        detail::clamp_all(e.image, lo, hi);
    }
};

/// Scale each channel's deviation from its mean by f, uniform in [lower, upper],
/// as `tf.image.random_contrast`, then clamp to [lo, hi].
struct RandomContrast {
    static constexpr bool is_random = true;
    float lower = 0.8f, upper = 1.2f;
    float lo = 0.0f, hi = 255.0f;
    /// Apply to one example (draws one number).
    void operator()(Example& e, Rng& rng) const {
        const float f = rng.uniform(lower, upper);
        const std::size_t c = e.image.shape()[2], pixels = e.image.size() / (c ? c : 1);
        if (pixels == 0) return;
        float* p = e.image.data();
        for (std::size_t k = 0; k < c; ++k) {
            double sum = 0.0;
            for (std::size_t i = 0; i < pixels; ++i) sum += p[i * c + k];
            const auto mean = static_cast<float>(sum / static_cast<double>(pixels));
            for (std::size_t i = 0; i < pixels; ++i) p[i * c + k] = (p[i * c + k] - mean) * f + mean;
        }
        detail::clamp_all(e.image, lo, hi);
    }
};

}  // namespace typenet::data
