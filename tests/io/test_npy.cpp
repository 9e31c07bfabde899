// Tests of io/npy.hpp against files NumPy wrote (tests/io/fixtures, made by
// tools/make_io_fixtures.py, which also computed the expected values in expected.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/fixtures/expected.hpp"
#include "io/helpers.hpp"
#include "typenet/core/random.hpp"
#include "typenet/io/npy.hpp"

namespace fs = std::filesystem;
using namespace typenet;

namespace {

using io_test::bytes_of;
using io_test::fixture_dir;

// A version 1.0 .npy file with the given header text (padded to 64) and data bytes.
std::vector<std::byte> npy_with_header(std::string header, std::size_t data_bytes) {
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string s = "\x93NUMPY";
    s += '\x01';
    s += '\x00';
    s += static_cast<char>(header.size() & 0xff);
    s += static_cast<char>(header.size() >> 8);
    s += header;
    s.append(data_bytes, '\0');
    return bytes_of(s);
}

// The reason of the format_error that parsing `b` throws ("" if it does not throw one).
std::string parse_error(const std::vector<std::byte>& b, const std::string& name = "x.npy") {
    try {
        io::parse_npy(b, name);
    } catch (const format_error& e) {
        CHECK(e.path() == name);
        return e.reason();
    }
    return "";
}

}  // namespace

TEST_CASE("read_npy reads every dtype, version and order NumPy wrote") {
    for (const auto& ex : fixtures::npy_files) {
        CAPTURE(ex.name);
        const io::NpyArray a = io::read_npy(fixture_dir / ex.name);
        CHECK(a.dtype == ex.dtype);
        CHECK(a.shape == ex.shape);
        REQUIRE(a.data.size() == ex.values.size());
        for (std::size_t i = 0; i < a.data.size(); ++i) {
            CAPTURE(i);
            CHECK(a.data[i] == ex.values[i]);
            CHECK(std::signbit(a.data[i]) == std::signbit(ex.values[i]));
        }
    }
}

TEST_CASE("read_npy refuses pickles, big-endian, float16 and structured dtypes, saying what it found") {
    struct Bad {
        const char* file;
        const char* reason;
    };
    for (const Bad& bad :
         {Bad{"bad_pickle.npy", "object array (dtype '|O'"}, Bad{"bad_bigendian.npy", "big-endian dtype '>f4'"},
          Bad{"bad_float16.npy", "unsupported dtype '<f2'"}, Bad{"bad_structured.npy", "structured dtype"}}) {
        CAPTURE(bad.file);
        const fs::path p = fixture_dir / bad.file;
        try {
            io::read_npy(p);
            FAIL("no exception");
        } catch (const format_error& e) {
            CHECK(e.path() == p.string());
            CHECK(e.reason().find(bad.reason) != std::string::npos);
        }
    }
}

TEST_CASE("read_npy: a missing file is an io_error, not a format_error") {
    const fs::path p = fixture_dir / "does_not_exist.npy";
    try {
        io::read_npy(p);
        FAIL("no exception");
    } catch (const format_error&) {
        FAIL("format_error for a missing file");
    } catch (const io_error& e) {
        CHECK(e.path() == p.string());
        CHECK(e.reason().find("No such file") != std::string::npos);
    }
}

TEST_CASE("parse_npy: every truncation of a valid file is a format_error") {
    const auto whole = io::read_file(fixture_dir / "f4_v1.npy");
    for (std::size_t n = 0; n < whole.size(); ++n) {
        CAPTURE(n);
        const std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK(!parse_error(cut).empty());
    }
    // Truncated inside the data: the reason says how much was promised.
    const std::vector<std::byte> cut(whole.begin(), whole.end() - 1);
    CHECK(parse_error(cut).find("truncated: shape (2, 3, 4) of <f4 needs 96 bytes of data, the file has 95") == 0);
}

TEST_CASE("parse_npy: lying headers, absurd shapes and bad syntax are format_errors") {
    const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(parse_error(npy_with_header(ok, 24)).empty());
    // Header promises more than the file holds.
    CHECK(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }", 24))
              .find("truncated") != std::string::npos);
    // Extents whose product overflows 64 bits.
    CHECK(
        parse_error(npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8))
            .find("overflows") != std::string::npos);
    CHECK(
        parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8))
            .find("overflows") != std::string::npos);
    // Extra bytes after the data.
    CHECK(parse_error(npy_with_header(ok, 25)).find("trailing") != std::string::npos);
    // Syntax.
    CHECK(parse_error(npy_with_header("{'descr': '<f4', 'shape': (2, 3), }", 24)).find("fortran_order") !=
          std::string::npos);
    CHECK(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24))
              .find("unexpected key 'x'") != std::string::npos);
    CHECK(!parse_error(npy_with_header("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}", 24)).empty());
    CHECK(!parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3)}", 24)).empty());
    CHECK(!parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", 24)).empty());
    CHECK(!parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24)).empty());
    CHECK(!parse_error(npy_with_header("", 0)).empty());
    // Python 2 long suffixes are accepted.
    CHECK(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 24)).empty());
    // Magic and version.
    auto b = npy_with_header(ok, 24);
    b[1] = std::byte{'n'};
    CHECK(parse_error(b).find("not a .npy file") != std::string::npos);
    b = npy_with_header(ok, 24);
    b[6] = std::byte{4};
    CHECK(parse_error(b).find("unsupported .npy format version 4.0") != std::string::npos);
}

TEST_CASE("parse_npy survives random corruption of the header") {
    const auto whole = io::read_file(fixture_dir / "f8_fortran.npy");
    Rng rng(1);
    for (int trial = 0; trial < 2000; ++trial) {
        auto b = whole;
        const int flips = 1 + static_cast<int>(rng.below(3));
        for (int k = 0; k < flips; ++k) b[rng.below(128)] = static_cast<std::byte>(rng.below(256));
        try {
            io::parse_npy(b, "x.npy");
        } catch (const format_error&) {
        }  // any other exception fails the test
    }
}

TEST_CASE("encode_npy writes the same bytes as NumPy's np.save") {
    for (const char* name : {"f4_v1.npy", "scalar.npy", "empty.npy", "vector.npy"}) {
        CAPTURE(name);
        const auto numpy_bytes = io::read_file(fixture_dir / name);
        const auto a = io::parse_npy(numpy_bytes, name);
        CHECK(io::encode_npy(a.shape, a.data) == numpy_bytes);
    }
}

TEST_CASE("write_npy round trip and size check") {
    io_test::TempDir dir("npy");
    const std::vector<std::size_t> shape{2, 1, 3};
    const std::vector<float> data{1.f, -2.f, 3.5f, 1e-30f, 0.f, 42.f};
    io::write_npy(dir / "a.npy", shape, data);
    const auto a = io::read_npy(dir / "a.npy");
    CHECK(a.shape == shape);
    CHECK(a.data == data);
    CHECK(a.dtype == "<f4");
    CHECK_THROWS_AS(io::write_npy(dir / "b.npy", shape, std::span<const float>(data).first(5)), shape_error);
    CHECK(!fs::exists(dir / "b.npy"));
    CHECK_THROWS_AS(io::write_npy(dir.path / "no" / "such" / "dir.npy", shape, data), io_error);
}
