/// @file io/flatbuffer.hpp
/// A minimal, bounds-checked reader of FlatBuffers (the container of `.tflite` models).
///
/// FlatBuffers are read in place: a table is found through a 32-bit offset, its fields
/// through a "vtable" of 16-bit offsets, vectors and strings through further 32-bit
/// offsets. This reader validates every one of them against the buffer before reading, so a
/// corrupt or truncated file gives `format_error(name, reason)`, never an out-of-bounds read.
/// It also caps the total size of what is copied out (strings, vectors, tables) at a small
/// multiple of the buffer's size (see `FlatBuffer::charge`), so that offsets pointing many
/// times at the same bytes cannot make a small file expand into gigabytes. Fields are numbered from 0 in schema order.
///
/// ```cpp
/// io::FlatBuffer fb(bytes, "model.tflite");
/// io::FlatTable model = fb.root();
/// auto version = model.scalar<std::uint32_t>(0, 0);
/// for (const io::FlatTable& sub : model.tables(2)) { ... }
/// ```
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/io/bytes.hpp"

namespace typenet::io {

class FlatBuffer;

/// A table of a `FlatBuffer`. Cheap to copy; valid while its `FlatBuffer` lives.
class FlatTable {
public:
    /// Byte offset of the table in the buffer.
    std::size_t offset() const noexcept { return pos_; }

    /// Whether field `field` is present.
    bool has(std::size_t field) const noexcept { return slot(field) != 0; }

    /// Scalar field `field` (integer, float or bool), `fallback` when absent.
    template <class T>
    T scalar(std::size_t field, T fallback) const;

    /// Sub-table at field `field`, nothing when absent.
    std::optional<FlatTable> table(std::size_t field) const;

    /// String at field `field` ("" when absent).
    std::string string(std::size_t field) const;

    /// Vector of scalars at field `field` (empty when absent).
    template <class T>
    std::vector<T> vector(std::size_t field) const;

    /// Vector of tables at field `field` (empty when absent).
    std::vector<FlatTable> tables(std::size_t field) const;

    /// Vector of bytes at field `field`, as a view into the buffer (empty when absent).
    std::span<const std::byte> bytes(std::size_t field) const;

private:
    friend class FlatBuffer;
    FlatTable(const FlatBuffer* fb, std::size_t pos, std::size_t vtable, std::uint16_t vsize, std::uint16_t tsize)
        : fb_(fb), pos_(pos), vtable_(vtable), vsize_(vsize), tsize_(tsize) {}

    /// Offset of field `field` inside the table, 0 when absent.
    std::uint16_t slot(std::size_t field) const noexcept;
    /// Absolute position of field `field` holding `size` bytes; nothing when absent.
    std::optional<std::size_t> field_pos(std::size_t field, std::size_t size) const;
    /// Absolute position an offset field points to; nothing when absent.
    std::optional<std::size_t> target(std::size_t field) const;
    /// (first element, count) of the vector at field `field` with elements of `elem` bytes.
    std::pair<std::size_t, std::size_t> vector_at(std::size_t field, std::size_t elem) const;

    const FlatBuffer* fb_;
    std::size_t pos_, vtable_;
    std::uint16_t vsize_, tsize_;
};

/// A FlatBuffer held in memory (not copied: `bytes` must outlive it).
class FlatBuffer {
public:
    /// Read `bytes`; `name` (the file path) appears in errors.
    FlatBuffer(std::span<const std::byte> bytes, std::string name)
        : bytes_(bytes), name_(std::move(name)), budget_(16 * bytes.size() + (16u << 20)) {}
    FlatBuffer(const FlatBuffer&) = delete;  // its tables point to it
    FlatBuffer& operator=(const FlatBuffer&) = delete;

    /// The root table.
    FlatTable root() const {
        if (bytes_.size() < 8)
            fail("truncated: " + std::to_string(bytes_.size()) + " bytes is too short for a flatbuffer");
        return table_at(read<std::uint32_t>(0), "root table");
    }

    /// The 4-byte file identifier after the root offset (e.g. "TFL3").
    std::string identifier() const {
        if (bytes_.size() < 8) return "";
        return std::string(reinterpret_cast<const char*>(bytes_.data() + 4), 4);
    }

    /// The whole buffer.
    std::span<const std::byte> bytes() const noexcept { return bytes_; }
    /// The name used in errors.
    const std::string& name() const noexcept { return name_; }

    /// Throw `format_error(name, reason)`.
    [[noreturn]] void fail(const std::string& reason) const { throw format_error(name_, reason); }

    /// Account for `n` bytes of memory built from the buffer (copied strings and vectors, and
    /// objects a caller makes from tables); throws once the total exceeds 16 times the
    /// buffer's size plus 16 MiB, which a valid file never comes near.
    void charge(std::size_t n) const {
        if (n > budget_ - used_)
            fail("corrupt flatbuffer: its offsets point at the same data more often than a valid file could");
        used_ += n;
    }

    /// Little-endian value of type `T` at `pos`, bounds-checked.
    template <class T>
    T read(std::size_t pos) const {
        if (pos > bytes_.size() || sizeof(T) > bytes_.size() - pos)
            fail("corrupt flatbuffer: reading " + std::to_string(sizeof(T)) + " bytes at offset " +
                 std::to_string(pos) + " goes past the end (" + std::to_string(bytes_.size()) + " bytes)");
        return load_le<T>(bytes_.data() + pos);
    }

