// Tests of io/labels.hpp.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "io/helpers.hpp"
#include "typenet/io/labels.hpp"

using namespace typenet;
using Labels = std::vector<std::string>;

TEST_CASE("parse_labels: LF, CRLF, missing final newline, BOM, trailing blank lines") {
    CHECK(io::parse_labels("background\ntench\ngoldfish\n", "f") == Labels{"background", "tench", "goldfish"});
    CHECK(io::parse_labels("background\r\ntench\r\ngoldfish\r\n", "f") == Labels{"background", "tench", "goldfish"});
    CHECK(io::parse_labels("background\ntench\ngoldfish", "f") == Labels{"background", "tench", "goldfish"});
    CHECK(io::parse_labels("a\r\nb", "f") == Labels{"a", "b"});
    CHECK(io::parse_labels("\xEF\xBB\xBFrock\npaper\nscissors\n\n\r\n", "f") == Labels{"rock", "paper", "scissors"});
    CHECK(io::parse_labels("only one", "f") == Labels{"only one"});
    // Spaces and commas are part of the label.
    CHECK(io::parse_labels(" tiger cat, tabby \n", "f") == Labels{" tiger cat, tabby "});
}

TEST_CASE("parse_labels: empty files, blank lines between labels and binary data are format_errors") {
    for (const char* bad : {"", "\n", "\r\n\r\n", "\xEF\xBB\xBF"}) {
        CAPTURE(bad);
        CHECK_THROWS_WITH_AS(io::parse_labels(bad, "f.txt"), "f.txt: no labels: the file is empty", format_error);
    }
    CHECK_THROWS_WITH_AS(io::parse_labels("a\nb\n\nc\n", "f.txt"),
                         "f.txt: line 3 is blank (a blank line between labels would shift the class indices)",
                         format_error);
    CHECK_THROWS_AS(io::parse_labels(std::string_view("a\0b\n", 4), "f.txt"), format_error);
}

TEST_CASE("read_labels: files, and an io_error for a missing file") {
    io_test::TempDir dir("labels");
    {
        std::ofstream f(dir / "l.txt", std::ios::binary);
        f << "cat\r\ndog";
    }
    CHECK(io::read_labels(dir / "l.txt") == Labels{"cat", "dog"});
    try {
        io::read_labels(dir / "missing.txt");
        FAIL("no exception");
    } catch (const format_error&) {
        FAIL("format_error for a missing file");
    } catch (const io_error& e) {
        CHECK(e.path() == (dir / "missing.txt").string());
    }
    CHECK_THROWS_AS(io::read_labels(dir.path), io_error);  // a directory
}
