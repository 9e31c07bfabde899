/// @file io/tflite.hpp
/// Reading TensorFlow Lite models (`.tflite`, schema version 3) and dequantizing their weights.
///
/// Written from TensorFlow's public schema (`tensorflow/lite/schema/schema.fbs`) on top of
/// the bounds-checked `FlatBuffer` reader; no TensorFlow or flatbuffers dependency. It reads
/// the model's version and description, operator codes, subgraphs (tensors with shape, type,
/// buffer, name and quantization; inputs; outputs; operators with their inputs, outputs and
/// the builtin options of CONV_2D, DEPTHWISE_CONV_2D, AVERAGE/MAX_POOL_2D, ADD, RESHAPE,
/// SOFTMAX, FULLY_CONNECTED and MEAN), and the buffers' bytes. Every index is validated
/// (operator code, tensor, buffer), every buffer's size is checked against its tensor's shape
/// and type, and quantization parameters against the tensor's shape, so a corrupt file gives
/// `format_error(path, reason)`.
///
/// ```cpp
/// auto m = typenet::io::read_tflite("mobilenet_v2.tflite");
/// const auto& g = m.subgraphs[0];
/// const auto& op = g.operators[1];                        // CONV_2D
/// auto& conv = std::get<typenet::io::TfliteConvOptions>(op.options);
/// std::vector<float> w = typenet::io::dequantize(m, g.tensors[op.inputs[1]]);  // OHWI
/// ```
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/io/bytes.hpp"
#include "typenet/io/file.hpp"
#include "typenet/io/flatbuffer.hpp"

namespace typenet::io {

/// Element type of a tensor (schema `TensorType`).
enum class TfliteType : std::int8_t {
    float32 = 0,
    float16 = 1,
    int32 = 2,
    uint8 = 3,
    int64 = 4,
    string = 5,
    boolean = 6,
    int16 = 7,
    complex64 = 8,
    int8 = 9,
    float64 = 10,
    complex128 = 11,
    uint64 = 12,
    resource = 13,
    variant = 14,
    uint32 = 15,
    uint16 = 16,
    int4 = 17,
};

/// Builtin operator code (schema `BuiltinOperator`). Only the codes typenet uses are named;
/// any other code is kept as its number.
enum class TfliteOp : std::int32_t {
    add = 0,
    average_pool_2d = 1,
    concatenation = 2,
    conv_2d = 3,
    depthwise_conv_2d = 4,
    dequantize = 6,
    fully_connected = 9,
    logistic = 14,
    max_pool_2d = 17,
    mul = 18,
    relu = 19,
    relu6 = 21,
    reshape = 22,
    softmax = 25,
    custom = 32,
    pad = 34,
    mean = 40,
    quantize = 114,
};

/// Padding of convolutions and pooling (schema `Padding`).
enum class TflitePadding : std::int8_t { same = 0, valid = 1 };

/// Activation fused into an operator (schema `ActivationFunctionType`).
enum class TfliteActivation : std::int8_t { none = 0, relu = 1, relu_n1_to_1 = 2, relu6 = 3, tanh = 4, sign_bit = 5 };

/// The schema's name of a tensor type, e.g. "INT8".
inline std::string tflite_type_name(TfliteType t) {
    static constexpr const char* names[] = {"FLOAT32", "FLOAT16",  "INT32",     "UINT8",  "INT64",   "STRING",
                                            "BOOL",    "INT16",    "COMPLEX64", "INT8",   "FLOAT64", "COMPLEX128",
                                            "UINT64",  "RESOURCE", "VARIANT",   "UINT32", "UINT16",  "INT4"};
    const auto i = static_cast<int>(t);
    return i >= 0 && i < 18 ? names[i] : "TYPE_" + std::to_string(i);
}

/// The schema's name of an operator code, e.g. "CONV_2D" ("BUILTIN_n" for codes not named in `TfliteOp`).
inline std::string tflite_op_name(TfliteOp op) {
    switch (op) {
        case TfliteOp::add:
            return "ADD";
        case TfliteOp::average_pool_2d:
            return "AVERAGE_POOL_2D";
        case TfliteOp::concatenation:
            return "CONCATENATION";
        case TfliteOp::conv_2d:
            return "CONV_2D";
        case TfliteOp::depthwise_conv_2d:
            return "DEPTHWISE_CONV_2D";
        case TfliteOp::dequantize:
            return "DEQUANTIZE";
        case TfliteOp::fully_connected:
            return "FULLY_CONNECTED";
        case TfliteOp::logistic:
            return "LOGISTIC";
        case TfliteOp::max_pool_2d:
            return "MAX_POOL_2D";
        case TfliteOp::mul:
            return "MUL";
        case TfliteOp::relu:
            return "RELU";
        case TfliteOp::relu6:
            return "RELU6";
        case TfliteOp::reshape:
            return "RESHAPE";
        case TfliteOp::softmax:
            return "SOFTMAX";
        case TfliteOp::custom:
            return "CUSTOM";
        case TfliteOp::pad:
            return "PAD";
        case TfliteOp::mean:
            return "MEAN";
        case TfliteOp::quantize:
            return "QUANTIZE";
    }
    return "BUILTIN_" + std::to_string(static_cast<std::int32_t>(op));
}

/// Quantization of a tensor: `real = scale[c] * (q - zero_point[c])`, where `c` is the index
/// along `quantized_dimension` when there is one scale per channel, else 0.
struct TfliteQuantization {
    std::vector<float> min, max;
    std::vector<float> scale;
    std::vector<std::int64_t> zero_point;
    std::int32_t quantized_dimension = 0;

