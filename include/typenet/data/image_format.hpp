/// @file data/image_format.hpp
/// Recognising image files and checking their structure before they are decoded.
///
/// `inspect_image` reads what a file says about itself without decoding its pixels:
/// its format (from its first bytes, never from its name), its width and height, and
/// whether its structure is complete. This catches what a decoder would otherwise
/// turn into silent garbage: stb_image, like most decoders, fills a truncated JPEG,
/// BMP or GIF with grey or black pixels without reporting an error.
///
/// | format | checked                                                                      |
/// |--------|------------------------------------------------------------------------------|
/// | PNG    | signature, IHDR first, every chunk complete, CRC of critical chunks, IEND    |
/// | JPEG   | SOI, every segment complete, Huffman tables valid, a frame header (SOF) before the scan, EOI |
/// | BMP    | file and info headers, pixel data as long as the header says (uncompressed)  |
/// | GIF    | header, colour tables, the first image and its data sub-blocks complete      |
///
/// Every failure throws `image_error(name, reason)`. The checks also keep out inputs
/// known to make stb_image 2.27 (Debian's libstb) overrun its buffers, such as JPEG
/// Huffman tables with more than 256 codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include <zlib.h>

#include "typenet/core/error.hpp"

namespace typenet::data {

/// The image formats typenet decodes.
enum class ImageFormat { unknown, png, jpeg, bmp, gif };

/// "PNG", "JPEG", "BMP", "GIF" or "unknown".
inline const char* format_name(ImageFormat f) noexcept {
    switch (f) {
        case ImageFormat::png: return "PNG";
        case ImageFormat::jpeg: return "JPEG";
        case ImageFormat::bmp: return "BMP";
        case ImageFormat::gif: return "GIF";
        default: return "unknown";
    }
}

/// The largest image typenet decodes, in pixels (2^26, e.g. 8192 x 8192). Larger
/// headers are refused before any memory is allocated: they are far more often a
/// corrupt or hostile file than a real photo.
inline constexpr std::size_t max_image_pixels = std::size_t{1} << 26;

/// What a file says about itself: format and size in pixels.
struct ImageHeader {
    ImageFormat format = ImageFormat::unknown;
    std::size_t width = 0;
    std::size_t height = 0;
};

/// The format of `bytes` from its signature (magic bytes); `unknown` if none matches.
inline ImageFormat sniff_format(std::span<const std::uint8_t> bytes) noexcept {
    const auto n = bytes.size();
    const auto* b = bytes.data();
    if (n >= 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G' && b[4] == 0x0D && b[5] == 0x0A &&
        b[6] == 0x1A && b[7] == 0x0A)
        return ImageFormat::png;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::jpeg;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::bmp;
    if (n >= 6 && b[0] == 'G' && b[1] == 'I' && b[2] == 'F' && b[3] == '8' && (b[4] == '7' || b[4] == '9') &&
        b[5] == 'a')
        return ImageFormat::gif;
    return ImageFormat::unknown;
}

namespace detail {

inline std::uint32_t be16(const std::uint8_t* p) noexcept { return (std::uint32_t{p[0]} << 8) | p[1]; }
inline std::uint32_t be32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline std::uint32_t le16(const std::uint8_t* p) noexcept { return (std::uint32_t{p[1]} << 8) | p[0]; }
inline std::uint32_t le32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) | p[0];
}

/// "ends after N bytes" for truncation messages.
inline std::string ends_after(std::size_t n) { return "the file ends after " + std::to_string(n) + " bytes"; }

/// The first bytes of a file in hex, to show what an unrecognised file starts with.
inline std::string leading_bytes(std::span<const std::uint8_t> bytes) {
    std::string s;
    char buf[4];
    for (std::size_t i = 0; i < bytes.size() && i < 8; ++i) {
        std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", bytes[i]);
        s += buf;
    }
    return s;
}

