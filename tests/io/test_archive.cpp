// Tests of io/archive.hpp: round trip, layout, truncation, corruption, versions, atomic writes.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/helpers.hpp"
#include "typenet/core/random.hpp"
#include "typenet/io/archive.hpp"

namespace fs = std::filesystem;
using namespace typenet;

namespace {

io::Archive sample() {
    io::Archive a;
    a.meta["signature"] = "Sequential<MobileNetV2<>, Dropout<0.5>, Dense<3, Softmax>>";
    a.meta["class_names"] = "paper\nrock\nscissors";
    a.meta["epochs"] = "10";
    a.meta["note"] = "Größe \xF0\x9F\x98\x80";  // UTF-8
    a.meta["empty"] = "";
    a.tensors.push_back({"dense/kernel", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12.5f}});
    a.tensors.push_back({"dense/bias", {3}, {0.25f, -0.0f, 1e-38f}});
    a.tensors.push_back({"scalar", {}, {3.14159f}});
    a.tensors.push_back({"nothing", {0, 5}, {}});
    return a;
}

void check_equal(const io::Archive& x, const io::Archive& y) {
    CHECK(x.meta == y.meta);
    REQUIRE(x.tensors.size() == y.tensors.size());
    for (std::size_t i = 0; i < x.tensors.size(); ++i) {
        CHECK(x.tensors[i].name == y.tensors[i].name);
        CHECK(x.tensors[i].shape == y.tensors[i].shape);
        REQUIRE(x.tensors[i].data.size() == y.tensors[i].data.size());
        // Bitwise, so that -0.0 and denormals must survive too.
        if (!x.tensors[i].data.empty())
            CHECK(std::memcmp(x.tensors[i].data.data(), y.tensors[i].data.data(), x.tensors[i].data.size() * 4) == 0);
    }
}

std::uint32_t get_u32(const std::vector<std::byte>& b, std::size_t at) {
    std::uint32_t v = 0;
    for (int k = 3; k >= 0; --k) v = v << 8 | std::to_integer<std::uint32_t>(b[at + k]);
    return v;
}

void set_u32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) b[at + k] = static_cast<std::byte>(v >> (8 * k));
}

// Recompute the trailing checksum with zlib directly (as a writer with a bug would have).
void reseal(std::vector<std::byte>& b) {
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size() - 4));
    set_u32(b, b.size() - 4, static_cast<std::uint32_t>(crc));
}

std::string archive_error(const std::vector<std::byte>& b) {
    try {
        io::parse_archive(b, "m.tnet");
    } catch (const format_error& e) {
        CHECK(e.path() == "m.tnet");
        return e.reason();
    }
    return "";
}

}  // namespace

TEST_CASE("archive round trip through a file") {
    io_test::TempDir dir("archive");
    const auto a = sample();
    io::write_archive(dir / "m.tnet", a);
    const auto b = io::read_archive(dir / "m.tnet");
    check_equal(a, b);
    REQUIRE(b.find("dense/bias") != nullptr);
    CHECK(b.find("dense/bias")->shape == std::vector<std::size_t>{3});
    CHECK(b.find("absent") == nullptr);
    // An empty archive is valid too.
    io::write_archive(dir / "e.tnet", io::Archive{});
    check_equal(io::read_archive(dir / "e.tnet"), io::Archive{});
}

TEST_CASE("archive layout: magic, version, size, 64-byte aligned data, zlib CRC-32 at the end") {
    const auto b = io::encode_archive(sample());
    CHECK(std::memcmp(b.data(), "TYPENET\0", 8) == 0);
    CHECK(get_u32(b, 8) == 1);
    CHECK(get_u32(b, 12) == 0);
    CHECK(get_u32(b, 16) == b.size());
    CHECK(get_u32(b, 20) == 0);
    CHECK(get_u32(b, 24) == 5);  // metadata entries
    CHECK(get_u32(b, 28) == 4);  // tensors
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size() - 4));
    CHECK(get_u32(b, b.size() - 4) == crc);
    // The kernel's values 1, 2, 3 (0x3f800000, 0x40000000, 0x40400000) start on a 64-byte boundary.
    const unsigned char kernel[] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40};
    const std::string s(reinterpret_cast<const char*>(b.data()), b.size());
    const std::size_t at = s.find(std::string(reinterpret_cast<const char*>(kernel), sizeof kernel));
    REQUIRE(at != std::string::npos);
    CHECK(at % 64 == 0);
}

