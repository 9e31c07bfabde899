/// @file io/zip.hpp
/// Reading zip archives (the container of NumPy's `.npz`).
///
/// Supports what `zipfile`-based writers such as `np.savez` and `np.savez_compressed`
/// produce: stored (method 0) and deflated (method 8, raw deflate through zlib) entries,
/// zip64 extra fields and the zip64 end of central directory. Every entry's CRC-32 is
/// checked. Multi-disk, encrypted and otherwise compressed archives are refused. All errors
/// are `format_error(archive path, "entry 'NAME': reason")` (or without the entry when the
/// archive itself is damaged); a corrupt or truncated archive never causes an out-of-bounds
/// read, and the declared sizes never make it allocate more than the data really inflates to.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/io/bytes.hpp"
#include "typenet/io/file.hpp"

namespace typenet::io {

/// One file of a zip archive, decompressed.
struct ZipEntry {
    /// Its path inside the archive, e.g. "weights.npy".
    std::string name;
    /// Its decompressed contents (CRC-checked).
    std::vector<std::byte> data;
};

namespace detail {

/// Inflate the raw deflate stream `in` into exactly `size` bytes; throws `format_error` via `r`.
inline std::vector<std::byte> inflate_raw(std::span<const std::byte> in, std::uint64_t size, const ByteReader& r) {
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) r.fail("zlib cannot start inflating");
    struct End {
        z_stream* z;
        ~End() { inflateEnd(z); }
    } end{&zs};
    // Room for one byte more than declared, so that too much output is detected; grown as the
    // data really inflates, so a lying size cannot make us allocate a huge buffer up front.
    const std::uint64_t cap = size + 1;
    std::vector<std::byte> out(static_cast<std::size_t>(std::min<std::uint64_t>(cap, in.size() * 4ull + 65536)));
    std::size_t in_used = 0, out_used = 0;
    for (;;) {
        if (out_used == out.size())
            out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, out.size() * 2ull)));
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + in_used));
        zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size() - in_used, UINT_MAX));
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_used);
        zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - out_used, UINT_MAX));
        const uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
        const int ret = inflate(&zs, Z_NO_FLUSH);
        in_used += avail_in - zs.avail_in;
        out_used += avail_out - zs.avail_out;
        if (out_used > size)
            r.fail("inflates to more than the " + std::to_string(size) + " bytes the directory declares");
        if (ret == Z_STREAM_END) break;
        if (ret == Z_OK) continue;
        if (ret == Z_BUF_ERROR && in_used == in.size()) r.fail("compressed data ends early (truncated)");
        r.fail(std::string("corrupt compressed data (zlib: ") + (zs.msg ? zs.msg : "error " + std::to_string(ret)) +
               ")");
    }
    if (out_used != size)
        r.fail("inflates to " + std::to_string(out_used) + " bytes, the directory declares " + std::to_string(size));
    out.resize(out_used);
    return out;
}

/// Locate the central directory: (entry count, size, offset), zip64 aware.
struct CentralDirectory {
    std::uint64_t entries = 0, size = 0, offset = 0;
};

inline CentralDirectory find_central_directory(ByteReader& r) {
    const std::size_t n = r.bytes().size();
    constexpr std::size_t eocd_size = 22;
    if (n < eocd_size) r.fail("not a zip archive, or truncated: " + std::to_string(n) + " bytes is too short");
    // The end of central directory record is the last thing in the file, before a comment.
    std::size_t eocd = SIZE_MAX;
    const std::size_t lowest = n > eocd_size + 65535 ? n - eocd_size - 65535 : 0;
    for (std::size_t p = n - eocd_size + 1; p-- > lowest;) {
        const std::byte* b = r.bytes().data() + p;
        if (load_le<std::uint32_t>(b) == 0x06054b50u && load_le<std::uint16_t>(b + 20) == n - p - eocd_size) {
            eocd = p;
            break;
        }
    }
    if (eocd == SIZE_MAX) r.fail("not a zip archive, or truncated: no end of central directory record");
    r.seek(eocd + 4, "end of central directory");
    const auto disk = r.read<std::uint16_t>("disk number");
    const auto cd_disk = r.read<std::uint16_t>("central directory disk");
    const auto entries_here = r.read<std::uint16_t>("entry count");
    CentralDirectory cd;
    cd.entries = r.read<std::uint16_t>("entry count");
    cd.size = r.read<std::uint32_t>("central directory size");
    cd.offset = r.read<std::uint32_t>("central directory offset");
    if (disk != 0 || cd_disk != 0 || entries_here != cd.entries) r.fail("multi-disk zip archives are not supported");
    if (cd.entries == 0xFFFF || cd.size == 0xFFFFFFFF || cd.offset == 0xFFFFFFFF) {
        if (eocd < 20) r.fail("zip64 end of central directory locator missing");
        r.seek(eocd - 20, "zip64 locator");
        if (r.read<std::uint32_t>("zip64 locator signature") != 0x07064b50u)
            r.fail("zip64 end of central directory locator missing");
        r.skip(4, "zip64 locator disk");
        const auto rec = r.read<std::uint64_t>("zip64 record offset");
        if (rec > eocd - 20)
            r.fail("zip64 end of central directory offset " + std::to_string(rec) + " is out of range");
        r.seek(static_cast<std::size_t>(rec), "zip64 end of central directory");
        if (r.read<std::uint32_t>("zip64 record signature") != 0x06064b50u)
            r.fail("bad zip64 end of central directory signature");
        r.skip(8 + 2 + 2 + 4 + 4, "zip64 record header");
        const auto here = r.read<std::uint64_t>("zip64 entry count");
        cd.entries = r.read<std::uint64_t>("zip64 entry count");
        cd.size = r.read<std::uint64_t>("zip64 central directory size");
        cd.offset = r.read<std::uint64_t>("zip64 central directory offset");
        if (here != cd.entries) r.fail("multi-disk zip archives are not supported");
    }
    if (cd.offset > n || cd.size > n - cd.offset)
        r.fail("central directory (offset " + std::to_string(cd.offset) + ", " + std::to_string(cd.size) +
               " bytes) lies outside the file (" + std::to_string(n) + " bytes): truncated or corrupt");
    constexpr std::uint64_t header_size = 46;
    if (cd.entries > cd.size / header_size)
        r.fail(std::to_string(cd.entries) + " entries cannot fit in a central directory of " + std::to_string(cd.size) +
               " bytes");
    return cd;
}

}  // namespace detail

