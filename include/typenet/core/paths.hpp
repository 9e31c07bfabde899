/// @file core/paths.hpp
/// Where typenet finds the shared data: datasets, weights and test images.
///
/// `TYPENET_DATA` names the folder holding `data/`, `weights/` and `images/`. When it
/// is unset, typenet uses `../shared` relative to the working directory (the layout
/// beside a checkout), or, in the project's own builds, `../shared` beside the
/// source tree (`TYPENET_SOURCE_DIR`), or else the download cache (`cache_dir()`).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "typenet/config.hpp"

namespace typenet {

/// The value of the environment variable `name`, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

/// Where the programs download the data and weights when no data folder exists (as Keras
/// uses `~/.keras`): `$XDG_CACHE_HOME/typenet`, else `$HOME/.cache/typenet`, else
/// `typenet-data` in the working directory.
inline std::filesystem::path cache_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "typenet";
    if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".cache" / "typenet";
    return "typenet-data";
}

/// The data folder: `$TYPENET_DATA`; else the first that exists of `../shared` (relative
/// to the working directory), `TYPENET_SOURCE_DIR/../shared` (the project's own builds)
/// and `cache_dir()` (where downloads went); else `cache_dir()`, where the example
/// programs download to. The folder may not exist; check with `std::filesystem::exists`.
inline std::filesystem::path data_dir() {
    if (const char* env = std::getenv(TYPENET_DATA_ENV); env && *env) return std::filesystem::path(env);
    std::error_code ec;
    const std::filesystem::path rel(TYPENET_DEFAULT_DATA_DIR);
    if (std::filesystem::exists(rel, ec)) return rel;
#ifdef TYPENET_SOURCE_DIR
    const std::filesystem::path beside = std::filesystem::path(TYPENET_SOURCE_DIR) / TYPENET_DEFAULT_DATA_DIR;
    if (std::filesystem::exists(beside, ec)) return beside.lexically_normal();
#endif
    return cache_dir();
}

}  // namespace typenet
