// Helpers shared by the tests of tests/io.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace io_test {

/// The committed fixtures (written by tools/make_io_fixtures.py).
inline const std::filesystem::path fixture_dir =
    std::filesystem::path(TYPENET_SOURCE_DIR) / "tests" / "io" / "fixtures";

/// The bytes of a string.
inline std::vector<std::byte> bytes_of(const std::string& s) {
    std::vector<std::byte> b(s.size());
    if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
    return b;
}

/// A fresh, empty temporary folder, removed with everything in it at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag) {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               ("typenet_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

}  // namespace io_test