    /// Whether the tensor is quantized (has a scale).
    bool quantized() const noexcept { return !scale.empty(); }
    /// Whether there is one scale per channel of `quantized_dimension`.
    bool per_channel() const noexcept { return scale.size() > 1; }
};

/// A tensor of a subgraph.
struct TfliteTensor {
    std::string name;
    std::vector<std::int32_t> shape;
    TfliteType type = TfliteType::float32;
    /// Index into `TfliteModel::buffers`; that buffer is empty for activations.
    std::uint32_t buffer = 0;
    TfliteQuantization quantization;
    bool is_variable = false;
};

/// Options of CONV_2D.
struct TfliteConvOptions {
    TflitePadding padding = TflitePadding::same;
    std::int32_t stride_h = 1, stride_w = 1;
    std::int32_t dilation_h = 1, dilation_w = 1;
    TfliteActivation activation = TfliteActivation::none;
};

/// Options of DEPTHWISE_CONV_2D.
struct TfliteDepthwiseOptions {
    TflitePadding padding = TflitePadding::same;
    std::int32_t stride_h = 1, stride_w = 1;
    std::int32_t dilation_h = 1, dilation_w = 1;
    std::int32_t depth_multiplier = 1;
    TfliteActivation activation = TfliteActivation::none;
};

/// Options of AVERAGE_POOL_2D and MAX_POOL_2D.
struct TflitePoolOptions {
    TflitePadding padding = TflitePadding::same;
    std::int32_t stride_h = 1, stride_w = 1;
    std::int32_t filter_h = 1, filter_w = 1;
    TfliteActivation activation = TfliteActivation::none;
};

/// Options of ADD.
struct TfliteAddOptions {
    TfliteActivation activation = TfliteActivation::none;
};

/// Options of FULLY_CONNECTED.
struct TfliteFullyConnectedOptions {
    TfliteActivation activation = TfliteActivation::none;
    bool keep_num_dims = false;
};

/// Options of SOFTMAX.
struct TfliteSoftmaxOptions {
    float beta = 1.0f;
};

/// Options of RESHAPE.
struct TfliteReshapeOptions {
    std::vector<std::int32_t> new_shape;
};

/// Options of MEAN (and the other reductions).
struct TfliteReducerOptions {
    bool keep_dims = false;
};

/// The builtin options of an operator: `std::monostate` when it has none, or none that typenet
/// reads (QUANTIZE and DEQUANTIZE have none).
using TfliteOptions =
    std::variant<std::monostate, TfliteConvOptions, TfliteDepthwiseOptions, TflitePoolOptions, TfliteAddOptions,
                 TfliteFullyConnectedOptions, TfliteSoftmaxOptions, TfliteReshapeOptions, TfliteReducerOptions>;

/// An operator code of the model.
struct TfliteOperatorCode {
    /// The builtin code: the larger of the schema's `deprecated_builtin_code` (int8, the
    /// only field of old files) and `builtin_code` (int32, for codes of 127 and above).
    TfliteOp builtin = TfliteOp::add;
    /// Name of a custom operator (builtin is CUSTOM).
    std::string custom_code;
    std::int32_t version = 1;
};

/// An operator of a subgraph, in execution order.
struct TfliteOperator {
    /// Index into `TfliteModel::operator_codes`.
    std::uint32_t opcode_index = 0;
    /// Its builtin code (`operator_codes[opcode_index].builtin`).
    TfliteOp op = TfliteOp::add;
    /// Tensor indices; -1 marks an omitted optional input.
    std::vector<std::int32_t> inputs, outputs;
    TfliteOptions options;
};

/// A subgraph (the first one is the model).
struct TfliteSubgraph {
    std::string name;
    std::vector<TfliteTensor> tensors;
    std::vector<std::int32_t> inputs, outputs;
    std::vector<TfliteOperator> operators;
};

/// A `.tflite` model.
struct TfliteModel {
    /// The file it was read from (for error messages).
    std::string path;
    /// Schema version (3).
    std::uint32_t version = 0;
    std::string description;
    std::vector<TfliteOperatorCode> operator_codes;
    std::vector<TfliteSubgraph> subgraphs;
    /// Raw little-endian contents of each buffer; buffer 0 is always empty.
    std::vector<std::vector<std::uint8_t>> buffers;
};

namespace detail {

/// Bytes per element of a tensor type; 0 for types without a fixed size.
inline std::size_t tflite_type_size(TfliteType t) noexcept {
    switch (t) {
        case TfliteType::float32:
        case TfliteType::int32:
        case TfliteType::uint32:
            return 4;
        case TfliteType::float16:
        case TfliteType::int16:
        case TfliteType::uint16:
            return 2;
        case TfliteType::uint8:
        case TfliteType::int8:
        case TfliteType::boolean:
            return 1;
        case TfliteType::int64:
        case TfliteType::uint64:
        case TfliteType::float64:
        case TfliteType::complex64:
            return 8;
        case TfliteType::complex128:
            return 16;
        default:
            return 0;
    }
}

/// Reads the model's tables, prefixing errors with where they occurred.
class TfliteParser {
public:
    TfliteParser(std::span<const std::byte> bytes, const std::string& name) : fb_(bytes, name) {}

