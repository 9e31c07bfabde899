/// @file io/model_file.hpp
/// Saving and loading a whole model (any `Sequential`, or any layer with the same
/// members) in typenet's own file format.
///
/// The file is an `Archive` (io/archive.hpp: versioned header, CRC-32, written
/// atomically through a temporary file, so a crash while saving never destroys the
/// previous file) holding:
/// - `meta["format"] = "typenet-model"`, `meta["typenet_version"]`;
/// - `meta["signature"]`: every layer's name, type, settings and output shape
///   (`Sequential::signature()`), and `meta["input_shape"]`;
/// - every parameter and buffer as a named tensor (`dense/kernel`,
///   `mobile_net_v2/Conv_1/BatchNorm/moving_mean`, ...);
/// - optionally a reference input and the output the model gave for it
///   (`__reference_input`, `__reference_output`): loading runs the input again and
///   refuses the weights when the output differs (frugally-deep's idea), naming the
///   worst position and both values;
/// - any metadata of the caller (class names, training settings).
///
/// Loading into a model of another architecture fails with a `mismatch_error` that
/// shows the first lines where the signatures differ and every tensor that is
/// missing, unexpected or of another shape.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/number.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/io/archive.hpp"

namespace typenet::io {

/// What `save_model` writes besides the weights.
struct SaveOptions {
    /// Extra metadata (e.g. "class_names" -> "rock,paper,scissors").
    std::map<std::string, std::string> meta;
    /// Store a reference input (the first `reference_examples` examples of it) and the
    /// model's output for it, checked again at load time.
    bool store_reference = false;
    std::size_t reference_examples = 2;
};

/// The most values per example (the product of the input extents) for which `load_model` builds
/// an unbuilt model from the input shape a file states, unless the file holds more weights than
/// that (2^24, e.g. 2364 x 2364 x 3). Build the model yourself to load a file for larger inputs.
inline constexpr std::size_t load_model_max_input_values = std::size_t{1} << 24;

namespace detail {

inline std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream is(s);
    for (std::string line; std::getline(is, line);) out.push_back(line);
    return out;
}

/// "line 3: file has `...`, model has `...`" for the first few differing lines.
inline std::string signature_diff(const std::string& file_sig, const std::string& model_sig) {
    const auto a = split_lines(file_sig), b = split_lines(model_sig);
    std::ostringstream os;
    std::size_t shown = 0;
    for (std::size_t i = 0; i < std::max(a.size(), b.size()) && shown < 5; ++i) {
        const std::string fa = i < a.size() ? a[i] : "(nothing)", mb = i < b.size() ? b[i] : "(nothing)";
        if (fa != mb) {
            os << "\n  line " << i + 1 << ": file has `" << fa << "`, model has `" << mb << "`";
            ++shown;
        }
    }
    if (a.size() != b.size()) os << "\n  the file has " << a.size() << " lines, the model " << b.size();
    return os.str();
}

template <class M>
std::string input_shape_of(const M& model) {
    std::string s;
    for (std::size_t e : model.example_shape()) {
        if (!s.empty()) s += ',';
        s += std::to_string(e);
    }
    return s;
}

/// The example shape stored in a model file. `stored_values` is the number of weights the file
/// holds: a shape of more than `load_model_max_input_values` values per example is refused unless
/// the file holds at least as many weights (a model whose first layer is Dense has that many).
///
/// Found by fuzzing (tests/fuzz/regressions/model/): std::stoull read " -2" as 2^64 - 2 (building
/// then threw std::bad_array_new_length), and a file of a few hundred bytes saying
/// "1000000000" made the Dense layer allocate 16 GB before the weights were compared.
template <class M>
std::array<std::size_t, M::input_rank - 1> parse_input_shape(const std::string& text, const std::string& path,
                                                             std::size_t stored_values) {
    std::array<std::size_t, M::input_rank - 1> out{};
    std::istringstream is(text);
    std::string part;
    std::size_t i = 0, values = 1;
    while (std::getline(is, part, ',')) {
        if (i >= out.size()) throw mismatch_error(path, "input shape (" + text + ") has more extents than the model's input");
        const auto extent = part.size() <= 18 ? parse_whole_number(part) : std::nullopt;
        if (!extent) throw format_error(path, "bad input_shape metadata \"" + text + "\"");
        out[i] = static_cast<std::size_t>(*extent);
        values = checked_mul(values, out[i]).value_or(SIZE_MAX);
        ++i;
    }
    if (i != out.size()) throw mismatch_error(path, "input shape (" + text + ") has fewer extents than the model's input");
    if (values > std::max(load_model_max_input_values, stored_values))
        throw format_error(path, "input shape (" + text + ") has more values per example than the " +
                                     std::to_string(stored_values) + " weights the file holds (and than " +
                                     std::to_string(load_model_max_input_values) +
                                     "): corrupt? (to load it anyway, build the model for this input first)");
    return out;
}

}  // namespace detail

