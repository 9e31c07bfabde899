/// @file io/download.hpp
/// Fetching the public originals of the data and weights: `download_file` (through the
/// system's `curl`, so https, proxies and certificates are the system's), `extract_zip`,
/// and `download_mobilenet_v2_weights`.
///
/// Nothing is left half-done: a download goes to `DEST.part.PID` and is renamed over
/// `DEST` only when complete (and, for the weights, only when it is what it should be:
/// a proxy's error page saved under the model's name is refused); an archive is unpacked
/// into a temporary folder beside its target and renamed into place. Failures throw
/// `io_error(url or path, reason)`, the reason naming what curl said (host not found,
/// HTTP error, timeout, certificate problem, ...). POSIX only.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/paths.hpp"
#include "typenet/io/file.hpp"
#include "typenet/io/zip.hpp"

extern char** environ;

namespace typenet::io {

/// How `download_file` runs.
struct DownloadOptions {
    /// Where progress lines go (nullptr: nowhere).
    std::ostream* log = &std::cerr;
    /// curl's progress bar, when standard error is a terminal.
    bool progress_bar = true;
    /// Retries of transient failures (curl --retry).
    int retries = 2;
    /// Seconds to wait for a connection (curl --connect-timeout).
    int connect_timeout = 20;
};

namespace detail {

/// What curl's exit status means (the common ones; `man curl`, EXIT CODES).
inline std::string curl_exit_text(int status) {
    switch (status) {
        case 3: return "malformed URL";
        case 5: return "could not resolve the proxy";
        case 6: return "could not resolve the host (no network?)";
        case 7: return "could not connect to the host";
        case 22: return "the server answered with an HTTP error (404 or similar)";
        case 23: return "could not write the downloaded data to disk";
        case 28: return "timed out";
        case 35: return "TLS handshake failed";
        case 37: return "could not read the file (file:// URL)";
        case 56: return "the connection broke while receiving data";
        case 60:
        case 77: return "the server's certificate could not be checked (apt-get install ca-certificates)";
        default: return "curl exit status " + std::to_string(status);
    }
}

/// The last non-empty line of a (small) text file, or "".
inline std::string last_line(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line, last;
    while (std::getline(in, line))
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    return last;
}

/// Run `argv` (searched in PATH), its standard error to `err_file` unless empty; the
/// exit status, -1 when it was killed, or throws `io_error(what, ...)` when it cannot
/// be started (ENOENT: not installed).
inline int run_program(const std::vector<std::string>& argv, const std::filesystem::path& err_file,
                       const std::string& what) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (!err_file.empty())
        posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw io_error(what, "cannot run " + argv[0] + ": " + errno_text(rc) +
                                 (rc == ENOENT ? " (apt-get install ca-certificates " + argv[0] + ")" : ""));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw io_error(what, "waiting for " + argv[0] + ": " + errno_text(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace detail

/// Download `url` to `dest`. The data goes to `dest.part.PID` first and is renamed over
/// `dest` when curl reports success, so `dest` is either absent (or its previous
/// version) or complete. @throws io_error(url, reason) when curl is missing or fails.
inline void download_file(const std::string& url, const std::filesystem::path& dest, const DownloadOptions& options = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!dest.parent_path().empty()) {
        fs::create_directories(dest.parent_path(), ec);
        if (ec) throw io_error(dest.parent_path().string(), "cannot create the folder: " + ec.message());
    }
    const fs::path part = dest.string() + ".part." + std::to_string(::getpid());
    const fs::path err = dest.string() + ".curl-err." + std::to_string(::getpid());
    const bool bar = options.progress_bar && ::isatty(2);
    if (options.log) *options.log << "typenet: downloading " << url << "\n" << std::flush;
    std::vector<std::string> argv = {"curl", "-fL", "--retry", std::to_string(options.retries), "--connect-timeout",
                                     std::to_string(options.connect_timeout), bar ? "--progress-bar" : "-sS",
                                     "-o", part.string(), url};
    int status = 0;
    try {
        status = detail::run_program(argv, bar ? fs::path() : err, url);
    } catch (...) {
        fs::remove(part, ec);
        fs::remove(err, ec);
        throw;
    }
    const std::string said = bar ? std::string() : detail::last_line(err);
    fs::remove(err, ec);
    if (status != 0) {
        fs::remove(part, ec);
        throw io_error(url, "download failed: " + detail::curl_exit_text(status) + (said.empty() ? "" : " (" + said + ")"));
    }
    fs::rename(part, dest, ec);
    if (ec) {
        fs::remove(part, ec);
        throw io_error(dest.string(), "cannot move the download into place: " + ec.message());
    }
}

/// Unpack the zip archive `zip` into the folder `dir` (created if needed; existing
/// files of the same names are replaced). Every entry's CRC is checked first
/// (`read_zip`); entry names that would land outside `dir` (absolute, `..`) are refused.
/// @throws format_error(zip, reason) for a damaged or unsafe archive (nothing written
///         then), io_error(path, reason) when a file cannot be written.
inline void extract_zip(const std::filesystem::path& zip, const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    const std::vector<ZipEntry> entries = read_zip(zip);
    for (const ZipEntry& e : entries) {
        const fs::path p(e.name);
        bool bad = e.name.empty() || p.is_absolute() || e.name.find('\\') != std::string::npos;
        for (const auto& part : p)
            if (part == "..") bad = true;
        if (bad) throw format_error(zip.string(), "entry '" + e.name + "': a path outside the folder it unpacks to");
    }
    std::error_code ec;
    for (const ZipEntry& e : entries) {
        const fs::path target = dir / fs::path(e.name);
        if (e.name.back() == '/') {
            fs::create_directories(target, ec);
            if (ec) throw io_error(target.string(), "cannot create the folder: " + ec.message());
            continue;
        }
        fs::create_directories(target.parent_path(), ec);
        if (ec) throw io_error(target.parent_path().string(), "cannot create the folder: " + ec.message());
        std::ofstream out(target, std::ios::binary | std::ios::trunc);
        if (out) out.write(reinterpret_cast<const char*>(e.data.data()), static_cast<std::streamsize>(e.data.size()));
        if (!out) throw io_error(target.string(), "cannot write: " + detail::errno_text(errno));
    }
}

/// Where `download_mobilenet_v2_weights` fetches from by default: Google's files in the
/// google-coral/test_data repository, at a fixed commit (Apache-2.0).
inline constexpr const char* mobilenet_v2_weights_url =
    "https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41";

namespace detail {

/// "" when `file` looks like `kind` ("tflite": the TFL3 identifier at byte 4 and more
/// than 1 MB; "labels": 1001 lines from "background"), else what is wrong.
inline std::string weights_file_problem(const std::filesystem::path& file, const std::string& kind) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return "cannot be opened";
    if (kind == "tflite") {
        char head[8] = {};
        in.read(head, 8);
        if (in.gcount() < 8 || std::string(head + 4, 4) != "TFL3") return "no TFLite identifier (TFL3) at byte 4";
        std::error_code ec;
        if (std::filesystem::file_size(file, ec) < 1000000) return "less than 1 MB";
        return "";
    }
    std::string line;
    std::size_t n = 0;
    bool first_ok = false;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (n == 0) first_ok = line == "background";
        ++n;
    }
    if (!first_ok) return "the first line is not 'background'";
    if (n < 1001) return "only " + std::to_string(n) + " lines (1001 expected)";
    return "";
}

}  // namespace detail

/// Make sure `weights_dir` holds a MobileNetV2 that `load_mobilenet_v2_imagenet` can load:
/// when it has neither the float `.npy` folder (`mobilenet_v2_1.0_224/`) nor the PTQ model
/// (`tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite`), download the PTQ model and the ImageNet
/// labels from `base_url` (weights dequantized from int8 on loading). A file that arrives
/// but is not what it should be is removed and refused. `base_url` defaults to
/// `$TYPENET_WEIGHTS_URL` (a mirror), else `mobilenet_v2_weights_url`. Returns whether it
/// downloaded.
/// @throws io_error(url or path, reason).
inline bool download_mobilenet_v2_weights(const std::filesystem::path& weights_dir, const DownloadOptions& options = {},
                                          const std::string& base_url = env_or("TYPENET_WEIGHTS_URL",
                                                                               mobilenet_v2_weights_url)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path ptq = weights_dir / "tflite" / "tf2_mobilenet_v2_1.0_224_ptq.tflite";
    if (fs::is_directory(weights_dir / "mobilenet_v2_1.0_224", ec) || fs::exists(ptq, ec)) return false;
    struct Item {
        const char* name;
        fs::path dest;
        const char* kind;
    };
    for (const Item& item : {Item{"tf2_mobilenet_v2_1.0_224_ptq.tflite", ptq, "tflite"},
                             Item{"imagenet_labels.txt", weights_dir / "imagenet_labels.txt", "labels"}}) {
        if (fs::exists(item.dest, ec) && detail::weights_file_problem(item.dest, item.kind).empty()) continue;
        const std::string url = base_url + "/" + item.name;
        const fs::path tmp = item.dest.string() + ".check";
        download_file(url, tmp, options);
        if (const std::string why = detail::weights_file_problem(tmp, item.kind); !why.empty()) {
            fs::remove(tmp, ec);
            throw io_error(url, "did not give a " + std::string(item.kind) + " file (" + why + "): a proxy's page?");
        }
        fs::rename(tmp, item.dest, ec);
        if (ec) throw io_error(item.dest.string(), "cannot move the download into place: " + ec.message());
    }
    if (options.log) *options.log << "typenet: MobileNetV2 weights in " << weights_dir.string() << "\n";
    return true;
}

}  // namespace typenet::io
