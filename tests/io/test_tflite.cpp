// Tests of io/flatbuffer.hpp and io/tflite.hpp on small models built field by field with the
// test writer flatbuffer_builder.hpp: every expected value below is what was written, and
// every dequantized value is worked out by hand in the comments.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "io/flatbuffer_builder.hpp"
#include "typenet/core/random.hpp"
#include "typenet/io/tflite.hpp"

using namespace typenet;
using io::TfliteOp;

namespace {

using fbb::ref;
using fbb::scalar;

// The pieces of a model, to be changed by a test before `build`.
struct Parts {
    std::string ident = "TFL3";
    std::uint32_t version = 3;
    std::vector<fbb::NodePtr> opcodes, buffers, tensors, operators;
    std::vector<std::int32_t> inputs{0}, outputs{6};
};

fbb::NodePtr opcode(std::vector<std::pair<int, fbb::Field>> fields) {
    return fbb::table(std::move(fields));
}

fbb::NodePtr buffer(std::vector<std::uint8_t> bytes) {
    if (bytes.empty()) return fbb::table({});
    return fbb::table({{0, ref(fbb::vec(bytes))}});
}

template <class T>
std::vector<std::uint8_t> raw(const std::vector<T>& v) {
    std::vector<std::uint8_t> b(v.size() * sizeof(T));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

fbb::NodePtr quant(std::vector<float> scale, std::vector<std::int64_t> zp, std::int32_t dim) {
    return fbb::table({{2, ref(fbb::vec(scale))}, {3, ref(fbb::vec(zp))}, {6, scalar(dim)}});
}

fbb::NodePtr tensor(const std::string& name, std::vector<std::int32_t> shape, std::int8_t type, std::uint32_t buf,
                    fbb::NodePtr q = nullptr) {
    std::vector<std::pair<int, fbb::Field>> f{
        {0, ref(fbb::vec(shape))}, {1, scalar(type)}, {2, scalar(buf)}, {3, ref(fbb::str(name))}};
    if (q) f.push_back({4, ref(q)});
    return fbb::table(std::move(f));
}

fbb::NodePtr op(std::uint32_t code, std::vector<std::int32_t> in, std::vector<std::int32_t> out, std::uint8_t tag = 0,
                fbb::NodePtr options = nullptr) {
    std::vector<std::pair<int, fbb::Field>> f{{0, scalar(code)}, {1, ref(fbb::vec(in))}, {2, ref(fbb::vec(out))}};
    if (tag) f.push_back({3, scalar(tag)});
    if (options) f.push_back({4, ref(options)});
    return fbb::table(std::move(f));
}

Parts sample() {
    Parts p;
    p.opcodes = {
        opcode({{0, scalar<std::int8_t>(3)}}),                                    // 0: CONV_2D, old file: int8 only
        opcode({{0, scalar<std::int8_t>(4)}, {3, scalar<std::int32_t>(4)}}),      // 1: DEPTHWISE_CONV_2D, both
        opcode({{0, scalar<std::int8_t>(127)}, {3, scalar<std::int32_t>(150)}}),  // 2: code 150 (> 127)
        opcode({}),                                                               // 3: ADD (all defaults)
        opcode({{0, scalar<std::int8_t>(114)}, {3, scalar<std::int32_t>(114)}}),  // 4: QUANTIZE
        opcode({{0, scalar<std::int8_t>(1)}}),                                    // 5: AVERAGE_POOL_2D
        opcode({{0, scalar<std::int8_t>(22)}, {3, scalar<std::int32_t>(22)}}),    // 6: RESHAPE
        opcode({{0, scalar<std::int8_t>(25)}, {3, scalar<std::int32_t>(25)}}),    // 7: SOFTMAX
        opcode({{0, scalar<std::int8_t>(9)}, {3, scalar<std::int32_t>(9)}}),      // 8: FULLY_CONNECTED
        opcode({{0, scalar<std::int8_t>(40)}, {3, scalar<std::int32_t>(40)}}),    // 9: MEAN
        opcode({{0, scalar<std::int8_t>(32)},
                {1, ref(fbb::str("MyOp"))},
                {2, scalar<std::int32_t>(2)},
                {3, scalar<std::int32_t>(32)}}),  // 10: CUSTOM
    };
    p.buffers = {
        buffer({}),
        buffer(raw(std::vector<std::int8_t>{-128, 0, 127, 5, -5, 10})),
        buffer(raw(std::vector<std::int32_t>{100, -200, 7})),
        buffer({0, 128, 255, 3}),
        buffer(raw(std::vector<float>{1.5f, -2.0f})),
        buffer(raw(std::vector<std::int8_t>{1, 2, 3, 4, 5, 6})),
    };
    p.tensors = {
        tensor("input", {1, 4, 4, 2}, 0, 0),
        tensor("conv/weights", {3, 1, 1, 2}, 9, 1, quant({0.5f, 0.25f, 2.0f}, {0, 1, -2}, 0)),
        tensor("conv/bias", {3}, 2, 2, quant({0.5f, 0.25f, 0.125f}, {0, 0, 0}, 0)),
        tensor("u8", {2, 2}, 3, 3, quant({0.5f}, {128}, 0)),
        tensor("f32", {2}, 0, 4),
        tensor("last_dim", {2, 3}, 9, 5, quant({1.0f, 0.5f, 4.0f}, {}, 1)),
        tensor("output", {1, 2, 2, 3}, 0, 0),
    };
    p.operators = {
        op(0, {0, 1, 2}, {6}, 1,
           fbb::table({{0, scalar<std::int8_t>(1)},
                       {1, scalar<std::int32_t>(1)},
                       {2, scalar<std::int32_t>(2)},
                       {3, scalar<std::int8_t>(3)}})),
        op(1, {6, -1}, {6}, 2,
           fbb::table({{0, scalar<std::int8_t>(0)},
                       {1, scalar<std::int32_t>(2)},
                       {2, scalar<std::int32_t>(2)},
                       {3, scalar<std::int32_t>(1)},
                       {4, scalar<std::int8_t>(1)},
                       {5, scalar<std::int32_t>(2)},
                       {6, scalar<std::int32_t>(3)}})),
        op(5, {6}, {6}, 5,
           fbb::table({{0, scalar<std::int8_t>(1)},
                       {1, scalar<std::int32_t>(1)},
                       {2, scalar<std::int32_t>(1)},
                       {3, scalar<std::int32_t>(7)},
                       {4, scalar<std::int32_t>(5)},
                       {5, scalar<std::int8_t>(0)}})),
        op(3, {6, 6}, {6}, 11, fbb::table({{0, scalar<std::int8_t>(3)}})),
        op(6, {6}, {6}, 17, fbb::table({{0, ref(fbb::vec(std::vector<std::int32_t>{1, -1}))}})),
        op(7, {6}, {6}, 9, fbb::table({{0, scalar(0.5f)}})),
        op(8, {6, 1}, {6}, 8, fbb::table({{0, scalar<std::int8_t>(1)}, {2, scalar<std::uint8_t>(1)}})),
        op(9, {6}, {6}, 27, fbb::table({{0, scalar<std::uint8_t>(1)}})),
        op(4, {6}, {6}, 89, fbb::table({})),
        op(2, {6}, {6}),
        op(10, {6}, {6}),
    };
    return p;
}

std::vector<std::byte> build(const Parts& p) {
    auto subgraph = fbb::table({{0, ref(fbb::tables(p.tensors))},
                                {1, ref(fbb::vec(p.inputs))},
                                {2, ref(fbb::vec(p.outputs))},
                                {3, ref(fbb::tables(p.operators))},
                                {4, ref(fbb::str("main"))}});
    auto model = fbb::table({{0, scalar(p.version)},
                             {1, ref(fbb::tables(p.opcodes))},
                             {2, ref(fbb::tables({subgraph}))},
                             {3, ref(fbb::str("synthetic"))},
                             {4, ref(fbb::tables(p.buffers))}});
    return fbb::finish(model, p.ident);
}

std::string tflite_error(const std::vector<std::byte>& b) {
    try {
        io::parse_tflite(b, "m.tflite");
    } catch (const format_error& e) {
        CHECK(e.path() == "m.tflite");
        return e.reason();
    }
    return "";
}

}  // namespace

TEST_CASE("parse_tflite reads version, operator codes, tensors, buffers and subgraph") {
    const auto m = io::parse_tflite(build(sample()), "m.tflite");
    CHECK(m.path == "m.tflite");
    CHECK(m.version == 3);
    CHECK(m.description == "synthetic");
    REQUIRE(m.operator_codes.size() == 11);
    // builtin = max(deprecated_builtin_code, builtin_code)
    CHECK(m.operator_codes[0].builtin == TfliteOp::conv_2d);
    CHECK(m.operator_codes[1].builtin == TfliteOp::depthwise_conv_2d);
    CHECK(static_cast<int>(m.operator_codes[2].builtin) == 150);
    CHECK(io::tflite_op_name(m.operator_codes[2].builtin) == "BUILTIN_150");
    CHECK(m.operator_codes[3].builtin == TfliteOp::add);
    CHECK(m.operator_codes[4].builtin == TfliteOp::quantize);
    CHECK(m.operator_codes[5].builtin == TfliteOp::average_pool_2d);
    CHECK(m.operator_codes[10].builtin == TfliteOp::custom);
    CHECK(m.operator_codes[10].custom_code == "MyOp");
    CHECK(m.operator_codes[10].version == 2);
    CHECK(m.operator_codes[0].version == 1);  // default

    REQUIRE(m.subgraphs.size() == 1);
    const auto& g = m.subgraphs[0];
    CHECK(g.name == "main");
    CHECK(g.inputs == std::vector<std::int32_t>{0});
    CHECK(g.outputs == std::vector<std::int32_t>{6});
    REQUIRE(g.tensors.size() == 7);
    const auto& w = g.tensors[1];
    CHECK(w.name == "conv/weights");
    CHECK(w.shape == std::vector<std::int32_t>{3, 1, 1, 2});
    CHECK(w.type == io::TfliteType::int8);
    CHECK(w.buffer == 1);
    CHECK(w.quantization.scale == std::vector<float>{0.5f, 0.25f, 2.0f});
    CHECK(w.quantization.zero_point == std::vector<std::int64_t>{0, 1, -2});
    CHECK(w.quantization.quantized_dimension == 0);
    CHECK(w.quantization.per_channel());
    CHECK(!g.tensors[0].quantization.quantized());
    CHECK(g.tensors[5].quantization.quantized_dimension == 1);

    REQUIRE(m.buffers.size() == 6);
    CHECK(m.buffers[0].empty());
    CHECK(m.buffers[3] == std::vector<std::uint8_t>{0, 128, 255, 3});
}

TEST_CASE("parse_tflite reads the builtin options of each operator") {
    const auto m = io::parse_tflite(build(sample()), "m.tflite");
    const auto& ops = m.subgraphs[0].operators;
    REQUIRE(ops.size() == 11);

    CHECK(ops[0].op == TfliteOp::conv_2d);
    CHECK(ops[0].inputs == std::vector<std::int32_t>{0, 1, 2});
    CHECK(ops[0].outputs == std::vector<std::int32_t>{6});
    const auto& conv = std::get<io::TfliteConvOptions>(ops[0].options);
    CHECK(conv.padding == io::TflitePadding::valid);
    CHECK(conv.stride_w == 1);
    CHECK(conv.stride_h == 2);
    CHECK(conv.activation == io::TfliteActivation::relu6);
    CHECK(conv.dilation_h == 1);  // absent: schema default
    CHECK(conv.dilation_w == 1);

    CHECK(ops[1].inputs == std::vector<std::int32_t>{6, -1});
    const auto& dw = std::get<io::TfliteDepthwiseOptions>(ops[1].options);
    CHECK(dw.padding == io::TflitePadding::same);
    CHECK(dw.stride_h == 2);
    CHECK(dw.stride_w == 2);
    CHECK(dw.depth_multiplier == 1);
    CHECK(dw.activation == io::TfliteActivation::relu);
    CHECK(dw.dilation_w == 2);
    CHECK(dw.dilation_h == 3);

    const auto& pool = std::get<io::TflitePoolOptions>(ops[2].options);
    CHECK(pool.padding == io::TflitePadding::valid);
    CHECK(pool.filter_w == 7);
    CHECK(pool.filter_h == 5);
    CHECK(pool.stride_h == 1);
    CHECK(pool.activation == io::TfliteActivation::none);

    CHECK(std::get<io::TfliteAddOptions>(ops[3].options).activation == io::TfliteActivation::relu6);
    CHECK(std::get<io::TfliteReshapeOptions>(ops[4].options).new_shape == std::vector<std::int32_t>{1, -1});
    CHECK(std::get<io::TfliteSoftmaxOptions>(ops[5].options).beta == 0.5f);
    const auto& fc = std::get<io::TfliteFullyConnectedOptions>(ops[6].options);
    CHECK(fc.activation == io::TfliteActivation::relu);
    CHECK(fc.keep_num_dims);
    CHECK(std::get<io::TfliteReducerOptions>(ops[7].options).keep_dims);
    CHECK(ops[8].op == TfliteOp::quantize);
    CHECK(std::holds_alternative<std::monostate>(ops[8].options));
    CHECK(static_cast<int>(ops[9].op) == 150);
    CHECK(std::holds_alternative<std::monostate>(ops[9].options));
    CHECK(ops[10].op == TfliteOp::custom);
}

TEST_CASE("dequantize: per-channel on any dimension, per-tensor, int32 biases, float32") {
    const auto m = io::parse_tflite(build(sample()), "m.tflite");
    const auto& t = m.subgraphs[0].tensors;
    // int8 [3,1,1,2], dimension 0: scale {0.5, 0.25, 2}, zero point {0, 1, -2}
    // channel 0: 0.5*(-128-0), 0.5*(0-0); channel 1: 0.25*(127-1), 0.25*(5-1); channel 2: 2*(-5+2), 2*(10+2)
    CHECK(io::dequantize(m, t[1]) == std::vector<float>{-64.0f, 0.0f, 31.5f, 1.0f, -6.0f, 24.0f});
    // int32 [3]: 100*0.5, -200*0.25, 7*0.125
    CHECK(io::dequantize(m, t[2]) == std::vector<float>{50.0f, -50.0f, 0.875f});
    // uint8 per tensor, scale 0.5, zero point 128: (0, 128, 255, 3) -> -64, 0, 63.5, -62.5
    CHECK(io::dequantize(m, t[3]) == std::vector<float>{-64.0f, 0.0f, 63.5f, -62.5f});
    CHECK(io::dequantize(m, t[4]) == std::vector<float>{1.5f, -2.0f});
    // int8 [2,3], dimension 1 (channel = index % 3), scale {1, 0.5, 4}, no zero points
    CHECK(io::dequantize(m, t[5]) == std::vector<float>{1.0f, 1.0f, 12.0f, 4.0f, 2.5f, 24.0f});
    CHECK_THROWS_WITH_AS(io::dequantize(m, t[0]),
                         "m.tflite: cannot dequantize tensor 'input': it has no data (it is computed at run time)",
                         format_error);
}

TEST_CASE("parse_tflite refuses inconsistent models with a reason") {
    auto expect = [](const Parts& p, const std::string& reason) {
        CAPTURE(reason);
        CHECK(tflite_error(build(p)) == reason);
    };
    Parts p = sample();
    p.ident = "TFL2";
    expect(p, "not a TFLite model (file identifier 'TFL2', expected 'TFL3')");
    p = sample();
    p.version = 2;
    expect(p, "unsupported TFLite schema version 2 (expected 3)");
    p = sample();
    p.operators[3] = op(99, {6, 6}, {6});
    expect(p, "subgraph 0: operator 3: operator code index 99 out of range (11 codes)");
    p = sample();
    p.operators[0] = op(3, {0, 7}, {6});
    expect(p, "subgraph 0: operator 0: input tensor index 7 out of range (7 tensors)");
    p = sample();
    p.outputs = {-2};
    expect(p, "subgraph 0: outputs: output tensor index -2 out of range (7 tensors)");
    p = sample();
    p.tensors[1] = tensor("conv/weights", {3, 1, 1, 3}, 9, 1);
    expect(p, "subgraph 0: tensor 1: shape [3, 1, 1, 3] of INT8 needs 9 bytes, its buffer 1 holds 6");
    p = sample();
    p.tensors[4] = tensor("f32", {2}, 0, 6);
    expect(p, "subgraph 0: tensor 4: buffer index 6 out of range (6 buffers)");
    p = sample();
    p.tensors[4] = tensor("f32", {2}, 42, 4);
    expect(p, "subgraph 0: tensor 4: unknown tensor type 42");
    p = sample();
    p.tensors[1] = tensor("conv/weights", {3, 1, 1, 2}, 9, 1, quant({0.5f, 0.25f}, {0, 0}, 0));
    expect(p, "subgraph 0: tensor 1: 2 per-channel scales do not match dimension 0 of shape [3, 1, 1, 2]");
    p = sample();
    p.tensors[1] = tensor("conv/weights", {3, 1, 1, 2}, 9, 1, quant({0.5f, 0.25f, 1.0f}, {0}, 0));
    expect(p, "subgraph 0: tensor 1: 3 quantization scales but 1 zero points");
    p = sample();
    p.operators[0] = op(0, {0, 1, 2}, {6});
    expect(p, "subgraph 0: operator 0: CONV_2D has no options");
    p = sample();
    p.operators[0] = op(0, {0, 1, 2}, {6}, 2, fbb::table({}));
    expect(p, "subgraph 0: operator 0: CONV_2D has builtin options of the wrong type (2, expected 1)");
    p = sample();
    p.operators[0] = op(0, {0, 1, 2}, {6}, 1, fbb::table({{3, scalar<std::int8_t>(3)}}));
    expect(p, "subgraph 0: operator 0: stride 0 (must be at least 1)");
    p = sample();
    p.operators[3] = op(3, {6, 6}, {6}, 11, fbb::table({{0, scalar<std::int8_t>(9)}}));
    expect(p, "subgraph 0: operator 3: unknown fused activation 9");
}

TEST_CASE("parse_tflite: every truncation and random corruption is a format_error or a valid model") {
    const auto whole = build(sample());
    CHECK(tflite_error(whole).empty());
    for (std::size_t n = 0; n < whole.size(); ++n) {
        CAPTURE(n);
        try {
            io::parse_tflite(std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)),
                             "m");
        } catch (const format_error&) {
        }  // anything else (or a crash) fails the test
    }
    CHECK(!tflite_error(std::vector<std::byte>(whole.begin(), whole.begin() + 7)).empty());
    Rng rng(11);
    int errors = 0;
    for (int trial = 0; trial < 5000; ++trial) {
        auto b = whole;
        const int flips = 1 + static_cast<int>(rng.below(4));
        for (int k = 0; k < flips; ++k) b[rng.below(b.size())] = static_cast<std::byte>(rng.below(256));
        try {
            io::parse_tflite(b, "m");
        } catch (const format_error&) {
            ++errors;
        }
    }
    MESSAGE(errors << " of 5000 corrupted copies refused");
    CHECK(errors > 1000);
}

