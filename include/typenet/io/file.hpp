/// @file io/file.hpp
/// Whole-file reading and atomic whole-file writing.
///
/// `write_file_atomic` never leaves a half-written file behind: it writes a temporary file
/// beside the target (`NAME.tmp.PID.N`), flushes it to disk (`fsync`), renames it over the
/// target and syncs the directory. If anything fails, the temporary is removed, the previous
/// file (if any) is untouched, and `io_error` says which path failed and why (errno text).
/// POSIX only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"

namespace typenet::io {

namespace detail {

/// The text of errno value `err`.
inline std::string errno_text(int err) {
    return std::strerror(err);
}

/// Closes a file descriptor when it goes out of scope.
struct FdCloser {
    int fd = -1;
    ~FdCloser() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace detail

/// The contents of the file at `path`. Throws `io_error` (with the errno text) if it cannot
/// be opened or read, or if it is a directory.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    detail::FdCloser f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) {
        const int err = errno;
        throw io_error(path.string(), "cannot open for reading: " + detail::errno_text(err));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        const int err = errno;
        throw io_error(path.string(), "cannot stat: " + detail::errno_text(err));
    }
    if (S_ISDIR(st.st_mode)) throw io_error(path.string(), "is a directory, not a file");
    std::vector<std::byte> out(st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 4096);
    std::size_t used = 0;
    for (;;) {
        if (used == out.size()) out.resize(out.size() * 2);
        const ssize_t n = ::read(f.fd, out.data() + used, out.size() - used);
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            throw io_error(path.string(), "read failed: " + detail::errno_text(err));
        }
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    out.resize(used);
    return out;
}

namespace detail {
/// Remove temporaries `NAME.tmp.<pid>.<n>` of `path` left by processes that no longer
/// exist (a writer killed half-way): they are never the live file, only litter.
inline void remove_stale_temporaries(const std::filesystem::path& path) {
    std::error_code ec;
    const std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    const std::string prefix = path.filename().string() + ".tmp.";
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string rest = name.substr(prefix.size());
        const auto dot = rest.find('.');
        if (dot == std::string::npos || dot == 0) continue;
        // (A named string: `end` points into it. Found by AddressSanitizer in CI.)
        const std::string digits = rest.substr(0, dot);
        char* end = nullptr;
        const long pid = std::strtol(digits.c_str(), &end, 10);
        if (*end || pid <= 0 || pid == static_cast<long>(::getpid())) continue;
        if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) ::unlink(e.path().c_str());
    }
}
}  // namespace detail

/// Replace the file at `path` by `bytes`, atomically: readers see either the old file or the
/// complete new one, never a mixture, even after a crash or power loss. On failure throws
/// `io_error(path, reason)` and leaves the old file intact and no temporary behind.
inline void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    static std::atomic<unsigned long> counter{0};
    std::filesystem::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);

    auto fail = [&](const std::string& step, int err, bool remove_tmp) {
        if (remove_tmp) ::unlink(tmp.c_str());
        throw io_error(path.string(), step + ": " + detail::errno_text(err));
    };

    {
        detail::FdCloser f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
        if (f.fd < 0) {
            const int err = errno;
            fail("cannot create temporary file " + tmp.string(), err, false);
        }
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
            if (n < 0) {
                const int err = errno;
                if (err == EINTR) continue;
                fail("write failed after " + std::to_string(done) + " of " + std::to_string(bytes.size()) + " bytes",
                     err, true);
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(f.fd) != 0) fail("fsync failed", errno, true);
        const int fd = f.fd;
        f.fd = -1;
        if (::close(fd) != 0) fail("close failed", errno, true);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        fail("cannot rename " + tmp.string() + " over it", err, true);
    }

    // Make the rename itself durable.
    std::filesystem::path dir = path.parent_path();
    if (dir.empty()) dir = ".";
    detail::FdCloser d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (d.fd < 0) {
        const int err = errno;
        fail("written, but cannot open its folder to sync it", err, false);
    }
    if (::fsync(d.fd) != 0 && errno != EINVAL) fail("written, but syncing its folder failed", errno, false);
    detail::remove_stale_temporaries(path);
}

}  // namespace typenet::io
