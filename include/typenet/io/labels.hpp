/// @file io/labels.hpp
/// Class-name files: one label per line, as `imagenet_labels.txt` (1001 lines, line 0
/// `background`).
///
/// Lines may end in LF or CRLF, the last line may lack its newline, a UTF-8 byte order mark
/// is skipped and blank lines at the end are ignored. A blank line between labels would shift
/// every later class index, so it is an error, as are an empty file and binary data.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/io/file.hpp"

namespace typenet::io {

/// The labels in `text`, one per line; `name` (the file path) appears in errors.
/// Throws `format_error` if there is no label, a blank line between labels, or a NUL byte.
inline std::vector<std::string> parse_labels(std::string_view text, const std::string& name) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    if (text.find('\0') != std::string_view::npos) throw format_error(name, "contains NUL bytes: not a text file");
    std::vector<std::string> labels;
    std::size_t blank_line = 0;  // 1-based number of the first blank line not yet followed by a label
    std::size_t line = 0;
    while (!text.empty()) {
        ++line;
        const std::size_t nl = text.find('\n');
        std::string_view l = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (l.empty()) {
            if (!blank_line) blank_line = line;
            continue;
        }
        if (blank_line)
            throw format_error(name, "line " + std::to_string(blank_line) +
                                         " is blank (a blank line between labels would shift the class indices)");
        labels.emplace_back(l);
    }
    if (labels.empty()) throw format_error(name, "no labels: the file is empty");
    return labels;
}

/// The labels of the file at `path`, one per line (see `parse_labels`). Throws `io_error` if
/// it cannot be read, `format_error` if it holds no labels or is malformed.
inline std::vector<std::string> read_labels(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_labels(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
}

}  // namespace typenet::io
