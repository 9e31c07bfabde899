// Helpers shared by the tests of tests/data: temporary folders and image files built
// byte by byte (PNG with zlib, GIF with a minimal LZW stream), so that every input
// format and every kind of damage can be produced without fixture files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>
#include <zlib.h>

namespace data_test {

using Bytes = std::vector<std::uint8_t>;

/// A fresh, empty temporary folder, removed with everything in it at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag) {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               ("typenet_data_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

inline void write_bytes(const std::filesystem::path& p, const Bytes& b) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline Bytes read_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void put_be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

/// Append a PNG chunk with its length and CRC (computed with zlib, independently of typenet).
inline void png_chunk(Bytes& out, const char* type, const Bytes& data) {
    put_be32(out, static_cast<std::uint32_t>(data.size()));
    Bytes td(type, type + 4);
    td.insert(td.end(), data.begin(), data.end());
    out.insert(out.end(), td.begin(), td.end());
    put_be32(out, static_cast<std::uint32_t>(crc32(0L, td.data(), static_cast<uInt>(td.size()))));
}

/// A PNG file: `rows` holds the raw scanlines WITHOUT filter bytes (filter 0 is added);
/// `extra` chunks (e.g. PLTE, tRNS) go between IHDR and IDAT.
inline Bytes make_png(std::uint32_t w, std::uint32_t h, int bit_depth, int color_type, const Bytes& pixels,
                      std::size_t row_bytes, const std::vector<std::pair<std::string, Bytes>>& extra = {}) {
    Bytes out = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    Bytes ihdr;
    put_be32(ihdr, w);
    put_be32(ihdr, h);
    ihdr.push_back(static_cast<std::uint8_t>(bit_depth));
    ihdr.push_back(static_cast<std::uint8_t>(color_type));
    ihdr.push_back(0), ihdr.push_back(0), ihdr.push_back(0);
    png_chunk(out, "IHDR", ihdr);
    for (const auto& [type, data] : extra) png_chunk(out, type.c_str(), data);
    Bytes raw;
    for (std::size_t y = 0; y * row_bytes < pixels.size(); ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), pixels.begin() + static_cast<std::ptrdiff_t>(y * row_bytes),
                   pixels.begin() + static_cast<std::ptrdiff_t>((y + 1) * row_bytes));
    }
    uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
    Bytes z(zlen);
    compress(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()));
    z.resize(zlen);
    png_chunk(out, "IDAT", z);
    png_chunk(out, "IEND", {});
    return out;
}

/// A GIF of `w` x `h` palette indices (palette of 4 colours, `palette` = 12 bytes),
/// with palette index `transparent` transparent when >= 0, and optionally a second
/// frame (all index `second_frame_index`) after the first. The LZW stream emits a clear
/// code before every second pixel, so its code size stays 3 bits: a valid stream that
/// any decoder reads, written without a real LZW compressor.
inline Bytes make_gif(std::uint16_t w, std::uint16_t h, const std::vector<std::uint8_t>& indices, const Bytes& palette,
                      int transparent = -1, int second_frame_index = -1) {
    Bytes out = {'G', 'I', 'F', '8', '9', 'a'};
    auto le16 = [&](std::uint16_t v) { out.push_back(v & 0xFF), out.push_back(static_cast<std::uint8_t>(v >> 8)); };
    le16(w);
    le16(h);
    out.push_back(0x80 | 0x01);  // global colour table of 2^(1+1) = 4 entries
    out.push_back(0);
    out.push_back(0);
    out.insert(out.end(), palette.begin(), palette.end());
    auto frame = [&](const std::vector<std::uint8_t>& idx) {
        if (transparent >= 0) {  // graphic control extension with a transparent colour
            const Bytes gce = {0x21, 0xF9, 4, 0x01, 0, 0, static_cast<std::uint8_t>(transparent), 0};
            out.insert(out.end(), gce.begin(), gce.end());
        }
        out.push_back(0x2C);
        le16(0), le16(0), le16(w), le16(h);
        out.push_back(0);
        out.push_back(2);  // LZW minimum code size: codes of 3 bits, clear = 4, end = 5
        std::vector<unsigned> codes;
        for (std::size_t i = 0; i < idx.size(); ++i) {
            if (i % 2 == 0) codes.push_back(4);
            codes.push_back(idx[i]);
        }
        codes.push_back(5);
        Bytes data;
        unsigned acc = 0, nbits = 0;
        for (unsigned c : codes) {
            acc |= c << nbits;
            nbits += 3;
            while (nbits >= 8) data.push_back(acc & 0xFF), acc >>= 8, nbits -= 8;
        }
        if (nbits) data.push_back(acc & 0xFF);
        for (std::size_t i = 0; i < data.size(); i += 255) {
            const std::size_t n = std::min<std::size_t>(255, data.size() - i);
            out.push_back(static_cast<std::uint8_t>(n));
            out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(i),
                       data.begin() + static_cast<std::ptrdiff_t>(i + n));
        }
        out.push_back(0);
    };
    frame(indices);
    if (second_frame_index >= 0) frame(std::vector<std::uint8_t>(indices.size(), static_cast<std::uint8_t>(second_frame_index)));
    out.push_back(0x3B);
    return out;
}

}  // namespace data_test