TEST_CASE("FlatBuffer: offsets that point back at the same data cannot blow up memory") {
    // A root table whose field 0 is a vector of 100000 offsets, all to one table whose field 0
    // is a 2000-byte string: 200 MB if every string were copied, from a 400 KB file.
    std::vector<std::uint8_t> b;
    auto u32 = [&](std::uint32_t v) {
        for (int k = 0; k < 4; ++k) b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
    };
    auto vtable = [&] { b.insert(b.end(), {6, 0, 8, 0, 4, 0, 0, 0}); };  // size 6, table 8 bytes, field 0 at 4
    const std::uint32_t n = 100000;
    u32(16);                                                 // root table
    u32(0);                                                  // identifier
    vtable();                                                // at 8
    u32(8);                                                  // root table at 16: vtable at 16 - 8
    u32(4);                                                  // field 0 at 20: the vector at 24
    u32(n);                                                  // vector at 24
    const std::size_t shared = 28 + 4 * std::size_t(n) + 8;  // the shared table, after its vtable
    for (std::uint32_t i = 0; i < n; ++i) u32(static_cast<std::uint32_t>(shared - (28 + 4 * std::size_t(i))));
    vtable();
    u32(8);  // shared table: vtable 8 bytes before
    u32(4);  // field 0: the string right after
    u32(2000);
    b.resize(b.size() + 2000, 'x');
    b.push_back(0);
    std::vector<std::byte> bytes(b.size());
    std::memcpy(bytes.data(), b.data(), b.size());

    io::FlatBuffer fb(bytes, "bomb");
    const auto items = fb.root().tables(0);
    REQUIRE(items.size() == n);
    CHECK(items[0].string(0) == std::string(2000, 'x'));  // the layout is valid
    try {
        for (const auto& t : items) (void)t.string(0);
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(e.reason().find("point at the same data more often than a valid file could") != std::string::npos);
    }
}
