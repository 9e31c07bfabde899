/// @file data/resize.hpp
/// Resizing and cropping HWC float images.
///
/// - `resize_bilinear` is TensorFlow's `tf.image.resize(method="bilinear",
///   antialias=False)` (the `ResizeBilinear` op with half-pixel centres): output pixel
///   `o` samples the input at `s = (o + 0.5) * in / out - 0.5`, clamped to
///   [0, in - 1], and interpolates linearly between its two neighbours, along x first
///   and then along y, in float32, as TensorFlow does. Downscaling by more than 2
///   skips input pixels (aliasing), exactly like the reference.
/// - `resize_antialiased` is TensorFlow's `tf.image.resize(method="bilinear",
///   antialias=True)` (the `ScaleAndTranslate` op with a triangle kernel): each output
///   pixel is a weighted mean of the input pixels whose centres lie within
///   `max(in / out, 1)` of its centre mapped to the input, `c = (o + 0.5) * in / out`,
///   with triangle weights `max(0, 1 - |i + 0.5 - c| / max(in / out, 1))`, normalised
///   to sum to 1 (so edges need no padding). When enlarging it equals bilinear.
///   This is also what Pillow's `Image.resize(BILINEAR)` computes.
/// - `resize_gaussian` is scikit-image's `transform.resize(..., order=1,
///   anti_aliasing=True)`: a Gaussian blur with sigma = max(0, (in / out - 1) / 2) per
///   axis (kernel truncated at 4 sigma, edges mirrored about the edge pixel), then the
///   bilinear sampling above. It is the resize behind the ImageNet table of
///   `weights/README.md`, so classifying photos with it reproduces that table.
/// - `center_crop` and `center_square_crop` cut the centre of an image, rounding the
///   offset down like Keras's `CenterCrop`.
///
/// Both resizers precompute their index and weight tables once per call, resample
/// each needed input row once along x, then combine whole rows along y (contiguous
/// loops the compiler vectorises).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"

namespace typenet::data {

namespace detail {

/// One output coordinate of a bilinear resize: the two input neighbours and the
/// weight of the second.
struct LerpEntry {
    std::size_t lo, hi;
    float frac;
};

/// TensorFlow's half-pixel bilinear table for one axis.
inline std::vector<LerpEntry> bilinear_table(std::size_t in, std::size_t out) {
    std::vector<LerpEntry> t(out);
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const auto last = static_cast<std::int64_t>(in) - 1;
    for (std::size_t o = 0; o < out; ++o) {
        const float src = (static_cast<float>(o) + 0.5f) * scale - 0.5f;
        const float fl = std::floor(src);
        t[o].lo = static_cast<std::size_t>(std::max<std::int64_t>(static_cast<std::int64_t>(fl), 0));
        t[o].hi = static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(std::ceil(src)), last));
        t[o].frac = src - fl;
        if (t[o].lo > t[o].hi) t[o].lo = t[o].hi;  // only when src < -1, impossible with half-pixel centres
    }
    return t;
}

/// The weights of a separable filter along one axis: output `o` reads inputs
/// `start[o] ... start[o] + size - 1` with weights `weights[o * size + k]`.
struct FilterTable {
    std::size_t size = 0;
    std::vector<std::size_t> start;
    std::vector<float> weights;
};

/// The triangle-kernel (antialiased) table of TensorFlow's ScaleAndTranslate, no translation.
inline FilterTable triangle_table(std::size_t in, std::size_t out) {
    const float inv_scale = static_cast<float>(in) / static_cast<float>(out);
    const float support = std::max(inv_scale, 1.0f);  // kernel radius 1, stretched when shrinking
    FilterTable t;
    t.size = std::min<std::size_t>(2 * static_cast<std::size_t>(std::ceil(support)) + 1, in);
    t.start.assign(out, 0);
    t.weights.assign(out * t.size, 0.0f);
    const auto last = static_cast<std::int64_t>(in) - 1;
    for (std::size_t o = 0; o < out; ++o) {
        const float centre = (static_cast<float>(o) + 0.5f) * inv_scale;
        auto first = static_cast<std::int64_t>(std::ceil(centre - support - 0.5f));
        auto end = static_cast<std::int64_t>(std::floor(centre + support - 0.5f));
        first = std::clamp<std::int64_t>(first, 0, last);
        end = std::clamp<std::int64_t>(end, 0, last) + 1;
        float total = 0.0f;
        float* w = t.weights.data() + o * t.size;
        const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(end - first), t.size);
        for (std::size_t k = 0; k < count; ++k) {
            const float x = (static_cast<float>(first + static_cast<std::int64_t>(k)) + 0.5f - centre) / support;
            w[k] = std::max(0.0f, 1.0f - std::abs(x));
            total += w[k];
        }
        if (total > 0.0f)
            for (std::size_t k = 0; k < count; ++k) w[k] /= total;
        // Keep every span inside the input: shift the start back when the span is shorter.
        std::size_t s = static_cast<std::size_t>(first);
        if (s + t.size > in) {
            const std::size_t shift = s + t.size - in;
            for (std::size_t k = count; k-- > 0;) w[k + shift] = w[k];
            for (std::size_t k = 0; k < shift; ++k) w[k] = 0.0f;
            s -= shift;
        }
        t.start[o] = s;
    }
    return t;
}

