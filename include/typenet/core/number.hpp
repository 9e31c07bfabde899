/// @file core/number.hpp
/// Strict parsing of a whole number from text (command lines, file metadata).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace typenet {

/// The value of `text` when it is a whole number written only with the digits 0-9 and fits in
/// 64 bits; otherwise nothing. Stricter than `strtoull` / `std::stoull`, which skip leading
/// blanks, take a sign ("-1" is 2^64 - 1) and ignore what follows the digits ("5x" is 5).
inline std::optional<std::uint64_t> parse_whole_number(std::string_view text) noexcept {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // too large
    return value;
}

}  // namespace typenet
