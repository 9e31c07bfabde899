// Tests of report/font.hpp: every printable character has a glyph, the metrics, and
// the mapping of UTF-8 text to the characters the font draws.
#include <doctest/doctest.h>

#include <string>

#include "typenet/report/font.hpp"

using namespace typenet;
using namespace typenet::report;

TEST_CASE("every printable ASCII character but the space has ink, within 5 columns and 9 rows") {
    for (int c = 33; c < 127; ++c) {
        CAPTURE(static_cast<char>(c));
        const auto& rows = report::detail::glyph(static_cast<char>(c));
        int ink = 0;
        for (auto r : rows) {
            CHECK(r < 32);  // five columns
            ink += r != 0;
        }
        CHECK(ink > 0);
    }
    for (auto r : report::detail::glyph(' ')) CHECK(r == 0);
    // Descenders only where a letter has one.
    for (char c : std::string("gjpqy,;_")) CHECK((report::detail::glyph(c)[7] | report::detail::glyph(c)[8]) != 0);
    for (char c : std::string("ABCabcxz019.")) CHECK((report::detail::glyph(c)[7] | report::detail::glyph(c)[8]) == 0);
}

TEST_CASE("distinct characters have distinct glyphs") {
    for (int a = 32; a < 127; ++a)
        for (int b = a + 1; b < 127; ++b) {
            CAPTURE(static_cast<char>(a));
            CAPTURE(static_cast<char>(b));
            CHECK(report::detail::glyph(static_cast<char>(a)) != report::detail::glyph(static_cast<char>(b)));
        }
}

TEST_CASE("font_chars: printable ASCII kept, tab a space, other code points and broken bytes '?'") {
    using report::detail::font_chars;
    CHECK(font_chars("rock 0.93") == "rock 0.93");
    CHECK(font_chars("a\tb") == "a b");
    CHECK(font_chars("a\nb\x7f") == "a?b?");
    CHECK(font_chars("na\xC3\xAFve") == "na?ve");               // 2-byte sequence
    CHECK(font_chars("\xE2\x82\xAC 5") == "? 5");                // 3-byte sequence
    CHECK(font_chars("\xF0\x9F\x98\x80!") == "?!");              // 4-byte sequence
    CHECK(font_chars("\xC0\xAF") == "??");                       // overlong '/': two bad bytes
    CHECK(font_chars("\xED\xA0\x80") == "???");                  // a UTF-16 surrogate is not UTF-8
    CHECK(font_chars("\xE2\x82") == "??");                       // truncated sequence
    CHECK(font_chars("\x80z") == "?z");                          // stray continuation byte
}

TEST_CASE("measure_text: n characters are n*6-1 by 9 pixels, times the scale") {
    CHECK(measure_text("a").width == 5);
    CHECK(measure_text("hello").width == 29);
    CHECK(measure_text("hello", 3).width == 87);
    CHECK(measure_text("hello", 3).height == 27);
    CHECK(measure_text("", 2).width == 0);
    CHECK(measure_text("", 2).height == 18);
    CHECK_THROWS_AS(measure_text("x", 0), config_error);
}

TEST_CASE("fit_chars cuts long text to the width with '..'") {
    using report::detail::fit_chars;
    CHECK(fit_chars("scissors", 47, 1) == "scissors");  // 8 * 6 - 1 = 47 fits
    CHECK(fit_chars("scissors", 46, 1) == "sciss..");   // 7 characters: 41 pixels
    CHECK(fit_chars("scissors", 10, 1) == "");          // not even ".." (11 pixels) fits
    CHECK(fit_chars("scissors", 11, 1) == "..");
}