TEST_CASE("every truncation of an archive is a format_error") {
    const auto whole = io::encode_archive(sample());
    for (std::size_t n = 0; n < whole.size(); ++n) {
        CAPTURE(n);
        CHECK(!archive_error(std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)))
                   .empty());
    }
    CHECK(archive_error(std::vector<std::byte>(whole.begin(), whole.end() - 1)).find("truncated") == 0);
}

TEST_CASE("every single-byte change of an archive is detected") {
    const auto whole = io::encode_archive(sample());
    for (std::size_t i = 0; i < whole.size(); ++i) {
        for (unsigned char mask : {0x01, 0x80, 0xFF}) {
            CAPTURE(i);
            auto b = whole;
            b[i] ^= std::byte{mask};
            const std::string why = archive_error(b);
            CHECK(!why.empty());
            if (i >= 24 && i < whole.size() - 4) CHECK(why == "file is corrupt: checksum mismatch");
        }
    }
    auto b = whole;
    b.push_back(std::byte{0});
    CHECK(archive_error(b).find("size mismatch") == 0);
    CHECK(archive_error(io_test::bytes_of("PK\x03\x04 this is a zip, not an archive........")) ==
          "not a typenet archive (bad magic)");
}

TEST_CASE("an archive from a newer typenet gets a clear error") {
    auto b = io::encode_archive(sample());
    set_u32(b, 8, 2);
    reseal(b);
    CHECK(archive_error(b) ==
          "written by a newer typenet (archive format version 2; this typenet reads versions 1 to 1): upgrade typenet");
    set_u32(b, 8, 0);
    reseal(b);
    CHECK(archive_error(b) == "invalid archive format version 0");
}

TEST_CASE("lengths are validated even when the checksum matches") {
    // A writer bug could produce a sealed file with wrong lengths: still a format_error, never a crash.
    const auto whole = io::encode_archive(sample());
    Rng rng(3);
    int errors = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        auto b = whole;
        const std::size_t at = 24 + rng.below(whole.size() - 28);
        set_u32(b, at - at % 4, static_cast<std::uint32_t>(rng() >> (rng.below(2) ? 0 : 40)));
        reseal(b);
        try {
            io::parse_archive(b, "m.tnet");
        } catch (const format_error&) {
            ++errors;
        }
    }
    CHECK(errors > 0);
    auto b = whole;
    set_u32(b, 28, 0xFFFFFFFF);  // tensor count
    reseal(b);
    CHECK(archive_error(b).find("truncated") == 0);
}

TEST_CASE("write_archive validates the archive") {
    io_test::TempDir dir("archive");
    io::Archive a;
    a.tensors.push_back({"w", {2, 2}, {1, 2, 3}});
    CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", a), shape_error);
    a.tensors = {{"w", {1}, {1}}, {"w", {1}, {2}}};
    CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", a), config_error);
    a.tensors = {{"", {1}, {1}}};
    CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", a), config_error);
    a.tensors = {{"r", std::vector<std::size_t>(33, 1), {1}}};
    CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", a), config_error);
    CHECK(!fs::exists(dir / "m.tnet"));
}

TEST_CASE("a failed write_archive leaves the previous archive intact") {
    io_test::TempDir dir("archive");
    const auto a = sample();
    io::write_archive(dir / "m.tnet", a);
    // The folder does not exist.
    const fs::path bad = dir.path / "gone" / "m.tnet";
    try {
        io::write_archive(bad, a);
        FAIL("no exception");
    } catch (const io_error& e) {
        CHECK(e.path() == bad.string());
        CHECK(e.reason().find("No such file or directory") != std::string::npos);
    }
    // An invalid archive is refused before anything is written.
    io::Archive wrong = a;
    wrong.tensors[0].data.pop_back();
    CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", wrong), shape_error);
    check_equal(io::read_archive(dir / "m.tnet"), a);
    // A read-only folder (permissions do not stop root).
    if (::geteuid() != 0) {
        fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
        CHECK_THROWS_AS(io::write_archive(dir / "m.tnet", io::Archive{}), io_error);
        fs::permissions(dir.path, fs::perms::owner_all);
        check_equal(io::read_archive(dir / "m.tnet"), a);
    }
}