    TfliteModel parse() {
        TfliteModel m;
        m.path = fb_.name();
        const FlatTable root = fb_.root();
        if (fb_.identifier() != "TFL3")
            fb_.fail("not a TFLite model (file identifier '" + printable(fb_.identifier()) + "', expected 'TFL3')");
        m.version = root.scalar<std::uint32_t>(0, 0);
        if (m.version != 3)
            fb_.fail("unsupported TFLite schema version " + std::to_string(m.version) + " (expected 3)");
        m.description = root.string(3);
        for (const FlatTable& t : root.tables(1)) {
            fb_.charge(sizeof(TfliteOperatorCode));
            m.operator_codes.push_back(operator_code(t));
        }
        const auto buffers = root.tables(4);
        m.buffers.reserve(buffers.size());
        for (std::size_t i = 0; i < buffers.size(); ++i)
            in("buffer " + std::to_string(i), [&] { m.buffers.push_back(buffer(buffers[i])); });
        const auto subgraphs = root.tables(2);
        if (subgraphs.empty()) fb_.fail("the model has no subgraph");
        for (std::size_t s = 0; s < subgraphs.size(); ++s)
            in("subgraph " + std::to_string(s), [&] { m.subgraphs.push_back(subgraph(subgraphs[s], m)); });
        return m;
    }

private:
    /// Run `f`, prefixing the reason of any format_error with `where`.
    template <class F>
    void in(const std::string& where, F&& f) {
        try {
            f();
        } catch (const format_error& e) {
            throw format_error(e.path(), where + ": " + e.reason());
        }
    }

