/// @file report/font.hpp
/// The built-in bitmap font of the report pictures: ASCII 32-126 as 5x7 glyphs with
/// two rows of descenders, drawn for typenet, scaled by an integer factor.
///
/// Metrics at scale 1 (multiply everything by the scale):
///
/// | quantity          | pixels | meaning                                            |
/// |-------------------|--------|----------------------------------------------------|
/// | `glyph_width`     | 5      | ink columns of a glyph                             |
/// | `advance`         | 6      | distance from one character to the next            |
/// | `cap_height`      | 7      | rows from the top of the box to the baseline       |
/// | `line_height`     | 9      | height of the text box (capitals and descenders)   |
///
/// A text of n characters has the box `n * advance - 1` by `line_height` (no gap after
/// the last character); every pixel a text sets lies inside that box. Text is UTF-8:
/// each code point is one character, and those outside printable ASCII (and bytes
/// that are not valid UTF-8) are drawn as '?'; a tab is a space.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "typenet/core/error.hpp"

namespace typenet::report {

/// Metrics of the built-in font at scale 1 (see the table in this file's description).
namespace font {
inline constexpr int glyph_width = 5;   ///< ink columns of a glyph
inline constexpr int advance = 6;       ///< horizontal distance between characters
inline constexpr int cap_height = 7;    ///< top of the text box to the baseline
inline constexpr int line_height = 9;   ///< height of the text box, descenders included
inline constexpr int max_scale = 64;    ///< largest accepted scale factor
}  // namespace font

/// Width and height of a text box in pixels.
struct TextSize {
    int width = 0, height = 0;
};

namespace detail {

/// The glyphs of ASCII 32-127 (127 is blank), 16 per block of nine rows, each glyph
/// five columns wide followed by a space; '#' is ink. Rows 0-6 stand on the baseline,
/// rows 7-8 hold descenders.
inline constexpr const char* font_sheet[6 * 9] = {
    // ' '   '!'   '"'   '#'   '$'   '%'   '&'   "'"   '('   ')'   '*'   '+'   ','   '-'   '.'   '/'
    "..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... .....",
    "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#",
    "..... ..#.. .#.#. ##### #.#.. ...#. #.#.. ..#.. .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.",
    "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ##### ..... ..#..",
    "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. ..... ..... ..... .#...",
    "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. .##.. ..... .##.. #....",
    "..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... .##.. ..... .##.. .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..#.. ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....",
    // '0'   '1'   '2'   '3'   '4'   '5'   '6'   '7'   '8'   '9'   ':'   ';'   '<'   '='   '>'   '?'
    ".###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.",
    "#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# .##.. .##.. ..#.. ..... ..#.. #...#",
    "#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# .##.. .##.. .#... ##### ...#. ....#",
    "#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.",
    "##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# .##.. .##.. .#... ##### ...#. ..#..",
    "#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. .##.. .##.. ..#.. ..... ..#.. .....",
    ".###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... ..#.. ...#. ..... .#... ..#..",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // '@'   'A'   'B'   'C'   'D'   'E'   'F'   'G'   'H'   'I'   'J'   'K'   'L'   'M'   'N'   'O'
    ".###. .###. ####. .###. ###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
    "#...# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
    "....# #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
    ".##.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
    "#.#.# #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
    "#.#.# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
    ".###. #...# ####. .###. ###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // 'P'   'Q'   'R'   'S'   'T'   'U'   'V'   'W'   'X'   'Y'   'Z'   '['   '\\'  ']'   '^'   '_'
    "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....",
    "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....",
    "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....",
    "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....",
    "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... #####",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    // '`'   'a'   'b'   'c'   'd'   'e'   'f'   'g'   'h'   'i'   'j'   'k'   'l'   'm'   'n'   'o'
    ".#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....",
    "..#.. ..... #.... ..... ....# ..... .#..# ..... #.... ..... ..... #.... ..#.. ..... ..... .....",
    "..... .###. #.##. .###. .##.# .###. .#... .#### #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.",
    "..... ....# ##..# #.... #..## #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#",
    "..... .#### #...# #.... #...# ##### .#... #...# #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#",
    "..... #...# #...# #...# #...# #.... .#... #...# #...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...#",
    "..... .#### ####. .###. .#### .###. .#... .#### #...# .###. ...#. #..#. .###. #.#.# #...# .###.",
    "..... ..... ..... ..... ..... ..... ..... ....# ..... ..... #..#. ..... ..... ..... ..... .....",
    "..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....",
    // 'p'   'q'   'r'   's'   't'   'u'   'v'   'w'   'x'   'y'   'z'   '{'   '|'   '}'   '~'
    "..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...## ..#.. ##... ..... .....",
    "..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. ..... .....",
    "####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#... .....",
    "#...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.# .....",
    "#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. .....",
    "#...# #...# #.... ....# .#..# #..## .#.#. #.#.# .#.#. #...# .#... ..#.. ..#.. ..#.. ..... .....",
    "####. .#### #.... ####. ..##. .##.# ..#.. .#.#. #...# .#### ##### ...## ..#.. ##... ..... .....",
    "#.... ....# ..... ..... ..... ..... ..... ..... ..... ....# ..... ..... ..#.. ..... ..... .....",
    "#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..... ..... ..... .....",
};

/// One glyph as nine rows of five bits (bit 4 = leftmost column).
using GlyphRows = std::array<std::uint8_t, font::line_height>;

/// All glyphs of `font_sheet`, parsed at compile time; a malformed sheet does not compile.
inline constexpr std::array<GlyphRows, 96> font_glyphs = [] {
    std::array<GlyphRows, 96> out{};
    for (int code = 0; code < 96; ++code) {
        const int block = code / 16, col = (code % 16) * (font::glyph_width + 1);
        for (int row = 0; row < font::line_height; ++row) {
            const char* line = font_sheet[block * font::line_height + row];
            std::uint8_t bits = 0;
            for (int k = 0; k < font::glyph_width; ++k) {
                const char ch = line[col + k];
                if (ch != '#' && ch != '.') throw "font_sheet: only '#' and '.' may appear in a glyph";
                bits = static_cast<std::uint8_t>((bits << 1) | (ch == '#' ? 1 : 0));
            }
            const char after = line[col + font::glyph_width];
            if (code % 16 != 15 && after != ' ') throw "font_sheet: glyphs are separated by a space";
            if (code % 16 == 15 && after != '\0') throw "font_sheet: a row holds 16 glyphs";
            out[static_cast<std::size_t>(code)][static_cast<std::size_t>(row)] = bits;
        }
    }
    return out;
}();

/// The rows of the glyph of printable ASCII character `c` (anything else: '?').
inline const GlyphRows& glyph(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return font_glyphs[(u >= 32 && u <= 126) ? u - 32u : '?' - 32u];
}

/// The code point starting at byte `i` of `text` and its length in bytes, or
/// {-1, 1} when the bytes there are not well-formed UTF-8 (overlong forms, surrogates
/// and values above U+10FFFF are not well-formed).
struct CodePoint {
    long value;
    std::size_t length;
};
inline CodePoint next_code_point(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned b = byte(i);
    if (b < 0x80) return {static_cast<long>(b), 1};
    const std::size_t len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > text.size()) return {-1, 1};
    long cp = static_cast<long>(b & (0x7F >> len));
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return {-1, 1};
        cp = (cp << 6) | static_cast<long>(byte(i + k) & 0x3F);
    }
    const long min_for_len = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_for_len || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {-1, 1};
    return {cp, len};
}

