// libFuzzer target `image`: typenet::data::decode_image (typenet's structure checks, then
// stb_image) on arbitrary bytes; for a PNG, a second time with every chunk's CRC-32 made
// right, so that mutations also reach the decoder behind the checksums (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <zlib.h>

#include "fuzz_common.hpp"
#include "typenet/data/image.hpp"

namespace {

void decode(std::span<const std::uint8_t> bytes) {
    try {
        const typenet::data::Image im = typenet::data::decode_image(bytes, "fuzz");
        FUZZ_CHECK(im.width > 0 && im.height > 0);
        FUZZ_CHECK(im.width * im.height <= typenet::data::max_image_pixels);
        FUZZ_CHECK(im.pixels.size() == im.width * im.height * 3);
        // typenet decodes only uncompressed BMPs (stb_image refuses RLE): at least 1 bit per
        // pixel must be in the file, or the decoder made pixels up.
        if (typenet::data::sniff_format(bytes) == typenet::data::ImageFormat::bmp)
            FUZZ_CHECK(im.width * im.height <= 8 * bytes.size());
    } catch (const typenet::error&) {
    }
}

std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// The PNG with every complete chunk's CRC recomputed; empty if nothing changed.
std::vector<std::uint8_t> with_fixed_png_crcs(std::span<const std::uint8_t> in) {
    if (typenet::data::sniff_format(in) != typenet::data::ImageFormat::png) return {};
    std::vector<std::uint8_t> b(in.begin(), in.end());
    bool changed = false;
    for (std::size_t pos = 8; pos + 12 <= b.size();) {
        const std::size_t len = be32(&b[pos]);
        if (len > b.size() - pos - 12) break;
        const auto crc = static_cast<std::uint32_t>(::crc32(0L, &b[pos + 4], static_cast<uInt>(len + 4)));
        std::uint8_t* c = &b[pos + 8 + len];
        if (be32(c) != crc) {
            c[0] = static_cast<std::uint8_t>(crc >> 24), c[1] = static_cast<std::uint8_t>(crc >> 16);
            c[2] = static_cast<std::uint8_t>(crc >> 8), c[3] = static_cast<std::uint8_t>(crc);
            changed = true;
        }
        pos += 12 + len;
    }
    if (!changed) return {};
    return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    decode({data, size});
    const auto fixed = with_fixed_png_crcs({data, size});
    if (!fixed.empty()) decode(fixed);
    return 0;
}