inline void check_resize_args(const char* what, const Tensor<3>& in, std::size_t oh, std::size_t ow) {
    if (in.size() == 0 || oh == 0 || ow == 0)
        throw shape_error(std::string(what) + ": cannot resize an image of shape " + shape_to_string(shape_of(in)) +
                          " to " + std::to_string(oh) + "x" + std::to_string(ow));
}

}  // namespace detail

/// Resize an HWC image to `oh` x `ow` exactly as TensorFlow's
/// `tf.image.resize(..., method="bilinear", antialias=False)` (see the file description).
/// @throws shape_error for an empty image or a zero output size.
inline Tensor<3> resize_bilinear(const Tensor<3>& in, std::size_t oh, std::size_t ow) {
    detail::check_resize_args("resize_bilinear", in, oh, ow);
    const std::size_t ih = in.shape()[0], iw = in.shape()[1], c = in.shape()[2];
    const std::vector<detail::LerpEntry> ys = detail::bilinear_table(ih, oh);
    const std::vector<detail::LerpEntry> xs = detail::bilinear_table(iw, ow);
    Tensor<3> out(Shape<3>{oh, ow, c});
    const std::size_t row = ow * c;

    // Two input rows resampled along x, remembered by their input row index.
    std::vector<float> cache(2 * row);
    std::size_t cached[2] = {SIZE_MAX, SIZE_MAX};
    auto xrow = [&](std::size_t r, int slot) -> const float* {
        float* dst = cache.data() + static_cast<std::size_t>(slot) * row;
        if (cached[slot] == r) return dst;
        if (cached[1 - slot] == r) {
            std::copy_n(cache.data() + static_cast<std::size_t>(1 - slot) * row, row, dst);
        } else {
            const float* src = in.data() + r * iw * c;
            for (std::size_t x = 0; x < ow; ++x) {
                const float* a = src + xs[x].lo * c;
                const float* b = src + xs[x].hi * c;
                const float f = xs[x].frac;
                for (std::size_t k = 0; k < c; ++k) dst[x * c + k] = a[k] + (b[k] - a[k]) * f;
            }
        }
        cached[slot] = r;
        return dst;
    };
    for (std::size_t y = 0; y < oh; ++y) {
        const float* TYPENET_RESTRICT top = xrow(ys[y].lo, 0);
        const float* TYPENET_RESTRICT bottom = xrow(ys[y].hi, 1);
        const float f = ys[y].frac;
        float* TYPENET_RESTRICT dst = out.data() + y * row;
        for (std::size_t i = 0; i < row; ++i) dst[i] = top[i] + (bottom[i] - top[i]) * f;
    }
    return out;
}

/// Resize an HWC image to `oh` x `ow` with an antialiasing triangle filter, as
/// TensorFlow's `tf.image.resize(..., method="bilinear", antialias=True)` (see the
/// file description). Use it to shrink images by large factors without aliasing.
/// @throws shape_error for an empty image or a zero output size.
inline Tensor<3> resize_antialiased(const Tensor<3>& in, std::size_t oh, std::size_t ow) {
    detail::check_resize_args("resize_antialiased", in, oh, ow);
    const std::size_t ih = in.shape()[0], iw = in.shape()[1], c = in.shape()[2];
    const detail::FilterTable ys = detail::triangle_table(ih, oh);
    const detail::FilterTable xs = detail::triangle_table(iw, ow);
    const std::size_t row = ow * c;

    // Pass 1, along x: every input row to `ow` pixels.
    std::vector<float> mid(ih * row);
    for (std::size_t r = 0; r < ih; ++r) {
        const float* src = in.data() + r * iw * c;
        float* dst = mid.data() + r * row;
        for (std::size_t x = 0; x < ow; ++x) {
            const float* w = xs.weights.data() + x * xs.size;
            const float* s = src + xs.start[x] * c;
            for (std::size_t k = 0; k < c; ++k) {
                float acc = 0.0f;
                for (std::size_t j = 0; j < xs.size; ++j) acc += w[j] * s[j * c + k];
                dst[x * c + k] = acc;
            }
        }
    }
    // Pass 2, along y: weighted sums of whole rows.
    Tensor<3> out(Shape<3>{oh, ow, c});
    for (std::size_t y = 0; y < oh; ++y) {
        float* TYPENET_RESTRICT dst = out.data() + y * row;
        std::fill_n(dst, row, 0.0f);
        const float* w = ys.weights.data() + y * ys.size;
        for (std::size_t j = 0; j < ys.size; ++j) {
            const float wj = w[j];
            if (wj == 0.0f) continue;
            const float* TYPENET_RESTRICT src = mid.data() + (ys.start[y] + j) * row;
            for (std::size_t i = 0; i < row; ++i) dst[i] += wj * src[i];
        }
    }
    return out;
}

