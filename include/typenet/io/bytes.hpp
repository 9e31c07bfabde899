/// @file io/bytes.hpp
/// Little-endian binary encoding: bounds-checked reading and appending of the integers,
/// floats and strings that typenet's file formats are made of, and their CRC-32 checksum.
///
/// Every file format typenet reads (`.npy`, zip/`.npz`, `.tflite`, its own archives) is
/// little-endian. `ByteReader` walks a byte span and throws `format_error` naming the file
/// and the field whenever a read would go past the end, so a truncated or corrupt file can
/// never cause an out-of-bounds access. `ByteWriter` appends the same encodings to a buffer.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "typenet/core/error.hpp"

namespace typenet::io {

/// The value of type `T` (integer or float) stored little-endian at `p` (no alignment needed).
template <class T>
T load_le(const std::byte* p) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), p, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) std::reverse(raw.begin(), raw.end());
    T value;
    std::memcpy(&value, raw.data(), sizeof(T));
    return value;
}

/// Store `value` little-endian at `p` (no alignment needed).
template <class T>
void store_le(std::byte* p, T value) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), &value, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) std::reverse(raw.begin(), raw.end());
    std::memcpy(p, raw.data(), sizeof(T));
}

/// `a * b`, or nothing when the product does not fit in `std::size_t`.
inline std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) noexcept {
    std::size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}

/// Product of the extents of a shape, or nothing on overflow.
template <class Range>
std::optional<std::size_t> checked_product(const Range& extents) noexcept {
    std::size_t n = 1;
    for (auto e : extents) {
        if constexpr (std::is_signed_v<decltype(e)>)
            if (e < 0) return std::nullopt;
        auto m = checked_mul(n, static_cast<std::size_t>(e));
        if (!m) return std::nullopt;
        n = *m;
    }
    return n;
}

/// CRC-32 of `data` (zlib's `crc32`, the checksum of zip and PNG).
inline std::uint32_t crc32_of(std::span<const std::byte> data) noexcept {
    return static_cast<std::uint32_t>(
        ::crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<z_size_t>(data.size())));
}

/// View of `s` as bytes.
inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// A cursor over a byte span whose reads are checked against its end.
///
/// Every failure throws `format_error(name, reason)`, the reason naming the field being read
/// and its offset, e.g. "truncated: header length needs 2 bytes at offset 8, only 1 left".
class ByteReader {
public:
    /// Read `bytes`; `name` (a file path, or "archive.npz: entry x.npy") is used in errors.
    ByteReader(std::span<const std::byte> bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {}

    /// Current offset from the start of the span.
    std::size_t offset() const noexcept { return pos_; }
    /// Bytes left after the current offset.
    std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    /// The whole span.
    std::span<const std::byte> bytes() const noexcept { return bytes_; }
    /// The name used in errors.
    const std::string& name() const noexcept { return name_; }

    /// Move to absolute offset `pos` (for formats with offsets, such as zip).
    void seek(std::size_t pos, std::string_view what) {
        if (pos > bytes_.size())
            fail("truncated: " + std::string(what) + " at offset " + std::to_string(pos) + " is past the end (size " +
                 std::to_string(bytes_.size()) + ")");
        pos_ = pos;
    }

    /// Read one little-endian value of type `T`; `what` names the field for errors.
    template <class T>
    T read(std::string_view what) {
        need(sizeof(T), what);
        T v = load_le<T>(bytes_.data() + pos_);
        pos_ += sizeof(T);
        return v;
    }

    /// The next `n` bytes as a span (no copy).
    std::span<const std::byte> take(std::size_t n, std::string_view what) {
        need(n, what);
        auto s = bytes_.subspan(pos_, n);
        pos_ += n;
        return s;
    }

    /// The next `n` bytes as a string.
    std::string string(std::size_t n, std::string_view what) {
        auto s = take(n, what);
        return std::string(reinterpret_cast<const char*>(s.data()), s.size());
    }

    /// Skip `n` bytes.
    void skip(std::size_t n, std::string_view what) { (void)take(n, what); }

    /// Throw unless `n` more bytes can be read.
    void need(std::size_t n, std::string_view what) const {
        if (n > remaining())
            fail("truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes at offset " +
                 std::to_string(pos_) + ", only " + std::to_string(remaining()) + " left");
    }

    /// Throw `format_error(name, reason)`.
    [[noreturn]] void fail(const std::string& reason) const { throw format_error(name_, reason); }

private:
    std::span<const std::byte> bytes_;
    std::string name_;
    std::size_t pos_ = 0;
};

/// Appends little-endian values to a byte buffer.
class ByteWriter {
public:
    /// Append one little-endian value.
    template <class T>
    void put(T value) {
        const std::size_t at = buf_.size();
        buf_.resize(at + sizeof(T));
        store_le(buf_.data() + at, value);
    }

    /// Append raw bytes.
    void put_bytes(std::span<const std::byte> bytes) { buf_.insert(buf_.end(), bytes.begin(), bytes.end()); }

    /// Append the characters of `s` (no length, no terminator).
    void put_string(std::string_view s) { put_bytes(as_bytes(s)); }

    /// Append `n` floats little-endian.
    void put_floats(const float* data, std::size_t n) {
        const std::size_t at = buf_.size();
        buf_.resize(at + n * sizeof(float));
        if constexpr (std::endian::native == std::endian::little) {
            if (n) std::memcpy(buf_.data() + at, data, n * sizeof(float));
        } else {
            for (std::size_t i = 0; i < n; ++i) store_le(buf_.data() + at + i * sizeof(float), data[i]);
        }
    }

    /// Append zero bytes until the size is a multiple of `alignment`.
    void pad_to(std::size_t alignment) {
        buf_.resize((buf_.size() + alignment - 1) / alignment * alignment, std::byte{0});
    }

    /// Bytes written so far.
    std::size_t size() const noexcept { return buf_.size(); }
    /// The buffer (to patch fields written earlier).
    std::vector<std::byte>& buffer() noexcept { return buf_; }

private:
    std::vector<std::byte> buf_;
};

/// Convert `n` little-endian floats at `src` to native floats at `dst`.
inline void load_floats_le(const std::byte* src, std::size_t n, float* dst) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        if (n) std::memcpy(dst, src, n * sizeof(float));
    } else {
        for (std::size_t i = 0; i < n; ++i) dst[i] = load_le<float>(src + i * sizeof(float));
    }
}

}  // namespace typenet::io