    static std::string printable(const std::string& s) {
        std::string out;
        for (char c : s) out += (c >= 32 && c < 127) ? c : '?';
        return out;
    }

    TfliteOperatorCode operator_code(const FlatTable& t) {
        TfliteOperatorCode c;
        const auto deprecated = t.scalar<std::int8_t>(0, 0);
        const auto code = t.scalar<std::int32_t>(3, 0);
        c.builtin = static_cast<TfliteOp>(std::max<std::int32_t>(deprecated, code));
        c.custom_code = t.string(1);
        c.version = t.scalar<std::int32_t>(2, 1);
        if (static_cast<std::int32_t>(c.builtin) < 0) fb_.fail("negative operator code");
        return c;
    }

    std::vector<std::uint8_t> buffer(const FlatTable& t) {
        std::span<const std::byte> data = t.bytes(0);
        // Models over 2 GiB keep buffers outside the flatbuffer: offset from the file start and size.
        const auto offset = t.scalar<std::uint64_t>(1, 0);
        const auto size = t.scalar<std::uint64_t>(2, 0);
        if (offset > 1) {
            if (offset > fb_.bytes().size() || size > fb_.bytes().size() - offset)
                fb_.fail("data at offset " + std::to_string(offset) + " (" + std::to_string(size) +
                         " bytes) lies outside the file");
            data = fb_.bytes().subspan(static_cast<std::size_t>(offset), static_cast<std::size_t>(size));
        }
        fb_.charge(sizeof(std::vector<std::uint8_t>) + data.size());
        std::vector<std::uint8_t> out(data.size());
        if (!data.empty()) std::memcpy(out.data(), data.data(), data.size());
        return out;
    }

    TfliteQuantization quantization(const FlatTable& q) {
        TfliteQuantization r;
        r.min = q.vector<float>(0);
        r.max = q.vector<float>(1);
        r.scale = q.vector<float>(2);
        r.zero_point = q.vector<std::int64_t>(3);
        r.quantized_dimension = q.scalar<std::int32_t>(6, 0);
        return r;
    }

    TfliteTensor tensor(const FlatTable& t, const TfliteModel& m) {
        fb_.charge(sizeof(TfliteTensor));
        TfliteTensor x;
        x.name = t.string(3);
        x.shape = t.vector<std::int32_t>(0);
        const auto type = t.scalar<std::int8_t>(1, 0);
        if (type < 0 || type > 17) fb_.fail("unknown tensor type " + std::to_string(type));
        x.type = static_cast<TfliteType>(type);
        x.buffer = t.scalar<std::uint32_t>(2, 0);
        if (auto q = t.table(4)) x.quantization = quantization(*q);
        x.is_variable = t.scalar<bool>(5, false);

        for (auto d : x.shape)
            if (d < 0) fb_.fail("negative extent in shape " + shape_text(x.shape));
        if (x.buffer >= m.buffers.size())
            fb_.fail("buffer index " + std::to_string(x.buffer) + " out of range (" + std::to_string(m.buffers.size()) +
                     " buffers)");
        const auto& data = m.buffers[x.buffer];
        const std::size_t elem = tflite_type_size(x.type);
        if (!data.empty() && elem != 0) {
            const auto count = checked_product(x.shape);
            const auto need = count ? checked_mul(*count, elem) : std::nullopt;
            if (!need || *need != data.size())
                fb_.fail("shape " + shape_text(x.shape) + " of " + tflite_type_name(x.type) + " needs " +
                         (need ? std::to_string(*need) : std::string("too many")) + " bytes, its buffer " +
                         std::to_string(x.buffer) + " holds " + std::to_string(data.size()));
        }
        const auto& q = x.quantization;
        for (float s : q.scale)
            if (!std::isfinite(s)) fb_.fail("non-finite quantization scale");
        if (!q.zero_point.empty() && q.zero_point.size() != q.scale.size())
            fb_.fail(std::to_string(q.scale.size()) + " quantization scales but " +
                     std::to_string(q.zero_point.size()) + " zero points");
        if (q.per_channel()) {
            const auto d = q.quantized_dimension;
            if (d < 0 || static_cast<std::size_t>(d) >= x.shape.size() ||
                static_cast<std::size_t>(x.shape[static_cast<std::size_t>(d)]) != q.scale.size())
                fb_.fail(std::to_string(q.scale.size()) + " per-channel scales do not match dimension " +
                         std::to_string(d) + " of shape " + shape_text(x.shape));
        }
        return x;
    }