inline ImageHeader inspect_png(std::span<const std::uint8_t> d, const std::string& name) {
    const std::size_t n = d.size();
    const std::uint8_t* b = d.data();
    ImageHeader h{ImageFormat::png, 0, 0};
    std::size_t pos = 8;
    bool first = true;
    while (true) {
        if (pos + 8 > n)
            throw image_error(name, "truncated PNG: no IEND chunk, " + ends_after(n) + " (inside a chunk header)");
        const std::uint32_t len = be32(b + pos);
        const char type[5] = {char(b[pos + 4]), char(b[pos + 5]), char(b[pos + 6]), char(b[pos + 7]), 0};
        for (int i = 0; i < 4; ++i) {
            const char c = type[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                throw image_error(name, "corrupt PNG: invalid chunk type at byte " + std::to_string(pos + 4));
        }
        if (len > 0x7FFFFFFFu)
            throw image_error(name, std::string("corrupt PNG: chunk '") + type + "' has an invalid length");
        if (pos + 12 + std::size_t{len} > n)
            throw image_error(name, std::string("truncated PNG: chunk '") + type + "' at byte " + std::to_string(pos) +
                                        " needs " + std::to_string(12 + std::size_t{len}) + " bytes, " + ends_after(n));
        const std::string t(type);
        if (first) {
            if (t != "IHDR" || len != 13) throw image_error(name, "corrupt PNG: the first chunk is not a valid IHDR");
            h.width = be32(b + pos + 8);
            h.height = be32(b + pos + 12);
            first = false;
        }
        // Critical chunks (upper-case first letter) must be intact, as libpng requires;
        // ancillary ones (text, metadata) are not used, so their CRC does not matter.
        if (type[0] >= 'A' && type[0] <= 'Z') {
            const auto crc = static_cast<std::uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), b + pos + 4, len + 4));
            if (crc != be32(b + pos + 8 + len))
                throw image_error(name, std::string("corrupt PNG: CRC mismatch in chunk '") + type + "' at byte " +
                                            std::to_string(pos));
        }
        if (t == "IEND") break;
        pos += 12 + std::size_t{len};
    }
    return h;
}

