// A minimal zip writer for the tests (stored entries, CRC-32 from zlib), written from the
// format's description (PKWARE APPNOTE sections 4.3.7, 4.3.12, 4.3.16): the archives
// the download tests serve. Independent of io/zip.hpp, which only reads.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace io_test {

/// Write `entries` (name, contents) as a zip archive of stored entries to `path`.
inline void write_stored_zip(const std::filesystem::path& path,
                             const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string out, central;
    auto u16 = [](std::string& s, std::uint32_t v) {
        s += static_cast<char>(v & 0xff);
        s += static_cast<char>((v >> 8) & 0xff);
    };
    auto u32 = [&](std::string& s, std::uint32_t v) {
        u16(s, v & 0xffff);
        u16(s, v >> 16);
    };
    for (const auto& [name, data] : entries) {
        const auto crc = static_cast<std::uint32_t>(
            crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
        const auto offset = static_cast<std::uint32_t>(out.size());
        const auto size = static_cast<std::uint32_t>(data.size());
        const auto name_len = static_cast<std::uint32_t>(name.size());
        // local file header
        u32(out, 0x04034b50);
        u16(out, 20), u16(out, 0), u16(out, 0), u16(out, 0), u16(out, 0x21);  // version, flags, stored, time, date
        u32(out, crc), u32(out, size), u32(out, size);
        u16(out, name_len), u16(out, 0);
        out += name;
        out += data;
        // central directory record
        u32(central, 0x02014b50);
        u16(central, 20), u16(central, 20), u16(central, 0), u16(central, 0), u16(central, 0), u16(central, 0x21);
        u32(central, crc), u32(central, size), u32(central, size);
        u16(central, name_len), u16(central, 0), u16(central, 0), u16(central, 0), u16(central, 0);
        u32(central, 0), u32(central, offset);
        central += name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    u32(out, 0x06054b50);
    u16(out, 0), u16(out, 0);
    u16(out, static_cast<std::uint32_t>(entries.size())), u16(out, static_cast<std::uint32_t>(entries.size()));
    u32(out, static_cast<std::uint32_t>(central.size())), u32(out, cd_offset);
    u16(out, 0);
    std::ofstream(path, std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
}

}  // namespace io_test