    static TfliteActivation activation(const FlatBuffer& fb, std::int8_t a) {
        if (a < 0 || a > 5) fb.fail("unknown fused activation " + std::to_string(a));
        return static_cast<TfliteActivation>(a);
    }
    static TflitePadding padding(const FlatBuffer& fb, std::int8_t p) {
        if (p < 0 || p > 1) fb.fail("unknown padding " + std::to_string(p));
        return static_cast<TflitePadding>(p);
    }
    static void positive(const FlatBuffer& fb, const char* what, std::int32_t v) {
        if (v < 1) fb.fail(std::string(what) + " " + std::to_string(v) + " (must be at least 1)");
    }

    // The schema's union tag of the options each operator takes (0: none that typenet reads).
    static std::uint8_t options_tag(TfliteOp op) {
        switch (op) {
            case TfliteOp::conv_2d:
                return 1;
            case TfliteOp::depthwise_conv_2d:
                return 2;
            case TfliteOp::average_pool_2d:
            case TfliteOp::max_pool_2d:
                return 5;
            case TfliteOp::fully_connected:
                return 8;
            case TfliteOp::softmax:
                return 9;
            case TfliteOp::add:
                return 11;
            case TfliteOp::reshape:
                return 17;
            case TfliteOp::mean:
                return 27;
            case TfliteOp::dequantize:
                return 38;
            case TfliteOp::quantize:
                return 89;
            default:
                return 0;
        }
    }

    TfliteOptions options(TfliteOp op, const FlatTable& t) {
        const std::uint8_t expected = options_tag(op);
        if (expected == 0) return std::monostate{};
        const auto tag = t.scalar<std::uint8_t>(3, 0);
        const auto table = t.table(4);
        const bool required = op == TfliteOp::conv_2d || op == TfliteOp::depthwise_conv_2d ||
                              op == TfliteOp::average_pool_2d || op == TfliteOp::max_pool_2d;
        if (tag == 0 || !table) {
            if (required) fb_.fail(tflite_op_name(op) + " has no options");
            return std::monostate{};
        }
        if (tag != expected)
            fb_.fail(tflite_op_name(op) + " has builtin options of the wrong type (" + std::to_string(tag) +
                     ", expected " + std::to_string(expected) + ")");
        const FlatTable& o = *table;
        switch (op) {
            case TfliteOp::conv_2d: {
                TfliteConvOptions c;
                c.padding = padding(fb_, o.scalar<std::int8_t>(0, 0));
                c.stride_w = o.scalar<std::int32_t>(1, 0);
                c.stride_h = o.scalar<std::int32_t>(2, 0);
                c.activation = activation(fb_, o.scalar<std::int8_t>(3, 0));
                c.dilation_w = o.scalar<std::int32_t>(4, 1);
                c.dilation_h = o.scalar<std::int32_t>(5, 1);
                for (auto [what, v] : {std::pair{"stride", c.stride_h},
                                       {"stride", c.stride_w},
                                       {"dilation", c.dilation_h},
                                       {"dilation", c.dilation_w}})
                    positive(fb_, what, v);
                return c;
            }
            case TfliteOp::depthwise_conv_2d: {
                TfliteDepthwiseOptions c;
                c.padding = padding(fb_, o.scalar<std::int8_t>(0, 0));
                c.stride_w = o.scalar<std::int32_t>(1, 0);
                c.stride_h = o.scalar<std::int32_t>(2, 0);
                c.depth_multiplier = o.scalar<std::int32_t>(3, 0);
                c.activation = activation(fb_, o.scalar<std::int8_t>(4, 0));
                c.dilation_w = o.scalar<std::int32_t>(5, 1);
                c.dilation_h = o.scalar<std::int32_t>(6, 1);
                for (auto [what, v] : {std::pair{"stride", c.stride_h},
                                       {"stride", c.stride_w},
                                       {"dilation", c.dilation_h},
                                       {"dilation", c.dilation_w}})
                    positive(fb_, what, v);
                return c;
            }
            case TfliteOp::average_pool_2d:
            case TfliteOp::max_pool_2d: {
                TflitePoolOptions p;
                p.padding = padding(fb_, o.scalar<std::int8_t>(0, 0));
                p.stride_w = o.scalar<std::int32_t>(1, 0);
                p.stride_h = o.scalar<std::int32_t>(2, 0);
                p.filter_w = o.scalar<std::int32_t>(3, 0);
                p.filter_h = o.scalar<std::int32_t>(4, 0);
                p.activation = activation(fb_, o.scalar<std::int8_t>(5, 0));
                for (auto [what, v] : {std::pair{"stride", p.stride_h},
                                       {"stride", p.stride_w},
                                       {"filter size", p.filter_h},
                                       {"filter size", p.filter_w}})
                    positive(fb_, what, v);
                return p;
            }
            case TfliteOp::fully_connected: {
                TfliteFullyConnectedOptions f;
                f.activation = activation(fb_, o.scalar<std::int8_t>(0, 0));
                f.keep_num_dims = o.scalar<bool>(2, false);
                return f;
            }
            case TfliteOp::softmax: {
                TfliteSoftmaxOptions s;
                s.beta = o.scalar<float>(0, 0.0f);
                if (!std::isfinite(s.beta)) fb_.fail("non-finite softmax beta");
                return s;
            }
            case TfliteOp::add:
                return TfliteAddOptions{activation(fb_, o.scalar<std::int8_t>(0, 0))};
            case TfliteOp::reshape:
                return TfliteReshapeOptions{o.vector<std::int32_t>(0)};
            case TfliteOp::mean:
                return TfliteReducerOptions{o.scalar<bool>(0, false)};
            default:
                return std::monostate{};  // QUANTIZE, DEQUANTIZE: empty tables
        }
    }

