#include <doctest/doctest.h>

#include "typenet/typenet.hpp"

using namespace typenet;

TEST_CASE("parse_whole_number takes digits only, and only what fits in 64 bits") {
    CHECK(parse_whole_number("0") == 0u);
    CHECK(parse_whole_number("42") == 42u);
    CHECK(parse_whole_number("007") == 7u);
    CHECK(parse_whole_number("18446744073709551615") == 18446744073709551615ull);  // 2^64 - 1
    // What strtoull would accept or misread.
    for (const char* bad : {"", "-1", "+5", " 5", "5 ", "5x", "x5", "1.5", "1e3", "0x10",
                            "18446744073709551616", "99999999999999999999999"})
        CHECK_MESSAGE(!parse_whole_number(bad), "accepted \"" << bad << "\"");
}
