// Tests of io/zip.hpp and io/npz.hpp against archives NumPy and Python's zipfile wrote
// (tests/io/fixtures, made by tools/make_io_fixtures.py with the expected values).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/fixtures/expected.hpp"
#include "io/helpers.hpp"
#include "typenet/io/npz.hpp"

using namespace typenet;
using io_test::fixture_dir;

namespace {

void check_members(const std::map<std::string, io::NpyArray>& got, const std::vector<fixtures::Expected>& want) {
    CHECK(got.size() == want.size());
    for (const auto& ex : want) {
        CAPTURE(ex.name);
        REQUIRE(got.count(ex.name) == 1);
        const auto& a = got.at(ex.name);
        CHECK(a.dtype == ex.dtype);
        CHECK(a.shape == ex.shape);
        CHECK(a.data == ex.values);
    }
}

// The reason of the format_error that parsing `b` as an npz throws ("" if none).
std::string npz_error(const std::vector<std::byte>& b) {
    try {
        io::parse_npz(b, "a.npz");
    } catch (const format_error& e) {
        CHECK(e.path() == "a.npz");
        return e.reason();
    }
    return "";
}

// Offset and size of the data of entry `name` (found through its local header).
std::pair<std::size_t, std::size_t> data_span(const std::vector<std::byte>& b, const std::string& name) {
    std::string s(reinterpret_cast<const char*>(b.data()), b.size());
    const std::size_t at = s.find(name);  // the first occurrence is in the local header
    REQUIRE(at != std::string::npos);
    const std::size_t header = at - 30;
    auto u16 = [&](std::size_t p) {
        return std::size_t(std::to_integer<unsigned>(b[p]) | std::to_integer<unsigned>(b[p + 1]) << 8);
    };
    // Sizes come from the zip64 extra field np.savez writes (8-byte usize, then csize).
    const std::size_t extra = at + name.size();
    REQUIRE(u16(extra) == 1);
    std::size_t csize = 0;
    for (int k = 7; k >= 0; --k) csize = csize << 8 | std::to_integer<unsigned>(b[extra + 12 + k]);
    return {header + 30 + u16(header + 26) + u16(header + 28), csize};
}

}  // namespace

TEST_CASE("read_npz reads np.savez, np.savez_compressed and zip64 archives") {
    check_members(io::read_npz(fixture_dir / "stored.npz"), fixtures::npz_members);
    check_members(io::read_npz(fixture_dir / "compressed.npz"), fixtures::npz_members);
    check_members(io::read_npz(fixture_dir / "zip64.npz"), fixtures::zip64_members);
}

TEST_CASE("read_zip lists the entries in order with their raw contents") {
    const auto entries = io::read_zip(fixture_dir / "bad_not_npy.npz");
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].name == "a.npy");
    CHECK(entries[1].name == "readme.txt");
    CHECK(std::string(reinterpret_cast<const char*>(entries[1].data.data()), entries[1].data.size()) == "hello");
}

TEST_CASE("read_npz names the archive and the entry it refuses") {
    const auto p1 = fixture_dir / "bad_not_npy.npz";
    try {
        io::read_npz(p1);
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(e.path() == p1.string());
        CHECK(e.reason() == "entry 'readme.txt': is not a .npy file");
    }
    const auto p2 = fixture_dir / "bad_pickle.npz";
    try {
        io::read_npz(p2);
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(e.path() == p2.string());
        CHECK(e.reason().find("entry 'obj.npy': object array") == 0);
    }
    CHECK_THROWS_AS(io::read_npz(fixture_dir / "f4_v1.npy"), format_error);  // not a zip
    CHECK_THROWS_AS(io::read_npz(fixture_dir / "missing.npz"), io_error);
}

TEST_CASE("every truncation of an npz is a format_error") {
    for (const char* file : {"stored.npz", "compressed.npz", "zip64.npz"}) {
        CAPTURE(file);
        const auto whole = io::read_file(fixture_dir / file);
        for (std::size_t n = 0; n < whole.size(); ++n) {
            CAPTURE(n);
            CHECK(!npz_error(std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)))
                       .empty());
        }
    }
}

TEST_CASE("a flipped byte anywhere in an npz gives a format_error or the unchanged arrays, never garbage") {
    for (const char* file : {"stored.npz", "compressed.npz", "zip64.npz"}) {
        CAPTURE(file);
        const auto whole = io::read_file(fixture_dir / file);
        const auto good = io::parse_npz(whole, "a.npz");
        int errors = 0;
        for (std::size_t i = 0; i < whole.size(); ++i) {
            CAPTURE(i);
            auto b = whole;
            b[i] ^= std::byte{0xFF};
            try {
                const auto got = io::parse_npz(b, "a.npz");
                // The flip hit a field the reader need not trust (time stamp, attributes, local copies).
                CHECK(got.size() == good.size());
                for (const auto& [k, v] : good) {
                    REQUIRE(got.count(k) == 1);
                    CHECK(got.at(k).data == v.data);
                    CHECK(got.at(k).shape == v.shape);
                }
            } catch (const format_error&) {
                ++errors;
            }
        }
        CHECK(errors > static_cast<int>(whole.size()) / 2);
    }
}

TEST_CASE("corrupt entry data is reported with the entry's name") {
    for (const char* file : {"stored.npz", "compressed.npz"}) {
        CAPTURE(file);
        const auto whole = io::read_file(fixture_dir / file);
        const auto [start, size] = data_span(whole, "counts.npy");
        REQUIRE(size > 0);
        for (std::size_t i = start; i < start + size; ++i) {
            CAPTURE(i);
            auto b = whole;
            b[i] ^= std::byte{0x10};
            const std::string why = npz_error(b);
            CHECK(why.find("entry 'counts.npy': ") == 0);
        }
    }
    // A stored entry's data flip is caught by the CRC.
    auto b = io::read_file(fixture_dir / "stored.npz");
    const auto [start, size] = data_span(b, "weights.npy");
    b[start + size - 1] ^= std::byte{1};
    CHECK(npz_error(b).find("entry 'weights.npy': CRC-32 mismatch") == 0);
}