inline ImageHeader inspect_jpeg(std::span<const std::uint8_t> d, const std::string& name) {
    const std::size_t n = d.size();
    const std::uint8_t* b = d.data();
    ImageHeader h{ImageFormat::jpeg, 0, 0};
    bool have_sof = false;
    std::size_t pos = 2;
    while (true) {
        // Find the next marker (0xFF, possibly repeated as fill, then a code).
        while (pos < n && b[pos] != 0xFF) ++pos;  // tolerate stray bytes, as libjpeg does
        while (pos < n && b[pos] == 0xFF) ++pos;
        if (pos >= n) throw image_error(name, "truncated JPEG: no end-of-image marker, " + ends_after(n));
        const std::uint8_t m = b[pos++];
        if (m == 0xD9) break;                                   // EOI
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // TEM, RSTn: no length
        if (m == 0xD8) throw image_error(name, "corrupt JPEG: a second start-of-image marker");
        if (pos + 2 > n) throw image_error(name, "truncated JPEG: " + ends_after(n) + " inside a segment header");
        const std::size_t len = be16(b + pos);
        if (len < 2) throw image_error(name, "corrupt JPEG: segment with invalid length at byte " + std::to_string(pos));
        if (pos + len > n)
            throw image_error(name, "truncated JPEG: a segment at byte " + std::to_string(pos - 2) + " needs " +
                                        std::to_string(len + 2) + " bytes, " + ends_after(n));
        if (m == 0xC4) {  // DHT: each table's 16 code counts must add up to at most 256
            std::size_t p = pos + 2;
            const std::size_t end = pos + len;
            while (p < end) {
                if (p + 17 > end) throw image_error(name, "corrupt JPEG: Huffman table header cut short");
                if ((b[p] >> 4) > 1 || (b[p] & 15) > 3)
                    throw image_error(name, "corrupt JPEG: invalid Huffman table class or number");
                std::size_t codes = 0;
                for (int i = 1; i <= 16; ++i) codes += b[p + static_cast<std::size_t>(i)];
                // stb_image 2.27 overflows its tables on more than 256 codes: refuse them here.
                if (codes > 256)
                    throw image_error(name, "corrupt JPEG: Huffman table with " + std::to_string(codes) +
                                                " codes (at most 256)");
                p += 17 + codes;
                if (p > end) throw image_error(name, "corrupt JPEG: Huffman table longer than its segment");
            }
        }
        const bool sof = (m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof && !have_sof) {
            if (len < 8) throw image_error(name, "corrupt JPEG: frame header too short");
            h.height = be16(b + pos + 3);
            h.width = be16(b + pos + 5);
            have_sof = true;
        }
        pos += len;
        if (m == 0xDA) {  // SOS: entropy-coded data follows, up to the next marker
            if (!have_sof) throw image_error(name, "corrupt JPEG: scan data before the frame header (SOF)");
            while (true) {
                if (pos + 1 >= n) throw image_error(name, "truncated JPEG: image data cut off, " + ends_after(n));
                if (b[pos] == 0xFF) {
                    const std::uint8_t c = b[pos + 1];
                    if (c == 0x00 || (c >= 0xD0 && c <= 0xD7)) {  // stuffed byte or restart marker
                        pos += 2;
                        continue;
                    }
                    if (c == 0xFF) {  // fill byte
                        ++pos;
                        continue;
                    }
                    break;  // a real marker: back to the segment loop
                }
                ++pos;
            }
        }
    }
    if (!have_sof) throw image_error(name, "corrupt JPEG: no frame header (SOF)");
    return h;
}

inline ImageHeader inspect_bmp(std::span<const std::uint8_t> d, const std::string& name) {
    const std::size_t n = d.size();
    const std::uint8_t* b = d.data();
    ImageHeader h{ImageFormat::bmp, 0, 0};
    if (n < 26) throw image_error(name, "truncated BMP: headers incomplete, " + ends_after(n));
    const std::uint32_t offset = le32(b + 10);
    const std::uint32_t dib = le32(b + 14);
    std::uint32_t bpp = 0, compression = 0;
    std::int64_t w = 0, hh = 0;
    if (dib == 12) {
        w = le16(b + 18);
        hh = le16(b + 20);
        bpp = le16(b + 24);
    } else if (dib >= 40) {
        if (n < 34) throw image_error(name, "truncated BMP: headers incomplete, " + ends_after(n));
        w = static_cast<std::int32_t>(le32(b + 18));
        hh = static_cast<std::int32_t>(le32(b + 22));
        bpp = le16(b + 28);
        compression = le32(b + 30);
    } else {
        throw image_error(name, "corrupt or unsupported BMP: info header of " + std::to_string(dib) + " bytes");
    }
    if (w < 0) throw image_error(name, "corrupt BMP: negative width");
    if (hh < 0) hh = -hh;  // top-down bitmap
    h.width = static_cast<std::size_t>(w);
    h.height = static_cast<std::size_t>(hh);
    // Found by fuzzing (tests/fuzz/regressions/image/bmp_compression_negative.bmp): stb_image
    // reads this field as a signed int, so a value of 2^31 or more is negative to it and decoded
    // as uncompressed rows, past the end of the file (136 bytes became a 2 x 8388609 image).
    // Types above 6 (BI_ALPHABITFIELDS) are none stb_image decodes: refuse them here.
    if (compression > 6)
        throw image_error(name, "corrupt or unsupported BMP: compression type " + std::to_string(compression));
    if (compression == 0 || compression == 3 || compression == 6) {  // uncompressed pixel rows
        const std::uint64_t row = ((std::uint64_t{bpp} * static_cast<std::uint64_t>(w) + 31) / 32) * 4;
        const std::uint64_t need = std::uint64_t{offset} + row * static_cast<std::uint64_t>(hh);
        if (need > n)
            throw image_error(name, "truncated BMP: the header says " + std::to_string(need) +
                                        " bytes of headers and pixels, " + ends_after(n));
    }
    return h;
}

