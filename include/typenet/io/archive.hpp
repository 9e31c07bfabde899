/// @file io/archive.hpp
/// typenet's own model file: a versioned, checksummed container of metadata strings and
/// named float32 tensors.
///
/// ```cpp
/// typenet::io::Archive a;
/// a.meta["signature"] = "Sequential<MobileNetV2<>, Dense<3, Softmax>>";
/// a.tensors.push_back({"dense/kernel", {1280, 3}, kernel_values});
/// typenet::io::write_archive("model.tnet", a);              // atomic
/// auto b = typenet::io::read_archive("model.tnet");         // validated
/// ```
///
/// Layout (all integers little-endian). Every format version starts with the same 24-byte
/// preamble and ends with the same checksum, so that any typenet can tell a damaged file
/// from one written by a newer typenet:
///
/// | bytes            | field                                                             |
/// |------------------|-------------------------------------------------------------------|
/// | 8                | magic `TYPENET\0`                                                 |
/// | 4                | u32 format version (this typenet writes and reads version 1)     |
/// | 4                | u32 flags, 0                                                      |
/// | 8                | u64 size of the whole file in bytes, checksum included            |
/// | 4                | u32 number of metadata entries M                                  |
/// | 4                | u32 number of tensors T                                           |
/// | M times          | u32 key length, key (UTF-8), u32 value length, value (UTF-8)      |
/// | T times          | u32 name length, name (UTF-8), u32 rank R, R x u64 extents,       |
/// |                  | zero bytes up to a multiple of 64 from the file start,            |
/// |                  | product(extents) x f32 values, row-major                          |
/// | 4                | u32 CRC-32 (zlib's) of every byte before it                       |
///
/// `read_archive` checks the magic, the size, the checksum, the version, and every count and
/// length against the bytes that remain, and throws `format_error(path, reason)` on any
/// problem ("file is corrupt: checksum mismatch", "written by a newer typenet ...",
/// "truncated: ..."). `write_archive` writes atomically (see `write_file_atomic`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/io/bytes.hpp"
#include "typenet/io/file.hpp"

namespace typenet::io {

/// The archive format version this typenet writes; it reads versions 1 to this one.
inline constexpr std::uint32_t archive_format_version = 1;

/// Largest tensor rank an archive may hold.
inline constexpr std::size_t archive_max_rank = 32;

/// A named float32 tensor of an archive.
struct NamedTensor {
    /// Unique, non-empty name, e.g. "dense/kernel".
    std::string name;
    /// Extents, outermost first (empty for a scalar).
    std::vector<std::size_t> shape;
    /// Values in row-major order; `data.size()` is the product of `shape`.
    std::vector<float> data;
};

/// The contents of a typenet model file: metadata strings and named tensors (in order).
struct Archive {
    /// Metadata: "signature" (the architecture), "class_names", training settings, ...
    std::map<std::string, std::string> meta;
    /// The tensors, in the order they were written.
    std::vector<NamedTensor> tensors;