/// Save `model`'s weights, architecture signature and `options.meta` to `path`
/// (atomically). With `options.store_reference`, `reference_input` (a batch shaped like
/// the model's input) is run through the model and stored with its output.
template <class M>
void save_model(M& model, const std::filesystem::path& path, const SaveOptions& options = {},
                const typename M::input_type* reference_input = nullptr) {
    if (!model.built()) throw config_error("save_model: the model is not built (call build or run it once)");
    Archive a;
    a.meta = options.meta;
    a.meta["format"] = "typenet-model";
    a.meta["typenet_version"] = TYPENET_VERSION_STRING;
    a.meta["signature"] = model.signature();
    a.meta["input_shape"] = detail::input_shape_of(model);
    for (const BufferRef& t : state_tensors(model))
        a.tensors.push_back(NamedTensor{t.name, t.shape, std::vector<float>(t.value, t.value + t.size)});
    if (options.store_reference) {
        if (!reference_input) throw config_error("save_model: store_reference needs a reference input");
        typename M::input_type x = *reference_input;
        const std::size_t n = std::min(options.reference_examples, x.shape()[0]);
        if (n < x.shape()[0]) {
            auto s = shape_of(x);
            s[0] = n;
            typename M::input_type cut(s);
            std::copy(x.data(), x.data() + cut.size(), cut.data());
            x = std::move(cut);
        }
        const auto& y = model.forward(x);
        a.tensors.push_back(NamedTensor{"__reference_input", {x.shape().begin(), x.shape().end()},
                                        std::vector<float>(x.begin(), x.end())});
        a.tensors.push_back(NamedTensor{"__reference_output", {y.shape().begin(), y.shape().end()},
                                        std::vector<float>(y.begin(), y.end())});
    }
    write_archive(path, a);
}

/// Load a file written by `save_model` into `model` (building it for the stored input
/// shape when needed, see `load_model_max_input_values`) and return the file's metadata. Throws format_error (corrupt,
/// truncated, not a typenet model), mismatch_error (another architecture, or the
/// reference output is not reproduced within `tolerance`), io_error (unreadable).
template <class M>
std::map<std::string, std::string> load_model(M& model, const std::filesystem::path& path, float tolerance = 1e-4f) {
    const Archive a = read_archive(path);
    const std::string p = path.string();
    auto meta = [&](const char* key) -> const std::string& {
        auto it = a.meta.find(key);
        if (it == a.meta.end()) throw format_error(p, std::string("not a typenet model file: no \"") + key + "\" entry");
        return it->second;
    };
    if (meta("format") != "typenet-model") throw format_error(p, "not a typenet model file (format \"" + meta("format") + "\")");
    if (!model.built()) {
        std::size_t stored = 0;
        for (const NamedTensor& t : a.tensors)
            if (t.name.rfind("__", 0) != 0) stored += t.data.size();
        model.build(detail::parse_input_shape<M>(meta("input_shape"), p, stored));
    }

    std::ostringstream problems;
    std::size_t count = 0;
    const std::string sig = model.signature();
    if (meta("signature") != sig) {
        problems << "\n the architecture differs:" << detail::signature_diff(meta("signature"), sig);
        ++count;
    }
    const auto tensors = state_tensors(model);
    std::set<std::string> wanted;
    for (const BufferRef& t : tensors) {
        wanted.insert(t.name);
        const NamedTensor* f = a.find(t.name);
        if (!f) {
            problems << "\n missing in the file: " << t.name << " " << shape_to_string(t.shape);
            ++count;
        } else if (f->shape != t.shape) {
            problems << "\n shape of " << t.name << ": file " << shape_to_string(f->shape) << ", model "
                     << shape_to_string(t.shape);
            ++count;
        }
    }
    for (const NamedTensor& f : a.tensors)
        if (f.name.rfind("__", 0) != 0 && !wanted.count(f.name)) {
            problems << "\n not in the model: " << f.name << " " << shape_to_string(f.shape);
            ++count;
        }
    if (count) throw mismatch_error(p, "the file does not fit this model (" + std::to_string(count) + " difference(s)):" + problems.str());

    for (const BufferRef& t : tensors) {
        const NamedTensor* f = a.find(t.name);
        std::copy(f->data.begin(), f->data.end(), t.value);
    }
    weights_changed(model);

    const NamedTensor* rin = a.find("__reference_input");
    const NamedTensor* rout = a.find("__reference_output");
    if (rin && rout) {
        if (rin->shape.size() != M::input_rank) throw format_error(p, "reference input has the wrong rank");
        Shape<M::input_rank> s{};
        std::copy(rin->shape.begin(), rin->shape.end(), s.begin());
        typename M::input_type x(s);
        std::copy(rin->data.begin(), rin->data.end(), x.data());
        const auto& y = model.forward(x);
        if (y.size() != rout->data.size()) throw mismatch_error(p, "reference output has another size than the model's");
        std::size_t worst = 0;
        double worst_err = -1;
        for (std::size_t i = 0; i < y.size(); ++i) {
            const double err = std::abs(double(y.data()[i]) - rout->data[i]) / std::max(1.0, std::abs(double(rout->data[i])));
            if (!(err <= worst_err)) {
                worst_err = err;
                worst = i;
            }
        }
        if (!(worst_err <= tolerance)) {
            std::ostringstream os;
            os << "the loaded weights do not reproduce the stored reference output: worst at position " << worst
               << " (of " << y.size() << "), file " << rout->data[worst] << ", model " << y.data()[worst]
               << " (relative error " << worst_err << ", tolerance " << tolerance << ")";
            throw mismatch_error(p, os.str());
        }
    }
    return a.meta;
}

}  // namespace typenet::io