inline ImageHeader inspect_gif(std::span<const std::uint8_t> d, const std::string& name) {
    const std::size_t n = d.size();
    const std::uint8_t* b = d.data();
    ImageHeader h{ImageFormat::gif, 0, 0};
    if (n < 13) throw image_error(name, "truncated GIF: header incomplete, " + ends_after(n));
    h.width = le16(b + 6);
    h.height = le16(b + 8);
    std::size_t pos = 13;
    if (b[10] & 0x80) pos += 3u * (2u << (b[10] & 7));
    auto skip_sub_blocks = [&](const char* what) {
        while (true) {
            if (pos >= n) throw image_error(name, std::string("truncated GIF: ") + what + " cut off, " + ends_after(n));
            const std::size_t len = b[pos++];
            if (len == 0) return;
            pos += len;
        }
    };
    while (true) {
        if (pos >= n) throw image_error(name, "truncated GIF: no image, " + ends_after(n));
        const std::uint8_t block = b[pos++];
        if (block == 0x21) {  // extension: label, then data sub-blocks
            ++pos;
            skip_sub_blocks("an extension block");
        } else if (block == 0x2C) {  // image descriptor, local colour table, LZW code size, data
            if (pos + 9 > n) throw image_error(name, "truncated GIF: image descriptor cut off, " + ends_after(n));
            const std::uint8_t packed = b[pos + 8];
            pos += 9;
            if (packed & 0x80) pos += 3u * (2u << (packed & 7));
            ++pos;  // LZW minimum code size
            skip_sub_blocks("the image data of the first frame");
            return h;
        } else if (block == 0x3B) {
            throw image_error(name, "corrupt GIF: the file holds no image");
        } else {
            throw image_error(name, "corrupt GIF: unknown block type at byte " + std::to_string(pos - 1));
        }
    }
}

}  // namespace detail

/// Recognise `bytes` as a PNG, JPEG, BMP or GIF image, check that its structure is
/// complete (see the table above) and read its size, without decoding the pixels.
/// `name` (usually the file path) is used in error messages.
/// @throws image_error (empty data, unknown format, truncated or corrupt structure,
///         zero width or height, more than `max_image_pixels` pixels).
inline ImageHeader inspect_image(std::span<const std::uint8_t> bytes, const std::string& name) {
    if (bytes.empty()) throw image_error(name, "empty file (0 bytes)");
    ImageHeader h;
    switch (sniff_format(bytes)) {
        case ImageFormat::png: h = detail::inspect_png(bytes, name); break;
        case ImageFormat::jpeg: h = detail::inspect_jpeg(bytes, name); break;
        case ImageFormat::bmp: h = detail::inspect_bmp(bytes, name); break;
        case ImageFormat::gif: h = detail::inspect_gif(bytes, name); break;
        default:
            throw image_error(name, "not a PNG, JPEG, BMP or GIF image (it starts with bytes " +
                                        detail::leading_bytes(bytes) + ")");
    }
    if (h.width == 0 || h.height == 0)
        throw image_error(name, std::string(format_name(h.format)) + " header says " + std::to_string(h.width) + "x" +
                                    std::to_string(h.height) + " pixels: an image needs a nonzero width and height");
    if (h.width > max_image_pixels / h.height)
        throw image_error(name, std::string(format_name(h.format)) + " header says " + std::to_string(h.width) + "x" +
                                    std::to_string(h.height) + " pixels, more than the " +
                                    std::to_string(max_image_pixels) + " typenet decodes (corrupt file?)");
    return h;
}

}  // namespace typenet::data