    TfliteOperator parse_operator(const FlatTable& t, const TfliteModel& m, std::size_t n_tensors) {
        fb_.charge(sizeof(TfliteOperator));
        TfliteOperator o;
        o.opcode_index = t.scalar<std::uint32_t>(0, 0);
        if (o.opcode_index >= m.operator_codes.size())
            fb_.fail("operator code index " + std::to_string(o.opcode_index) + " out of range (" +
                     std::to_string(m.operator_codes.size()) + " codes)");
        o.op = m.operator_codes[o.opcode_index].builtin;
        o.inputs = t.vector<std::int32_t>(1);
        o.outputs = t.vector<std::int32_t>(2);
        check_indices(o.inputs, n_tensors, "input");
        check_indices(o.outputs, n_tensors, "output");
        o.options = options(o.op, t);
        return o;
    }

    void check_indices(const std::vector<std::int32_t>& v, std::size_t n_tensors, const char* what) {
        for (auto i : v)
            if (i < -1 || i >= static_cast<std::int64_t>(n_tensors))
                fb_.fail(std::string(what) + " tensor index " + std::to_string(i) + " out of range (" +
                         std::to_string(n_tensors) + " tensors)");
    }

    TfliteSubgraph subgraph(const FlatTable& t, const TfliteModel& m) {
        fb_.charge(sizeof(TfliteSubgraph));
        TfliteSubgraph g;
        g.name = t.string(4);
        const auto tensors = t.tables(0);
        g.tensors.reserve(tensors.size());
        for (std::size_t i = 0; i < tensors.size(); ++i)
            in("tensor " + std::to_string(i), [&] { g.tensors.push_back(tensor(tensors[i], m)); });
        g.inputs = t.vector<std::int32_t>(1);
        g.outputs = t.vector<std::int32_t>(2);
        in("inputs", [&] { check_indices(g.inputs, g.tensors.size(), "input"); });
        in("outputs", [&] { check_indices(g.outputs, g.tensors.size(), "output"); });
        const auto ops = t.tables(3);
        g.operators.reserve(ops.size());
        for (std::size_t i = 0; i < ops.size(); ++i)
            in("operator " + std::to_string(i),
               [&] { g.operators.push_back(parse_operator(ops[i], m, g.tensors.size())); });
        return g;
    }