namespace detail {
/// Blur along one axis (0 = rows, 1 = columns) with a normalised Gaussian of `sigma`,
/// truncated at 4 sigma, mirroring about the edge pixels (scipy's "mirror").
inline Tensor<3> gaussian_blur_axis(const Tensor<3>& in, double sigma, int axis) {
    const std::size_t h = in.shape()[0], w = in.shape()[1], c = in.shape()[2];
    const std::size_t n = axis == 0 ? h : w;
    const long r = static_cast<long>(4.0 * sigma + 0.5);
    std::vector<float> k(static_cast<std::size_t>(2 * r + 1));
    double total = 0;
    for (long j = -r; j <= r; ++j) total += std::exp(-0.5 * (j / sigma) * (j / sigma));
    for (long j = -r; j <= r; ++j)
        k[static_cast<std::size_t>(j + r)] = static_cast<float>(std::exp(-0.5 * (j / sigma) * (j / sigma)) / total);
    auto mirror = [n](long i) -> std::size_t {
        if (n == 1) return 0;
        const long period = 2 * static_cast<long>(n - 1);
        long m = i % period;
        if (m < 0) m += period;
        return static_cast<std::size_t>(m >= static_cast<long>(n) ? period - m : m);
    };
    Tensor<3> out(Shape<3>{h, w, c});
    out.fill(0.0f);
    const std::size_t row = w * c;
    if (axis == 0) {
        for (std::size_t y = 0; y < h; ++y)
            for (long j = -r; j <= r; ++j) {
                const float kj = k[static_cast<std::size_t>(j + r)];
                const float* src = in.data() + mirror(static_cast<long>(y) + j) * row;
                float* dst = out.data() + y * row;
                for (std::size_t i = 0; i < row; ++i) dst[i] += kj * src[i];
            }
    } else {
        for (std::size_t y = 0; y < h; ++y) {
            const float* src = in.data() + y * row;
            float* dst = out.data() + y * row;
            for (std::size_t x = 0; x < w; ++x)
                for (long j = -r; j <= r; ++j) {
                    const float kj = k[static_cast<std::size_t>(j + r)];
                    const float* s = src + mirror(static_cast<long>(x) + j) * c;
                    for (std::size_t ch = 0; ch < c; ++ch) dst[x * c + ch] += kj * s[ch];
                }
        }
    }
    return out;
}
}  // namespace detail

/// Resize as scikit-image's `resize(..., anti_aliasing=True)` does: Gaussian blur
/// (sigma = (in / out - 1) / 2 per axis when shrinking) then bilinear sampling.
/// @throws shape_error for an empty image or a zero output size.
inline Tensor<3> resize_gaussian(const Tensor<3>& in, std::size_t oh, std::size_t ow) {
    detail::check_resize_args("resize_gaussian", in, oh, ow);
    const double sy = (static_cast<double>(in.shape()[0]) / static_cast<double>(oh) - 1.0) / 2.0;
    const double sx = (static_cast<double>(in.shape()[1]) / static_cast<double>(ow) - 1.0) / 2.0;
    if (sy <= 0 && sx <= 0) return resize_bilinear(in, oh, ow);
    Tensor<3> blurred = sy > 0 ? detail::gaussian_blur_axis(in, sy, 0) : in;
    if (sx > 0) blurred = detail::gaussian_blur_axis(blurred, sx, 1);
    return resize_bilinear(blurred, oh, ow);
}

/// The central `h` x `w` region of an HWC image; the offset is rounded down,
/// `((H - h) / 2, (W - w) / 2)`, as Keras's `CenterCrop`.
/// @throws shape_error when the image is smaller than `h` x `w`.
inline Tensor<3> center_crop(const Tensor<3>& in, std::size_t h, std::size_t w) {
    const std::size_t ih = in.shape()[0], iw = in.shape()[1], c = in.shape()[2];
    if (h == 0 || w == 0 || h > ih || w > iw)
        throw shape_error("center_crop: cannot cut " + std::to_string(h) + "x" + std::to_string(w) +
                          " pixels out of an image of shape " + shape_to_string(shape_of(in)));
    const std::size_t top = (ih - h) / 2, left = (iw - w) / 2;
    Tensor<3> out(Shape<3>{h, w, c});
    for (std::size_t y = 0; y < h; ++y)
        std::copy_n(in.data() + ((top + y) * iw + left) * c, w * c, out.data() + y * w * c);
    return out;
}

/// The largest centred square of an HWC image (side `min(H, W)`).
inline Tensor<3> center_square_crop(const Tensor<3>& in) {
    const std::size_t side = std::min(in.shape()[0], in.shape()[1]);
    return center_crop(in, side, side);
}

}  // namespace typenet::data
