// Tests of io/file.hpp: whole-file reading and atomic writing, including failed writes.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/helpers.hpp"
#include "typenet/io/file.hpp"

namespace fs = std::filesystem;
using namespace typenet;
using io_test::bytes_of;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Temporary files (NAME.tmp.PID.N) left in `dir`.
std::vector<std::string> leftovers(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().filename());
    return out;
}

}  // namespace

TEST_CASE("read_file reads whole files and reports errors with errno text") {
    io_test::TempDir dir("file");
    std::string big(100000, 'x');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
    { std::ofstream(dir / "big", std::ios::binary) << big; }
    CHECK(io::read_file(dir / "big") == bytes_of(big));
    { std::ofstream(dir / "empty", std::ios::binary); }
    CHECK(io::read_file(dir / "empty").empty());
    CHECK_THROWS_WITH_AS(io::read_file(dir / "nope"),
                         ((dir / "nope").string() + ": cannot open for reading: No such file or directory").c_str(),
                         io_error);
    CHECK_THROWS_WITH_AS(io::read_file(dir.path), (dir.path.string() + ": is a directory, not a file").c_str(),
                         io_error);
}

TEST_CASE("write_file_atomic creates and replaces files and leaves no temporary") {
    io_test::TempDir dir("file");
    io::write_file_atomic(dir / "f", bytes_of("first"));
    CHECK(slurp(dir / "f") == "first");
    io::write_file_atomic(dir / "f", bytes_of("second, longer"));
    CHECK(slurp(dir / "f") == "second, longer");
    io::write_file_atomic(dir / "f", bytes_of(""));
    CHECK(slurp(dir / "f").empty());
    CHECK(leftovers(dir.path).empty());
}

TEST_CASE("a failed atomic write leaves the old file intact and no temporary") {
    io_test::TempDir dir("file");
    const std::vector<std::byte> payload(1 << 20, std::byte{0x5A});

    SUBCASE("folder does not exist") {
        const fs::path p = dir.path / "missing" / "f";
        try {
            io::write_file_atomic(p, payload);
            FAIL("no exception");
        } catch (const io_error& e) {
            CHECK(e.path() == p.string());
            CHECK(e.reason().find("No such file or directory") != std::string::npos);
        }
    }

    SUBCASE("the target is a folder: rename fails") {
        fs::create_directory(dir / "target");
        { std::ofstream(dir / "target" / "keep") << "kept"; }
        CHECK_THROWS_AS(io::write_file_atomic(dir / "target", payload), io_error);
        CHECK(slurp(dir.path / "target" / "keep") == "kept");
        CHECK(leftovers(dir.path).empty());
    }

    SUBCASE("the disk fills up mid-write (RLIMIT_FSIZE)") {
        io::write_file_atomic(dir / "f", bytes_of("old contents"));
        struct rlimit old {};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit small = old;
        small.rlim_cur = 4096;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
        std::string reason;
        try {
            io::write_file_atomic(dir / "f", payload);
        } catch (const io_error& e) {
            reason = e.reason();
        }
        ::setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, old_handler);
        CHECK(reason.find("write failed after 4096 of 1048576 bytes: File too large") == 0);
        CHECK(slurp(dir / "f") == "old contents");
        CHECK(leftovers(dir.path).empty());
    }

    SUBCASE("read-only folder") {
        if (::geteuid() == 0) {
            MESSAGE("running as root: permissions are not enforced, read-only case skipped");
        } else {
            io::write_file_atomic(dir / "f", bytes_of("old contents"));
            fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
            CHECK_THROWS_AS(io::write_file_atomic(dir / "f", payload), io_error);
            fs::permissions(dir.path, fs::perms::owner_all);
            CHECK(slurp(dir / "f") == "old contents");
            CHECK(leftovers(dir.path).empty());
        }
    }
}
