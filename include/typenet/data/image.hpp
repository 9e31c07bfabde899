/// @file data/image.hpp
/// 8-bit RGB images: reading (PNG, JPEG, BMP, GIF), writing (PNG) and conversion
/// to and from float tensors.
///
/// Every image typenet reads comes out as 8-bit RGB, whatever the file holds:
///
/// | source                  | result                                                    |
/// |-------------------------|-----------------------------------------------------------|
/// | gray                    | the gray value replicated into R, G and B                 |
/// | gray + alpha, RGBA      | composited on a white background: c' = (c a + 255 (255 - a)) / 255, rounded |
/// | palette, 16-bit PNG     | expanded to RGB, 16-bit reduced to 8-bit                  |
/// | GIF                     | the first frame only (transparent pixels become white)    |
///
/// EXIF orientation tags are NOT applied: pixels come out in the order they are
/// stored, as TensorFlow's `decode_jpeg` and stb_image give them.
///
/// Decoding first checks the file's structure and header (`inspect_image`), so a
/// truncated or corrupt file, a file that is no image, or a header announcing zero
/// or more than `max_image_pixels` pixels throws `image_error(path, reason)` before
/// anything is allocated, never yielding a partly grey image.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/image_format.hpp"
#include "typenet/detail/stb.hpp"
#include "typenet/io/file.hpp"

namespace typenet::data {

/// An 8-bit RGB image: `pixels` holds `height` rows of `width` pixels of 3 bytes
/// (R, G, B), row-major, interleaved, top row first.
struct Image {
    std::size_t width = 0, height = 0;
    std::vector<std::uint8_t> pixels;

    /// An image of the given size, every byte set to `value` (255: white).
    static Image filled(std::size_t width, std::size_t height, std::uint8_t value = 0) {
        Image im;
        im.width = width;
        im.height = height;
        im.pixels.assign(width * height * 3, value);
        return im;
    }
    /// Pointer to the pixel at row `y`, column `x` (3 bytes).
    std::uint8_t* at(std::size_t y, std::size_t x) noexcept { return pixels.data() + (y * width + x) * 3; }
    /// Pointer to the pixel at row `y`, column `x` (3 bytes).
    const std::uint8_t* at(std::size_t y, std::size_t x) const noexcept { return pixels.data() + (y * width + x) * 3; }

    friend bool operator==(const Image&, const Image&) = default;
};

namespace detail {

/// The bytes of a file as unsigned chars, for the decoders.
inline std::span<const std::uint8_t> as_u8(const std::vector<std::byte>& b) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()};
}

/// Blend one channel value on white: (c a + 255 (255 - a)) / 255, rounded.
constexpr std::uint8_t over_white(unsigned c, unsigned a) noexcept {
    return static_cast<std::uint8_t>((c * a + 255u * (255u - a) + 127u) / 255u);
}

}  // namespace detail

/// Decode an image held in memory (PNG, JPEG, BMP, GIF) to 8-bit RGB; see the table
/// in this file's description for how gray, alpha and GIF inputs are converted.
/// `name` (usually the file path) is used in error messages.
/// @throws image_error on empty, unrecognised, truncated or corrupt data and on a
///         zero or absurd size in the header (reason in `reason()`).
inline Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name) {
    namespace stb = typenet::detail::stb;
    const ImageHeader header = inspect_image(bytes, name);
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) throw image_error(name, "file larger than 2 GiB");
    const int len = static_cast<int>(bytes.size());

    int w = 0, h = 0, channels = 0;
    if (!stb::typenet_stbi_info_from_memory(bytes.data(), len, &w, &h, &channels)) {
        const char* why = stb::typenet_stbi_failure_reason();
        throw image_error(name, std::string("cannot read the ") + format_name(header.format) +
                                    " header (decoder says: " + (why ? why : "unknown error") + ")");
    }
    // JPEG has no alpha; every other format is decoded with alpha (it may come from a
    // PNG tRNS chunk or a GIF transparent colour that the header does not announce).
    const int want = header.format == ImageFormat::jpeg ? 3 : 4;
    stb::stbi_uc* data = stb::typenet_stbi_load_from_memory(bytes.data(), len, &w, &h, &channels, want);
    if (!data) {
        const char* why = stb::typenet_stbi_failure_reason();
        throw image_error(name, std::string("corrupt or unsupported ") + format_name(header.format) +
                                    " data (decoder says: " + (why ? why : "unknown error") + ")");
    }
    Image im;
    im.width = static_cast<std::size_t>(w);
    im.height = static_cast<std::size_t>(h);
    const std::size_t n = im.width * im.height;
    im.pixels.resize(n * 3);
    if (want == 3) {
        std::memcpy(im.pixels.data(), data, n * 3);
    } else {
        const std::uint8_t* src = data;
        std::uint8_t* dst = im.pixels.data();
        for (std::size_t i = 0; i < n; ++i, src += 4, dst += 3) {
            const unsigned a = src[3];
            if (a == 255) {
                dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
            } else {
                dst[0] = detail::over_white(src[0], a);
                dst[1] = detail::over_white(src[1], a);
                dst[2] = detail::over_white(src[2], a);
            }
        }
    }
    stb::typenet_stbi_image_free(data);
    return im;
}