    /// The table at absolute position `pos`; `what` names it for errors.
    FlatTable table_at(std::size_t pos, std::string_view what) const {
        const auto soffset = read<std::int32_t>(pos);
        const std::int64_t vt = static_cast<std::int64_t>(pos) - soffset;
        if (vt < 0 || static_cast<std::uint64_t>(vt) + 4 > bytes_.size())
            fail("corrupt flatbuffer: the vtable of the " + std::string(what) + " at offset " + std::to_string(pos) +
                 " lies outside the file");
        const auto vtable = static_cast<std::size_t>(vt);
        const auto vsize = read<std::uint16_t>(vtable);
        const auto tsize = read<std::uint16_t>(vtable + 2);
        if (vsize < 4 || vsize % 2 != 0 || vtable + vsize > bytes_.size())
            fail("corrupt flatbuffer: the vtable of the " + std::string(what) + " at offset " + std::to_string(pos) +
                 " has an invalid size " + std::to_string(vsize));
        if (tsize < 4 || pos + tsize > bytes_.size())
            fail("corrupt flatbuffer: the " + std::string(what) + " at offset " + std::to_string(pos) + " claims " +
                 std::to_string(tsize) + " bytes, past the end of the file");
        return FlatTable(this, pos, vtable, vsize, tsize);
    }

private:
    std::span<const std::byte> bytes_;
    std::string name_;
    std::size_t budget_;
    mutable std::size_t used_ = 0;
};

inline std::uint16_t FlatTable::slot(std::size_t field) const noexcept {
    const std::size_t at = 4 + 2 * field;
    if (at + 2 > vsize_) return 0;
    return load_le<std::uint16_t>(fb_->bytes().data() + vtable_ + at);
}

inline std::optional<std::size_t> FlatTable::field_pos(std::size_t field, std::size_t size) const {
    const std::uint16_t off = slot(field);
    if (off == 0) return std::nullopt;
    if (off < 4 || off + size > tsize_)
        fb_->fail("corrupt flatbuffer: field " + std::to_string(field) + " of the table at offset " +
                  std::to_string(pos_) + " lies outside the table");
    return pos_ + off;
}

template <class T>
T FlatTable::scalar(std::size_t field, T fallback) const {
    static_assert(std::is_arithmetic_v<T>);
    const auto p = field_pos(field, sizeof(T));
    if (!p) return fallback;
    if constexpr (std::is_same_v<T, bool>)
        return fb_->read<std::uint8_t>(*p) != 0;
    else
        return fb_->read<T>(*p);
}

inline std::optional<std::size_t> FlatTable::target(std::size_t field) const {
    const auto p = field_pos(field, 4);
    if (!p) return std::nullopt;
    const auto rel = fb_->read<std::uint32_t>(*p);
    if (rel == 0 || rel >= fb_->bytes().size() - *p)
        fb_->fail("corrupt flatbuffer: field " + std::to_string(field) + " of the table at offset " +
                  std::to_string(pos_) + " points outside the file");
    return *p + rel;
}

inline std::optional<FlatTable> FlatTable::table(std::size_t field) const {
    const auto t = target(field);
    if (!t) return std::nullopt;
    return fb_->table_at(*t, "table in field " + std::to_string(field));
}

inline std::pair<std::size_t, std::size_t> FlatTable::vector_at(std::size_t field, std::size_t elem) const {
    const auto v = target(field);
    if (!v) return {0, 0};
    const auto n = fb_->read<std::uint32_t>(*v);
    const std::size_t start = *v + 4;
    if (n > (fb_->bytes().size() - start) / elem)
        fb_->fail("corrupt flatbuffer: the vector in field " + std::to_string(field) + " of the table at offset " +
                  std::to_string(pos_) + " claims " + std::to_string(n) + " elements, past the end of the file");
    return {start, n};
}

inline std::string FlatTable::string(std::size_t field) const {
    const auto [start, n] = vector_at(field, 1);
    if (start == 0) return "";
    if (start + n >= fb_->bytes().size() || fb_->bytes()[start + n] != std::byte{0})
        fb_->fail("corrupt flatbuffer: the string in field " + std::to_string(field) + " of the table at offset " +
                  std::to_string(pos_) + " is not terminated");
    fb_->charge(n);
    return std::string(reinterpret_cast<const char*>(fb_->bytes().data() + start), n);
}

template <class T>
std::vector<T> FlatTable::vector(std::size_t field) const {
    static_assert(std::is_arithmetic_v<T>);
    const auto [start, n] = vector_at(field, sizeof(T));
    fb_->charge(n * sizeof(T));
    std::vector<T> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = load_le<T>(fb_->bytes().data() + start + i * sizeof(T));
    return out;
}

inline std::vector<FlatTable> FlatTable::tables(std::size_t field) const {
    const auto [start, n] = vector_at(field, 4);
    fb_->charge(n * sizeof(FlatTable));
    std::vector<FlatTable> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t e = start + 4 * i;
        const auto rel = fb_->read<std::uint32_t>(e);
        if (rel == 0 || rel >= fb_->bytes().size() - e)
            fb_->fail("corrupt flatbuffer: element " + std::to_string(i) + " of the table vector in field " +
                      std::to_string(field) + " of the table at offset " + std::to_string(pos_) +
                      " points outside the file");
        out.push_back(fb_->table_at(e + rel, "table " + std::to_string(i) + " of field " + std::to_string(field)));
    }
    return out;
}

inline std::span<const std::byte> FlatTable::bytes(std::size_t field) const {
    const auto [start, n] = vector_at(field, 1);
    if (start == 0) return {};
    return fb_->bytes().subspan(start, n);
}

}  // namespace typenet::io