    static std::string shape_text(const std::vector<std::int32_t>& s) {
        std::string out = "[";
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (i) out += ", ";
            out += std::to_string(s[i]);
        }
        return out + "]";
    }

    FlatBuffer fb_;
};

}  // namespace detail

/// Parse the bytes of a `.tflite` file; `name` (the file path) appears in errors.
/// Throws `format_error` for anything that is not a well-formed TFLite model.
inline TfliteModel parse_tflite(std::span<const std::byte> bytes, const std::string& name) {
    return detail::TfliteParser(bytes, name).parse();
}

/// Read a `.tflite` file. Throws `io_error` if it cannot be read, `format_error` if it is not
/// a well-formed TFLite model.
inline TfliteModel read_tflite(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_tflite(bytes, path.string());
}

/// The values of constant tensor `t` of `m` as floats, in the tensor's own (row-major) layout:
/// FLOAT32 as stored; INT8, UINT8, INT16, INT32 and INT64 dequantized with their per-tensor or
/// per-channel scale and zero point (`real = scale[c] * (q - zero_point[c])`, computed in double).
/// Throws `format_error(m.path, reason)` if the tensor has no data (an activation), is an
/// integer tensor without a scale, or has a type that cannot be dequantized.
inline std::vector<float> dequantize(const TfliteModel& m, const TfliteTensor& t) {
    auto fail = [&](const std::string& why) -> void {
        throw format_error(m.path, "cannot dequantize tensor '" + t.name + "': " + why);
    };
    if (t.buffer >= m.buffers.size()) fail("buffer index out of range");
    const auto& raw = m.buffers[t.buffer];
    if (raw.empty()) fail("it has no data (it is computed at run time)");
    const std::size_t elem = detail::tflite_type_size(t.type);
    const auto count = checked_product(t.shape);
    const auto nbytes = count ? checked_mul(*count, elem) : std::nullopt;
    if (elem == 0 || !nbytes || *nbytes != raw.size())
        fail("its buffer does not hold its shape of " + tflite_type_name(t.type));
    const auto* bytes = reinterpret_cast<const std::byte*>(raw.data());
    std::vector<float> out(*count);
    if (t.type == TfliteType::float32) {
        load_floats_le(bytes, *count, out.data());
        return out;
    }
    const auto& q = t.quantization;
    if (!q.quantized()) fail(tflite_type_name(t.type) + " tensor without a quantization scale");
    // Channel of flat index i: (i / inner) % channels, with inner the product of the later extents.
    std::size_t inner = 1, channels = 1;
    if (q.per_channel()) {
        const auto d = static_cast<std::size_t>(q.quantized_dimension);
        if (d >= t.shape.size() || static_cast<std::size_t>(t.shape[d]) != q.scale.size())
            fail("per-channel scales do not match its shape");
        channels = q.scale.size();
        for (std::size_t k = d + 1; k < t.shape.size(); ++k) inner *= static_cast<std::size_t>(t.shape[k]);
    }
    auto convert = [&](auto tag) {
        using T = decltype(tag);
        for (std::size_t i = 0; i < out.size(); ++i) {
            const std::size_t c = q.per_channel() ? (i / inner) % channels : 0;
            const double zp = q.zero_point.empty() ? 0.0 : static_cast<double>(q.zero_point[c]);
            const double v = static_cast<double>(load_le<T>(bytes + i * sizeof(T)));
            out[i] = static_cast<float>(static_cast<double>(q.scale[c]) * (v - zp));
        }
    };
    switch (t.type) {
        case TfliteType::int8:
            convert(std::int8_t{});
            break;
        case TfliteType::uint8:
            convert(std::uint8_t{});
            break;
        case TfliteType::int16:
            convert(std::int16_t{});
            break;
        case TfliteType::int32:
            convert(std::int32_t{});
            break;
        case TfliteType::int64:
            convert(std::int64_t{});
            break;
        default:
            fail("type " + tflite_type_name(t.type) + " cannot be dequantized");
    }
    return out;
}

}  // namespace typenet::io
