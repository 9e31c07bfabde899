// Shared by the libFuzzer targets of tests/fuzz (built by scripts/fuzz.sh, not by CMake).
//
// Every target feeds the fuzzer's bytes to one reader of outside data and accepts only two
// outcomes: a result that satisfies the reader's documented invariants, or a typenet::error.
// Anything else (another exception, a crash, a sanitizer report, a hang, an OOM) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include <zlib.h>

namespace fuzz {

/// The fuzzer's input as the byte span typenet's parsers take.
inline std::span<const std::byte> as_bytes(const std::uint8_t* data, std::size_t size) noexcept {
    return {reinterpret_cast<const std::byte*>(data), size};
}

/// Abort (a finding) when a parse "succeeded" but returned something inconsistent.
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

/// Product of `extents`, or SIZE_MAX on overflow (for the invariant checks).
template <class Range>
std::size_t product(const Range& extents) noexcept {
    std::size_t n = 1;
    for (auto e : extents) {
        if (e < 0) return SIZE_MAX;
        if (__builtin_mul_overflow(n, static_cast<std::size_t>(e), &n)) return SIZE_MAX;
    }
    return n;
}

/// A copy of a typenet archive (io/archive.hpp) with its size field (bytes 16..23) and its
/// trailing CRC-32 set to what they must be, so that mutations reach the parser behind the
/// checksum instead of all failing it. Empty when `bytes` does not start with the magic.
inline std::vector<std::byte> with_fixed_archive_checksum(std::span<const std::byte> bytes) {
    static constexpr char magic[8] = {'T', 'Y', 'P', 'E', 'N', 'E', 'T', '\0'};
    if (bytes.size() < 28 || std::memcmp(bytes.data(), magic, 8) != 0) return {};
    std::vector<std::byte> b(bytes.begin(), bytes.end());
    const std::uint64_t n = b.size();
    for (int i = 0; i < 8; ++i) b[16 + static_cast<std::size_t>(i)] = static_cast<std::byte>(n >> (8 * i));
    const auto crc = static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size() - 4)));
    for (int i = 0; i < 4; ++i) b[b.size() - 4 + static_cast<std::size_t>(i)] = static_cast<std::byte>(crc >> (8 * i));
    return b;
}

}  // namespace fuzz
