/// @file io/npy.hpp
/// NumPy `.npy` files: reading (to float32, C order) and atomic writing.
///
/// Reads format versions 1.0, 2.0 and 3.0, in C or Fortran order, with dtypes
/// `<f4`, `<f8`, `|u1`, `<i4` and `<i8`; the values are converted to float (integers
/// beyond 2^24 and doubles are rounded to the nearest float) and returned in C order.
/// Everything else is refused with a `format_error` whose reason says what was found:
/// pickled object arrays (`|O`), big-endian data (`>f4`), other dtypes, structured
/// dtypes, truncated files, headers that promise more data than the file holds, and
/// shapes whose size overflows.
///
/// ```cpp
/// auto w = typenet::io::read_npy("Conv_weights.npy");   // w.shape == {3, 3, 3, 32}
/// typenet::io::write_npy("copy.npy", w.shape, w.data);   // always <f4, version 1.0
/// ```
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/io/bytes.hpp"
#include "typenet/io/file.hpp"

namespace typenet::io {

/// An array read from a `.npy` file.
struct NpyArray {
    /// Extents, outermost first (empty for a 0-d array).
    std::vector<std::size_t> shape;
    /// The values in C (row-major) order, converted to float.
    std::vector<float> data;
    /// The dtype as the file spelled it, e.g. "<f4" or "|u1".
    std::string dtype;

    /// Number of elements (1 for a 0-d array).
    std::size_t size() const noexcept { return data.size(); }
};

namespace detail {

/// The fields of a `.npy` header.
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
};

/// Parser of the Python dict literal of a `.npy` header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
class NpyHeaderParser {
public:
    NpyHeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

    NpyHeader parse() {
        NpyHeader h;
        bool seen_descr = false, seen_order = false, seen_shape = false;
        expect('{');
        for (;;) {
            skip_ws();
            if (eat('}')) break;
            const std::string key = quoted("a key");
            expect(':');
            if (key == "descr") {
                skip_ws();
                if (peek() == '[')
                    fail("structured dtype (a list of fields) is not supported; only plain numeric dtypes are");
                h.descr = quoted("the 'descr' value");
                seen_descr = true;
            } else if (key == "fortran_order") {
                h.fortran_order = boolean();
                seen_order = true;
            } else if (key == "shape") {
                h.shape = tuple();
                seen_shape = true;
            } else {
                fail("unexpected key '" + key + "' in header (expected descr, fortran_order, shape)");
            }
            skip_ws();
            if (eat('}')) break;
            expect(',');
        }
        skip_ws();
        if (i_ != s_.size()) fail("unexpected text after the header dictionary");
        if (!seen_descr || !seen_order || !seen_shape)
            fail(std::string("header lacks the key '") +
                 (!seen_descr   ? "descr"
                  : !seen_order ? "fortran_order"
                                : "shape") +
                 "'");
        return h;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw format_error(name_, "bad .npy header: " + why + " (header: " + std::string(s_.substr(0, 200)) + ")");
    }
    void skip_ws() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    void expect(char c) {
        skip_ws();
        if (eat(c)) return;
        // Built with append (GCC 12 warns, wrongly, about memcpy bounds in the
        // operator+ chain of temporaries here: -Warray-bounds).
        std::string msg = "expected '";
        msg += c;
        msg.append("' at character ").append(std::to_string(i_));
        fail(msg);
    }
    std::string quoted(const char* what) {
        skip_ws();
        const char q = peek();
        if (q != '\'' && q != '"') fail(std::string("expected a quoted string for ") + what);
        ++i_;
        const std::size_t end = s_.find(q, i_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string out(s_.substr(i_, end - i_));
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        skip_ws();
        if (s_.substr(i_, 4) == "True") {
            i_ += 4;
            return true;
        }
        if (s_.substr(i_, 5) == "False") {
            i_ += 5;
            return false;
        }
        fail("'fortran_order' must be True or False");
    }
    std::vector<std::size_t> tuple() {
        std::vector<std::size_t> out;
        expect('(');
        for (;;) {
            skip_ws();
            if (eat(')')) return out;
            if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape entries must be non-negative integers");
            std::size_t v = 0;
            while (std::isdigit(static_cast<unsigned char>(peek()))) {
                auto m = checked_mul(v, 10);
                if (!m || *m > SIZE_MAX - static_cast<std::size_t>(peek() - '0')) fail("shape extent overflows");
                v = *m + static_cast<std::size_t>(s_[i_++] - '0');
            }
            eat('L');  // Python 2 long suffix
            out.push_back(v);
            if (out.size() > 64) fail("more than 64 dimensions");
            skip_ws();
            if (eat(')')) return out;
            expect(',');
        }
    }

    std::string_view s_;
    const std::string& name_;
    std::size_t i_ = 0;
};

/// Convert `n` little-endian values of type `T` at `src` to floats.
template <class T>
void npy_convert(const std::byte* src, std::size_t n, float* dst) {
    if constexpr (std::is_same_v<T, float>) {
        load_floats_le(src, n, dst);
    } else {
        for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<T>(src + i * sizeof(T)));
    }
}

/// Reorder Fortran-order (first index fastest) values into C order.
inline std::vector<float> fortran_to_c(const std::vector<float>& f, const std::vector<std::size_t>& shape) {
    const std::size_t rank = shape.size();
    if (f.empty() || rank < 2) return f;
    std::vector<float> c(f.size());
    std::vector<std::size_t> stride(rank), idx(rank, 0);
    std::size_t s = 1;
    for (std::size_t k = 0; k < rank; ++k) {
        stride[k] = s;
        s *= shape[k];
    }
    std::size_t src = 0;
    for (std::size_t out = 0; out < c.size(); ++out) {
        c[out] = f[src];
        for (std::size_t k = rank; k-- > 0;) {
            src += stride[k];
            if (++idx[k] < shape[k]) break;
            src -= stride[k] * shape[k];
            idx[k] = 0;
        }
    }
    return c;
}

}  // namespace detail

