/// @file core/error.hpp
/// The exception types typenet throws.
///
/// Every error derives from `typenet::error` (itself a `std::runtime_error`), so
/// `catch (const typenet::error&)` catches everything typenet reports. Errors about
/// a file carry its path and the reason separately (`path()`, `reason()`); `what()`
/// reads "PATH: REASON".
///
/// | type                   | thrown when                                                        |
/// |------------------------|--------------------------------------------------------------------|
/// | `io_error`             | a file or folder cannot be opened, read, written or renamed        |
/// | `format_error`         | a file was read but its contents are not what they should be       |
/// | `image_error`          | an image cannot be decoded (corrupt, truncated, not an image)      |
/// | `mismatch_error`       | weights or a saved model do not fit the model they are loaded into |
/// | `shape_error`          | a tensor of the wrong shape is passed                              |
/// | `config_error`         | a setting or a combination of settings is wrong                    |
/// | `numeric_error`        | NaN or infinity appears in training                                |
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace typenet {

/// Base of every exception typenet throws.
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// A file or folder that cannot be opened, read, written or renamed.
class io_error : public error {
public:
    io_error(std::string path, std::string reason)
        : error(path + ": " + reason), path_(std::move(path)), reason_(std::move(reason)) {}
    /// The file or folder concerned.
    const std::string& path() const noexcept { return path_; }
    /// Why it failed, without the path.
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string path_, reason_;
};

/// A file whose contents are malformed, truncated or of an unsupported kind.
class format_error : public io_error {
public:
    using io_error::io_error;
};

/// An image that cannot be decoded.
class image_error : public format_error {
public:
    using format_error::format_error;
};

/// Weights or a saved model that do not match the model they are loaded into.
/// `path()` names the file or folder; `reason()` lists every difference.
class mismatch_error : public io_error {
public:
    using io_error::io_error;
};

/// A tensor of the wrong shape.
class shape_error : public error {
public:
    using error::error;
};

/// A wrong setting, or settings that contradict each other.
class config_error : public error {
public:
    using error::error;
};

/// NaN or infinity in a loss, an activation or a gradient.
class numeric_error : public error {
public:
    numeric_error(std::string where, const std::string& what)
        : error(where + ": " + what), where_(std::move(where)) {}
    /// The layer (or "loss") where the value first appeared.
    const std::string& where() const noexcept { return where_; }

private:
    std::string where_;
};

}  // namespace typenet