/// `text` (UTF-8) as the characters the font draws: printable ASCII kept, a tab
/// becomes a space, every other code point, and every byte that is not part of a
/// well-formed UTF-8 sequence, becomes '?'.
inline std::string font_chars(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const CodePoint cp = next_code_point(text, i);
        out += cp.value == '\t' ? ' ' : (cp.value >= 32 && cp.value < 127) ? static_cast<char>(cp.value) : '?';
        i += cp.length;
    }
    return out;
}

/// Throws config_error unless 1 <= scale <= font::max_scale.
inline void check_scale(int scale) {
    if (scale < 1 || scale > font::max_scale)
        throw config_error("text scale must be between 1 and " + std::to_string(font::max_scale) + ", got " +
                           std::to_string(scale));
}

/// Width of `n` characters at `scale`.
constexpr int text_width(std::size_t n, int scale) noexcept {
    return n == 0 ? 0 : (static_cast<int>(n) * font::advance - 1) * scale;
}

/// `chars` (already font characters) shortened to fit `max_width` pixels at `scale`,
/// ending in ".." when cut; empty if not even ".." fits.
inline std::string fit_chars(std::string chars, int max_width, int scale) {
    if (text_width(chars.size(), scale) <= max_width) return chars;
    while (!chars.empty() && text_width(chars.size() + 2, scale) > max_width) chars.pop_back();
    if (text_width(chars.size() + 2, scale) > max_width) return {};
    return chars + "..";
}

}  // namespace detail

/// The box `text` (UTF-8) occupies when drawn at `scale`: `n * 6 - 1` by 9 pixels at
/// scale 1 for n characters (code points), times the scale; width 0 for "".
/// @throws config_error for a scale outside 1 .. font::max_scale.
inline TextSize measure_text(std::string_view text, int scale = 1) {
    detail::check_scale(scale);
    return {detail::text_width(detail::font_chars(text).size(), scale), font::line_height * scale};
}

}  // namespace typenet::report