/// Every entry of the zip archive in `bytes`, in directory order, decompressed and CRC-checked.
/// `name` (the archive's path) appears in errors. Throws `format_error`.
inline std::vector<ZipEntry> parse_zip(std::span<const std::byte> bytes, const std::string& name) {
    ByteReader r(bytes, name);
    const detail::CentralDirectory cd = detail::find_central_directory(r);
    std::vector<ZipEntry> out;
    std::set<std::string> seen;
    std::size_t next = static_cast<std::size_t>(cd.offset);
    for (std::uint64_t k = 0; k < cd.entries; ++k) {
        ZipEntry e;
        try {
            r.seek(next, "central directory entry");
            if (r.read<std::uint32_t>("central directory signature") != 0x02014b50u)
                r.fail("central directory entry " + std::to_string(k) + " has a bad signature");
            r.skip(4, "versions");
            const auto flags = r.read<std::uint16_t>("flags");
            const auto method = r.read<std::uint16_t>("compression method");
            r.skip(4, "modification time");
            const auto crc = r.read<std::uint32_t>("CRC-32");
            std::uint64_t csize = r.read<std::uint32_t>("compressed size");
            std::uint64_t usize = r.read<std::uint32_t>("size");
            const auto name_len = r.read<std::uint16_t>("name length");
            const auto extra_len = r.read<std::uint16_t>("extra field length");
            const auto comment_len = r.read<std::uint16_t>("comment length");
            const auto disk = r.read<std::uint16_t>("disk number");
            r.skip(6, "attributes");
            std::uint64_t local = r.read<std::uint32_t>("local header offset");
            e.name = r.string(name_len, "entry name");
            ByteReader extra(r.take(extra_len, "extra field"), name);
            r.skip(comment_len, "entry comment");
            next = r.offset();
            // zip64 extra field: 64-bit values for the fields that hold 0xFFFFFFFF, in this order.
            while (extra.remaining() >= 4) {
                const auto id = extra.read<std::uint16_t>("extra field id");
                const auto len = extra.read<std::uint16_t>("extra field length");
                ByteReader field(extra.take(len, "extra field"), name);
                if (id != 0x0001) continue;
                if (usize == 0xFFFFFFFF) usize = field.read<std::uint64_t>("zip64 size");
                if (csize == 0xFFFFFFFF) csize = field.read<std::uint64_t>("zip64 compressed size");
                if (local == 0xFFFFFFFF) local = field.read<std::uint64_t>("zip64 local header offset");
            }
            if (disk != 0 && disk != 0xFFFF) r.fail("multi-disk zip archives are not supported");
            if (flags & 0x1) r.fail("encrypted entries are not supported");
            if (method != 0 && method != 8)
                r.fail("compression method " + std::to_string(method) + " is not supported (only stored and deflate)");
            if (method == 0 && csize != usize)
                r.fail("stored entry has compressed size " + std::to_string(csize) + " but size " +
                       std::to_string(usize));
            if (!seen.insert(e.name).second) r.fail("appears twice in the archive");

            // The local header repeats the name and has its own extra field; the data follows.
            if (local > bytes.size()) r.fail("local header offset " + std::to_string(local) + " is past the end");
            r.seek(static_cast<std::size_t>(local), "local header");
            if (r.read<std::uint32_t>("local header signature") != 0x04034b50u) r.fail("bad local header signature");
            r.skip(22, "local header");
            const auto local_name_len = r.read<std::uint16_t>("local name length");
            const auto local_extra_len = r.read<std::uint16_t>("local extra field length");
            if (r.string(local_name_len, "local name") != e.name) r.fail("local header names a different file");
            r.skip(local_extra_len, "local extra field");
            if (csize > r.remaining())
                r.fail("truncated: " + std::to_string(csize) + " bytes of data declared, " +
                       std::to_string(r.remaining()) + " left in the file");
            const auto raw = r.take(static_cast<std::size_t>(csize), "data");
            if (method == 0)
                e.data.assign(raw.begin(), raw.end());
            else
                e.data = detail::inflate_raw(raw, usize, r);
            const std::uint32_t actual = crc32_of(e.data);
            if (actual != crc)
                r.fail("CRC-32 mismatch (stored " + std::to_string(crc) + ", computed " + std::to_string(actual) +
                       "): corrupt data");
        } catch (const format_error& err) {
            const std::string which = e.name.empty() ? "entry " + std::to_string(k) : "entry '" + e.name + "'";
            throw format_error(name, which + ": " + err.reason());
        }
        out.push_back(std::move(e));
    }
    return out;
}

/// Every entry of the zip archive at `path` (see `parse_zip`). Throws `io_error` if the file
/// cannot be read, `format_error` if it is not a valid archive.
inline std::vector<ZipEntry> read_zip(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_zip(bytes, path.string());
}

}  // namespace typenet::io
