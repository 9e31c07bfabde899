/// @file io/npz.hpp
/// NumPy `.npz` archives (`np.savez`, `np.savez_compressed`): a zip of `.npy` files.
///
/// ```cpp
/// auto arrays = typenet::io::read_npz("weights.npz");   // std::map<std::string, NpyArray>
/// const auto& w = arrays.at("kernel");                   // from the entry "kernel.npy"
/// ```
/// Every entry must be a `.npy` file of a supported dtype (see `io/npy.hpp`); errors are
/// `format_error(archive path, "entry 'NAME': reason")`.
#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "typenet/core/error.hpp"
#include "typenet/io/file.hpp"
#include "typenet/io/npy.hpp"
#include "typenet/io/zip.hpp"

namespace typenet::io {

/// The arrays of the `.npz` archive in `bytes`, keyed by entry name without ".npy".
/// `name` (the archive's path) appears in errors. Throws `format_error`.
inline std::map<std::string, NpyArray> parse_npz(std::span<const std::byte> bytes, const std::string& name) {
    std::map<std::string, NpyArray> out;
    for (const ZipEntry& e : parse_zip(bytes, name)) {
        const std::string which = "entry '" + e.name + "': ";
        if (e.name.size() < 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0)
            throw format_error(name, which + "is not a .npy file");
        try {
            out.emplace(e.name.substr(0, e.name.size() - 4), parse_npy(e.data, name));
        } catch (const format_error& err) {
            throw format_error(name, which + err.reason());
        }
    }
    return out;
}

/// The arrays of the `.npz` archive at `path` (see `parse_npz`). Throws `io_error` if the file
/// cannot be read, `format_error` if it is not a valid archive of supported arrays.
inline std::map<std::string, NpyArray> read_npz(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_npz(bytes, path.string());
}

}  // namespace typenet::io
