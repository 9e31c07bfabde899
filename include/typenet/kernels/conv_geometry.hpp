/// @file kernels/conv_geometry.hpp
/// The geometry of a 2-D convolution over NHWC tensors, with TensorFlow's padding rules.
///
/// Output pixel (oy, ox) reads input rows `oy * sh - pad_top + i` (i < kh) and columns
/// `ox * sw - pad_left + j` (j < kw); rows and columns outside the input read zero.
/// TensorFlow "SAME": `oh = ceil(h / sh)`, `pad_total = max((oh - 1) * sh + kh - h, 0)`,
/// `pad_top = pad_total / 2` (the odd pixel goes to the bottom), likewise for columns.
/// "VALID": `oh = (h - kh) / sh + 1`, no padding.
#pragma once

#include <cstddef>
#include <string>

#include "typenet/core/error.hpp"

namespace typenet::kernels {

/// NHWC convolution geometry (input extents, kernel, strides, padding, output extents).
struct ConvGeometry {
    std::size_t n = 0, h = 0, w = 0, c = 0;  ///< input: batch, height, width, channels
    std::size_t kh = 1, kw = 1;              ///< kernel extent
    std::size_t sh = 1, sw = 1;              ///< strides
    std::size_t pad_top = 0, pad_left = 0;   ///< zero padding before the first row / column
    std::size_t oh = 0, ow = 0;              ///< output extent

    /// TensorFlow "SAME" padding: `oh = ceil(h / sh)`, the odd padding pixel at the bottom / right.
    static ConvGeometry same(std::size_t n, std::size_t h, std::size_t w, std::size_t c, std::size_t kh,
                             std::size_t kw, std::size_t sh, std::size_t sw) {
        check_args(n, h, w, c, kh, kw, sh, sw, "same");
        ConvGeometry g{n, h, w, c, kh, kw, sh, sw, 0, 0, 0, 0};
        g.oh = (h + sh - 1) / sh;
        g.ow = (w + sw - 1) / sw;
        const std::size_t need_h = (g.oh - 1) * sh + kh, need_w = (g.ow - 1) * sw + kw;
        g.pad_top = need_h > h ? (need_h - h) / 2 : 0;
        g.pad_left = need_w > w ? (need_w - w) / 2 : 0;
        return g;
    }

    /// TensorFlow "VALID" padding: no padding, `oh = (h - kh) / sh + 1` (requires h >= kh).
    static ConvGeometry valid(std::size_t n, std::size_t h, std::size_t w, std::size_t c, std::size_t kh,
                              std::size_t kw, std::size_t sh, std::size_t sw) {
        check_args(n, h, w, c, kh, kw, sh, sw, "valid");
        if (h < kh || w < kw)
            throw shape_error("ConvGeometry::valid: kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                              " is larger than the input " + std::to_string(h) + "x" + std::to_string(w));
        return ConvGeometry{n, h, w, c, kh, kw, sh, sw, 0, 0, (h - kh) / sh + 1, (w - kw) / sw + 1};
    }

    /// Padding after the last row (what the last window reaches beyond the input; 0 if none).
    std::size_t pad_bottom() const noexcept {
        const std::size_t need = (oh - 1) * sh + kh;
        return need > h + pad_top ? need - h - pad_top : 0;
    }
    /// Padding after the last column.
    std::size_t pad_right() const noexcept {
        const std::size_t need = (ow - 1) * sw + kw;
        return need > w + pad_left ? need - w - pad_left : 0;
    }
    /// Number of input floats (n * h * w * c).
    std::size_t input_size() const noexcept { return n * h * w * c; }
    /// Number of output pixels (n * oh * ow).
    std::size_t output_pixels() const noexcept { return n * oh * ow; }

    /// Throw `shape_error` unless every extent is positive and every output window
    /// overlaps the input.
    void check(const char* who) const {
        if (!n || !h || !w || !c || !kh || !kw || !sh || !sw || !oh || !ow)
            throw shape_error(std::string(who) + ": zero extent in convolution geometry " + to_string());
        if (pad_top >= kh || pad_left >= kw || (oh - 1) * sh >= h + pad_top || (ow - 1) * sw >= w + pad_left)
            throw shape_error(std::string(who) + ": a window lies entirely in the padding in " + to_string());
    }

    /// Human-readable description, for error messages.
    std::string to_string() const {
        auto s = [](std::size_t v) { return std::to_string(v); };
        return "{input " + s(n) + "x" + s(h) + "x" + s(w) + "x" + s(c) + ", kernel " + s(kh) + "x" + s(kw) +
               ", stride " + s(sh) + "x" + s(sw) + ", pad " + s(pad_top) + "/" + s(pad_left) + ", output " + s(oh) +
               "x" + s(ow) + "}";
    }

private:
    static void check_args(std::size_t n, std::size_t h, std::size_t w, std::size_t c, std::size_t kh,
                           std::size_t kw, std::size_t sh, std::size_t sw, const char* which) {
        if (!n || !h || !w || !c || !kh || !kw || !sh || !sw)
            throw shape_error(std::string("ConvGeometry::") + which + ": every extent must be positive (n " +
                              std::to_string(n) + ", h " + std::to_string(h) + ", w " + std::to_string(w) + ", c " +
                              std::to_string(c) + ", kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                              ", stride " + std::to_string(sh) + "x" + std::to_string(sw) + ")");
    }
};

/// An affine map a convolution applies to its input values as it reads them
/// (`x * scale + offset`); the padding is zero *after* the map. Lets a rescaling
/// (MobileNetV2's `x * 2 - 1`) run inside the first convolution (conv2d.hpp).
struct InputMap {
    float scale = 1.0f;
    float offset = 0.0f;
    /// True when the map changes nothing.
    bool identity() const noexcept { return scale == 1.0f && offset == 0.0f; }
};

}  // namespace typenet::kernels
