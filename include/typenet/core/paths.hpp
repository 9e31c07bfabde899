/// @file core/paths.hpp
/// Where typenet finds the shared data: datasets, weights and test images.
///
/// `TYPENET_DATA` names the folder holding `data/`, `weights/` and `images/`. When it
/// is unset, typenet uses `../shared` relative to the working directory (the layout
/// beside a checkout), and, in the project's own builds, `../shared` beside the
/// source tree (`TYPENET_SOURCE_DIR`).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "typenet/config.hpp"

namespace typenet {

/// The data folder: `$TYPENET_DATA`, else `../shared`, else `TYPENET_SOURCE_DIR/../shared`.
/// The folder may not exist; check with `std::filesystem::exists`.
inline std::filesystem::path data_dir() {
    if (const char* env = std::getenv(TYPENET_DATA_ENV); env && *env) return std::filesystem::path(env);
    std::filesystem::path rel(TYPENET_DEFAULT_DATA_DIR);
#ifdef TYPENET_SOURCE_DIR
    std::error_code ec;
    if (!std::filesystem::exists(rel, ec)) {
        std::filesystem::path beside = std::filesystem::path(TYPENET_SOURCE_DIR) / TYPENET_DEFAULT_DATA_DIR;
        if (std::filesystem::exists(beside, ec)) return beside.lexically_normal();
    }
#endif
    return rel;
}

}  // namespace typenet