    /// The tensor called `name`, or nullptr.
    const NamedTensor* find(std::string_view name) const noexcept {
        for (const auto& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }
};

namespace detail {
inline constexpr char archive_magic[8] = {'T', 'Y', 'P', 'E', 'N', 'E', 'T', '\0'};
inline constexpr std::size_t archive_preamble = 24;  // magic, version, flags, size
inline constexpr std::size_t archive_alignment = 64;
}  // namespace detail

/// The bytes of the archive file holding `a`. Throws `shape_error` if a tensor's data does not
/// match its shape, `config_error` for empty or repeated names, a rank above
/// `archive_max_rank`, or a string longer than 4 GiB.
inline std::vector<std::byte> encode_archive(const Archive& a) {
    auto length = [](std::string_view what, std::string_view s) {
        if (s.size() > UINT32_MAX) throw config_error("write_archive: " + std::string(what) + " is longer than 4 GiB");
        return static_cast<std::uint32_t>(s.size());
    };
    if (a.meta.size() > UINT32_MAX || a.tensors.size() > UINT32_MAX)
        throw config_error("write_archive: too many entries");
    ByteWriter w;
    w.put_bytes(std::as_bytes(std::span(detail::archive_magic)));
    w.put<std::uint32_t>(archive_format_version);
    w.put<std::uint32_t>(0);  // flags
    w.put<std::uint64_t>(0);  // size, patched below
    w.put<std::uint32_t>(static_cast<std::uint32_t>(a.meta.size()));
    w.put<std::uint32_t>(static_cast<std::uint32_t>(a.tensors.size()));
    for (const auto& [key, value] : a.meta) {
        if (key.empty()) throw config_error("write_archive: empty metadata key");
        w.put<std::uint32_t>(length("metadata key", key));
        w.put_string(key);
        w.put<std::uint32_t>(length("metadata value of '" + key + "'", value));
        w.put_string(value);
    }
    std::set<std::string_view> names;
    for (const auto& t : a.tensors) {
        if (t.name.empty()) throw config_error("write_archive: a tensor has an empty name");
        if (!names.insert(t.name).second) throw config_error("write_archive: two tensors are called '" + t.name + "'");
        if (t.shape.size() > archive_max_rank)
            throw config_error("write_archive: tensor '" + t.name + "' has rank " + std::to_string(t.shape.size()) +
                               " (at most " + std::to_string(archive_max_rank) + ")");
        const auto count = checked_product(t.shape);
        if (!count || *count != t.data.size())
            throw shape_error("write_archive: tensor '" + t.name + "' has shape " + shape_to_string(t.shape) + " but " +
                              std::to_string(t.data.size()) + " values");
        w.put<std::uint32_t>(length("tensor name", t.name));
        w.put_string(t.name);
        w.put<std::uint32_t>(static_cast<std::uint32_t>(t.shape.size()));
        for (auto e : t.shape) w.put<std::uint64_t>(e);
        w.pad_to(detail::archive_alignment);
        w.put_floats(t.data.data(), t.data.size());
    }
    store_le<std::uint64_t>(w.buffer().data() + 16, w.size() + 4);
    w.put<std::uint32_t>(crc32_of(w.buffer()));
    return std::move(w.buffer());
}

/// The archive in `bytes`; `name` (the file path) appears in errors. Throws `format_error`.
inline Archive parse_archive(std::span<const std::byte> bytes, const std::string& name) {
    ByteReader r(bytes, name);
    const std::size_t n = bytes.size();
    if (n >= 8 && std::memcmp(bytes.data(), detail::archive_magic, 8) != 0) r.fail("not a typenet archive (bad magic)");
    if (n < detail::archive_preamble + 4)
        r.fail("truncated: " + std::to_string(n) + " bytes is shorter than the smallest archive");
    r.skip(8, "magic");
    const auto version = r.read<std::uint32_t>("format version");
    const auto flags = r.read<std::uint32_t>("flags");
    const auto size = r.read<std::uint64_t>("file size");
    if (size != n)
        r.fail(std::string(size > n ? "truncated" : "size mismatch") + ": the header says " + std::to_string(size) +
               " bytes, the file has " + std::to_string(n));
    const std::uint32_t stored = load_le<std::uint32_t>(bytes.data() + n - 4);
    if (crc32_of(bytes.first(n - 4)) != stored) r.fail("file is corrupt: checksum mismatch");
    if (version > archive_format_version)
        r.fail("written by a newer typenet (archive format version " + std::to_string(version) +
               "; this typenet reads versions 1 to " + std::to_string(archive_format_version) + "): upgrade typenet");
    if (version == 0) r.fail("invalid archive format version 0");
    if (flags != 0) r.fail("unknown flags " + std::to_string(flags) + " for format version 1");

    ByteReader body(bytes.first(n - 4), name);  // nothing may be read from the checksum
    body.seek(r.offset(), "metadata");
    const auto n_meta = body.read<std::uint32_t>("metadata count");
    const auto n_tensors = body.read<std::uint32_t>("tensor count");
    // Each entry takes at least 8 bytes: a cheap bound before anything is allocated.
    if (n_meta > body.remaining() / 8 || n_tensors > body.remaining() / 8)
        body.fail("truncated: " + std::to_string(n_meta) + " metadata entries and " + std::to_string(n_tensors) +
                  " tensors cannot fit in " + std::to_string(body.remaining()) + " bytes");
    Archive a;
    for (std::uint32_t k = 0; k < n_meta; ++k) {
        const std::string key = body.string(body.read<std::uint32_t>("metadata key length"), "metadata key");
        std::string value = body.string(body.read<std::uint32_t>("metadata value length"), "metadata value");
        if (key.empty()) body.fail("empty metadata key");
        if (!a.meta.emplace(key, std::move(value)).second) body.fail("metadata key '" + key + "' appears twice");
    }
    a.tensors.reserve(n_tensors);
    std::set<std::string> names;
    for (std::uint32_t k = 0; k < n_tensors; ++k) {
        NamedTensor t;
        t.name = body.string(body.read<std::uint32_t>("tensor name length"), "tensor name");
        const std::string which = t.name.empty() ? "tensor " + std::to_string(k) : "tensor '" + t.name + "'";
        if (t.name.empty()) body.fail(which + " has an empty name");
        if (!names.insert(t.name).second) body.fail(which + " appears twice");
        const auto rank = body.read<std::uint32_t>("tensor rank");
        if (rank > archive_max_rank)
            body.fail(which + " has rank " + std::to_string(rank) + " (at most " + std::to_string(archive_max_rank) +
                      ")");
        t.shape.resize(rank);
        for (auto& e : t.shape) {
            const auto v = body.read<std::uint64_t>("tensor extent");
            if (v > SIZE_MAX) body.fail(which + " has an extent too large for this machine");
            e = static_cast<std::size_t>(v);
        }
        const std::size_t aligned =
            (body.offset() + detail::archive_alignment - 1) / detail::archive_alignment * detail::archive_alignment;
        body.skip(aligned - body.offset(), "tensor padding");
        const auto count = checked_product(t.shape);
        const auto nbytes = count ? checked_mul(*count, sizeof(float)) : std::nullopt;
        if (!nbytes || *nbytes > body.remaining())
            body.fail("truncated: " + which + " of shape " + shape_to_string(t.shape) + " needs more than the " +
                      std::to_string(body.remaining()) + " bytes left");
        t.data.resize(*count);
        load_floats_le(body.take(*nbytes, "tensor data").data(), *count, t.data.data());
        a.tensors.push_back(std::move(t));
    }
    if (body.remaining() != 0) body.fail(std::to_string(body.remaining()) + " unexpected bytes after the last tensor");
    return a;
}

/// Write `a` to `path` atomically: the previous file is replaced only once the new one is
/// completely on disk, and left intact on any failure. Throws `io_error(path, reason)` when
/// writing fails, `shape_error` or `config_error` for an invalid archive (see `encode_archive`).
inline void write_archive(const std::filesystem::path& path, const Archive& a) {
    write_file_atomic(path, encode_archive(a));
}

/// Read and validate the archive at `path`. Throws `io_error` if it cannot be read,
/// `format_error` if it is not a valid archive of a version this typenet reads.
inline Archive read_archive(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_archive(bytes, path.string());
}

}  // namespace typenet::io