/// Parse the bytes of a `.npy` file; `name` (the file path) appears in errors.
/// Throws `format_error` for anything but a well-formed array of a supported dtype.
inline NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& name) {
    ByteReader r(bytes, name);
    static constexpr char magic[] = "\x93NUMPY";
    const auto m = r.take(6, "magic");
    if (std::memcmp(m.data(), magic, 6) != 0) r.fail("not a .npy file (missing the \\x93NUMPY magic)");
    const auto major = r.read<std::uint8_t>("version");
    const auto minor = r.read<std::uint8_t>("version");
    if (major < 1 || major > 3 || minor != 0)
        r.fail("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
               " (supported: 1.0, 2.0, 3.0)");
    const std::size_t header_len =
        major == 1 ? r.read<std::uint16_t>("header length") : r.read<std::uint32_t>("header length");
    const std::string text = r.string(header_len, "header");
    const detail::NpyHeader h = detail::NpyHeaderParser(text, name).parse();

    NpyArray a;
    a.dtype = h.descr;
    a.shape = h.shape;
    const std::string& d = h.descr;
    if (d == "|O" || d == "<O" || d == ">O" || d == "O")
        r.fail("object array (dtype '" + d + "', pickled Python objects) is not supported; only numeric dtypes are");
    if (!d.empty() && d[0] == '>')
        r.fail("big-endian dtype '" + d + "' is not supported (only little-endian '<' data)");
    struct Dtype {
        std::string_view descr;
        std::size_t itemsize;
        void (*convert)(const std::byte*, std::size_t, float*);
    };
    static constexpr Dtype supported[] = {
        {"<f4", 4, detail::npy_convert<float>},        {"<f8", 8, detail::npy_convert<double>},
        {"|u1", 1, detail::npy_convert<std::uint8_t>}, {"<u1", 1, detail::npy_convert<std::uint8_t>},
        {"<i4", 4, detail::npy_convert<std::int32_t>}, {"<i8", 8, detail::npy_convert<std::int64_t>},
    };
    const auto dtype =
        std::find_if(std::begin(supported), std::end(supported), [&](const Dtype& t) { return t.descr == d; });
    if (dtype == std::end(supported)) r.fail("unsupported dtype '" + d + "' (supported: <f4, <f8, |u1, <i4, <i8)");
    const std::size_t itemsize = dtype->itemsize;

    const auto count = checked_product(a.shape);
    const auto nbytes = count ? checked_mul(*count, itemsize) : std::nullopt;
    if (!nbytes) r.fail("shape " + shape_to_string(a.shape) + " is too large (its size overflows)");
    if (*nbytes > r.remaining())
        r.fail("truncated: shape " + shape_to_string(a.shape) + " of " + d + " needs " + std::to_string(*nbytes) +
               " bytes of data, the file has " + std::to_string(r.remaining()));
    if (*nbytes < r.remaining())
        r.fail("shape " + shape_to_string(a.shape) + " of " + d + " needs " + std::to_string(*nbytes) +
               " bytes of data, but the file has " + std::to_string(r.remaining()) + " (trailing bytes)");
    a.data.resize(*count);
    dtype->convert(r.take(*nbytes, "data").data(), *count, a.data.data());
    if (h.fortran_order) a.data = detail::fortran_to_c(a.data, a.shape);
    return a;
}

/// Read a `.npy` file. Throws `io_error` if it cannot be read, `format_error` if it is not
/// a supported array (see the file comment).
inline NpyArray read_npy(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_npy(bytes, path.string());
}

/// The bytes of a version 1.0 `.npy` file holding `data` (C order, `<f4`) with extents `shape`.
/// Throws `shape_error` if `data.size()` is not the product of `shape`.
inline std::vector<std::byte> encode_npy(std::span<const std::size_t> shape, std::span<const float> data) {
    const auto count = checked_product(shape);
    if (!count || *count != data.size())
        throw shape_error("write_npy: shape " + shape_to_string(shape) + " does not hold " +
                          std::to_string(data.size()) + " values");
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_to_string(shape) + ", }";
    // Pad with spaces so that the data starts on a 64-byte boundary; end with a newline.
    const std::size_t unpadded = 10 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    if (header.size() > 65535)
        throw shape_error("write_npy: shape " + shape_to_string(shape) + " has too many dimensions");
    ByteWriter w;
    w.put_string("\x93NUMPY");
    w.put<std::uint8_t>(1);
    w.put<std::uint8_t>(0);
    w.put<std::uint16_t>(static_cast<std::uint16_t>(header.size()));
    w.put_string(header);
    w.put_floats(data.data(), data.size());
    return std::move(w.buffer());
}

/// Write `data` (C order) with extents `shape` as a version 1.0 `<f4` `.npy` file, atomically
/// (see `write_file_atomic`). Throws `shape_error` if the sizes disagree, `io_error` on failure.
inline void write_npy(const std::filesystem::path& path, std::span<const std::size_t> shape,
                      std::span<const float> data) {
    write_file_atomic(path, encode_npy(shape, data));
}

}  // namespace typenet::io