/// Read and decode an image file (PNG, JPEG, BMP or GIF, recognised by content, not
/// by extension) to 8-bit RGB.
/// @throws io_error when the file is missing or unreadable; image_error (a kind of
///         io_error) when it is empty, not an image, truncated, corrupt or of an
///         absurd size. Both carry the path.
inline Image read_image(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = io::read_file(path);
    return decode_image(detail::as_u8(bytes), path.string());
}

/// Read only the header of an image file and check its structure (no pixel decoding):
/// format, width, height. Same errors as `read_image`, except for damage inside the
/// compressed pixel data, which only decoding finds.
inline ImageHeader read_image_header(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = io::read_file(path);
    return inspect_image(detail::as_u8(bytes), path.string());
}

/// Encode `im` as a PNG file in memory.
/// @throws shape_error when `im.pixels` does not hold width x height x 3 bytes.
inline std::vector<std::uint8_t> encode_png(const Image& im) {
    if (im.width == 0 || im.height == 0 || im.pixels.size() != im.width * im.height * 3)
        throw shape_error("encode_png: an image of " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                          " pixels needs " + std::to_string(im.width * im.height * 3) + " bytes, it holds " +
                          std::to_string(im.pixels.size()));
    if (im.width * im.height > max_image_pixels)
        throw shape_error("encode_png: image larger than " + std::to_string(max_image_pixels) + " pixels");
    std::vector<std::uint8_t> out;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<std::uint8_t>*>(ctx);
        const auto* p = static_cast<const std::uint8_t*>(data);
        v->insert(v->end(), p, p + size);
    };
    const int w = static_cast<int>(im.width), h = static_cast<int>(im.height);
    if (!typenet::detail::stb::stbi_write_png_to_func(sink, &out, w, h, 3, im.pixels.data(), w * 3))
        throw shape_error("encode_png: the PNG encoder failed (out of memory?)");
    return out;
}

/// Write `im` as an 8-bit RGB PNG file, atomically (`io::write_file_atomic`: a temporary
/// file in the same folder, synced, then renamed over `path`).
/// @throws shape_error for an inconsistent image, io_error naming `path` when the file
///         cannot be written (the previous file, if any, is then left intact).
inline void write_png(const std::filesystem::path& path, const Image& im) {
    const std::vector<std::uint8_t> png = encode_png(im);
    io::write_file_atomic(path, std::as_bytes(std::span<const std::uint8_t>(png)));
}

/// The image as an HWC float tensor of shape (height, width, 3), values 0..255.
inline Tensor<3> to_tensor(const Image& im) {
    if (im.pixels.size() != im.width * im.height * 3)
        throw shape_error("to_tensor: an image of " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                          " pixels needs " + std::to_string(im.width * im.height * 3) + " bytes, it holds " +
                          std::to_string(im.pixels.size()));
    Tensor<3> t(Shape<3>{im.height, im.width, 3});
    float* TYPENET_RESTRICT dst = t.data();
    const std::uint8_t* TYPENET_RESTRICT src = im.pixels.data();
    const std::size_t n = im.pixels.size();
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
    return t;
}

/// An image from an HWC tensor with 3 channels (RGB) or 1 (gray, replicated):
/// each value times `scale` (use 255 for a [0, 1] tensor), rounded to the nearest
/// integer and clamped to 0..255; NaN becomes 0.
/// @throws shape_error when the tensor has neither 1 nor 3 channels or is empty.
inline Image to_image(const Tensor<3>& t, float scale = 1.0f) {
    const std::size_t h = t.shape()[0], w = t.shape()[1], c = t.shape()[2];
    if ((c != 1 && c != 3) || h == 0 || w == 0)
        throw shape_error("to_image: expected an HWC tensor with 1 or 3 channels, got shape " +
                          shape_to_string(shape_of(t)));
    Image im;
    im.width = w;
    im.height = h;
    im.pixels.resize(w * h * 3);
    const float* src = t.data();
    auto cvt = [scale](float v) -> std::uint8_t {
        v *= scale;
        if (!(v > 0.0f)) return 0;  // also NaN
        if (v >= 255.0f) return 255;
        return static_cast<std::uint8_t>(v + 0.5f);
    };
    if (c == 3) {
        for (std::size_t i = 0; i < w * h * 3; ++i) im.pixels[i] = cvt(src[i]);
    } else {
        for (std::size_t i = 0; i < w * h; ++i) im.pixels[3 * i] = im.pixels[3 * i + 1] = im.pixels[3 * i + 2] = cvt(src[i]);
    }
    return im;
}

}  // namespace typenet::data
