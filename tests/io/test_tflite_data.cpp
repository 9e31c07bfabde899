// io/tflite.hpp on the two real MobileNetV2 .tflite models of the shared data folder.
//
// Every expected value comes from an independent reading of the same files by
// tools/tflite_dump.py (its own flatbuffer walker in Python, no shared code):
//   /usr/bin/python3 tools/tflite_dump.py ../shared/weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite --facts
//   /usr/bin/python3 tools/tflite_dump.py ../shared/weights/tflite/mobilenet_v2_1.0_224_quant.tflite --facts
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <variant>
#include <vector>

#include "typenet/core/paths.hpp"
#include "typenet/core/random.hpp"
#include "typenet/io/npy.hpp"
#include "typenet/io/tflite.hpp"

namespace fs = std::filesystem;
using namespace typenet;
using doctest::Approx;
using io::TfliteOp;

namespace {

const fs::path tflite_dir = data_dir() / "weights" / "tflite";
const fs::path ptq_path = tflite_dir / "tf2_mobilenet_v2_1.0_224_ptq.tflite";
const fs::path qat_path = tflite_dir / "mobilenet_v2_1.0_224_quant.tflite";

std::string sequence(const io::TfliteSubgraph& g) {
    std::string s;
    for (const auto& op : g.operators) {
        if (!s.empty()) s += ' ';
        s += io::tflite_op_name(op.op);
    }
    return s;
}

std::vector<std::size_t> stride2_ops(const io::TfliteSubgraph& g) {
    std::vector<std::size_t> out;
    for (std::size_t k = 0; k < g.operators.size(); ++k) {
        const auto& o = g.operators[k].options;
        if (auto* c = std::get_if<io::TfliteConvOptions>(&o); c && c->stride_h == 2 && c->stride_w == 2)
            out.push_back(k);
        if (auto* d = std::get_if<io::TfliteDepthwiseOptions>(&o); d && d->stride_h == 2 && d->stride_w == 2)
            out.push_back(k);
    }
    return out;
}

std::size_t buffer_bytes(const io::TfliteModel& m) {
    std::size_t n = 0;
    for (const auto& b : m.buffers) n += b.size();
    return n;
}

double sum(const std::vector<float>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0);
}

using Ints = std::vector<std::int32_t>;

// The MobileNetV2 block pattern both files share after their first ops.
const std::string body =
    "CONV_2D DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D "
    "DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D "
    "DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D "
    "DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D "
    "DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D DEPTHWISE_CONV_2D CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D "
    "DEPTHWISE_CONV_2D CONV_2D ADD CONV_2D DEPTHWISE_CONV_2D CONV_2D CONV_2D";

}  // namespace

TEST_CASE("PTQ model: structure") {
    const auto m = io::read_tflite(ptq_path);
    CHECK(m.version == 3);
    CHECK(m.description == "MLIR Converted.");
    REQUIRE(m.subgraphs.size() == 1);
    const auto& g = m.subgraphs[0];
    CHECK(g.operators.size() == 68);
    CHECK(g.tensors.size() == 177);
    CHECK(m.buffers.size() == 180);
    CHECK(buffer_bytes(m) == 3543996);
    CHECK(sequence(g) == "QUANTIZE " + body + " MEAN CONV_2D RESHAPE SOFTMAX QUANTIZE");
    CHECK(stride2_ops(g) == std::vector<std::size_t>{1, 5, 12, 23, 49});

    // op 1: CONV_2D in=[109, 3, 4] out=[110] SAME, stride (2, 2), RELU6; weights [32, 3, 3, 3] int8
    const auto& first = g.operators[1];
    CHECK(first.op == TfliteOp::conv_2d);
    CHECK(first.inputs == Ints{109, 3, 4});
    CHECK(first.outputs == Ints{110});
    const auto& conv = std::get<io::TfliteConvOptions>(first.options);
    CHECK(conv.padding == io::TflitePadding::same);
    CHECK(conv.activation == io::TfliteActivation::relu6);
    const auto& w0 = g.tensors[3];
    CHECK(w0.shape == Ints{32, 3, 3, 3});  // OHWI: 32 output channels
    CHECK(w0.type == io::TfliteType::int8);
    CHECK(w0.quantization.scale.size() == 32);
    CHECK(w0.quantization.scale[0] == 0.009563312865793705f);
    CHECK(w0.quantization.scale[1] == 0.027239613234996796f);
    CHECK(sum(io::dequantize(m, w0)) == Approx(-13.844875332665652).epsilon(1e-5));

    // input: 'input' [1, 224, 224, 3] uint8, scale 1/127.5, zero point 127
    REQUIRE(g.inputs == Ints{0});
    const auto& in = g.tensors[0];
    CHECK(in.name == "input");
    CHECK(in.shape == Ints{1, 224, 224, 3});
    CHECK(in.type == io::TfliteType::uint8);
    CHECK(in.quantization.scale == std::vector<float>{0.007843137718737125f});
    CHECK(in.quantization.zero_point == std::vector<std::int64_t>{127});
    CHECK(g.outputs == Ints{176});

    // op 63: MEAN keep_dims; op 66: SOFTMAX beta 1
    CHECK(std::get<io::TfliteReducerOptions>(g.operators[63].options).keep_dims);
    CHECK(std::get<io::TfliteSoftmaxOptions>(g.operators[66].options).beta == 1.0f);
    // Operator codes: QUANTIZE CONV_2D DEPTHWISE_CONV_2D ADD MEAN RESHAPE SOFTMAX
    REQUIRE(m.operator_codes.size() == 7);
    CHECK(m.operator_codes[0].builtin == TfliteOp::quantize);
    CHECK(m.operator_codes[4].builtin == TfliteOp::mean);
}

TEST_CASE("PTQ model: classifier weights and bias, per-channel int8") {
    const auto m = io::read_tflite(ptq_path);
    const auto& g = m.subgraphs[0];
    // classifier op 64 weights tensor 107 [1001, 1, 1, 1280] int8 bias tensor 108 [1001] int32
    const auto& op = g.operators[64];
    REQUIRE(op.op == TfliteOp::conv_2d);
    REQUIRE(op.inputs == Ints{172, 107, 108});
    const auto& w = g.tensors[107];
    const auto& b = g.tensors[108];
    CHECK(w.shape == Ints{1001, 1, 1, 1280});
    CHECK(w.type == io::TfliteType::int8);
    CHECK(b.shape == Ints{1001});
    CHECK(b.type == io::TfliteType::int32);
    // weights scales 1001 first 0.00017008549184538424 last 0.0011426393175497651 zero_point 0 dim 0
    CHECK(w.quantization.scale.size() == 1001);
    CHECK(w.quantization.scale.front() == 0.00017008549184538424f);
    CHECK(w.quantization.scale.back() == 0.0011426393175497651f);
    CHECK(w.quantization.zero_point.front() == 0);
    CHECK(w.quantization.quantized_dimension == 0);
    // bias scales 1001 first 3.2448624551761895e-06
    CHECK(b.quantization.scale.size() == 1001);
    CHECK(b.quantization.scale.front() == 3.2448624551761895e-06f);

    const auto wv = io::dequantize(m, w);
    REQUIRE(wv.size() == 1001u * 1280u);
    // weights dequantized: sum -38.2361248456873, [0] 0.0011905984429176897, [1] 0.011395727953640744,
    // [-1] -0.061702523147687316
    CHECK(sum(wv) == Approx(-38.2361248456873).epsilon(1e-5));
    CHECK(wv[0] == Approx(0.0011905984429176897).epsilon(1e-6));
    CHECK(wv[1] == Approx(0.011395727953640744).epsilon(1e-6));
    CHECK(wv.back() == Approx(-0.061702523147687316).epsilon(1e-6));
    // bias dequantized: sum -0.03762559660117404, [0] -0.2828027424184256, [-1] -0.1716677554668422
    const auto bv = io::dequantize(m, b);
    CHECK(sum(bv) == Approx(-0.03762559660117404).epsilon(1e-4));
    CHECK(bv[0] == Approx(-0.2828027424184256).epsilon(1e-6));
    CHECK(bv.back() == Approx(-0.1716677554668422).epsilon(1e-6));
}

TEST_CASE("PTQ model: the dequantized int32 bias matches the float checkpoint's bias") {
    // Same checkpoint: the float .npy bias and the int32 bias times input scale x weight scale
    // must agree to well under the quantization step of the logits (tools/tflite_dump.py --bias
    // measures a largest difference of 0.000577 for values up to 1.21).
    const auto m = io::read_tflite(ptq_path);
    const auto bias = io::dequantize(m, m.subgraphs[0].tensors[108]);
    const auto ref = io::read_npy(data_dir() / "weights" / "mobilenet_v2_1.0_224" / "Logits_Conv2d_1c_1x1_biases.npy");
    REQUIRE(ref.data.size() == bias.size());
    double worst = 0, spread = 0;
    for (std::size_t i = 0; i < bias.size(); ++i) {
        worst = std::max(worst, std::abs(double(bias[i]) - double(ref.data[i])));
        spread = std::max(spread, std::abs(double(ref.data[i])));
    }
    MESSAGE("largest |dequantized - float| bias difference: " << worst << " (largest |bias| " << spread << ")");
    CHECK(worst < 1e-3);
    CHECK(spread > 1.0);  // a real comparison, not of two zero vectors
}

TEST_CASE("QAT model: structure and per-tensor uint8 quantization") {
    const auto m = io::read_tflite(qat_path);
    REQUIRE(m.subgraphs.size() == 1);
    const auto& g = m.subgraphs[0];
    CHECK(g.operators.size() == 66);
    CHECK(g.tensors.size() == 174);
    CHECK(m.buffers.size() == 177);
    CHECK(buffer_bytes(m) == 3543988);
    CHECK(sequence(g) == body + " AVERAGE_POOL_2D CONV_2D RESHAPE SOFTMAX");
    CHECK(stride2_ops(g) == std::vector<std::size_t>{0, 4, 11, 22, 48});
    CHECK(g.operators[0].inputs == Ints{0, 55, 54});

    // op 62 AVERAGE_POOL_2D VALID stride (1, 1) filter (7, 7) NONE
    const auto& pool = std::get<io::TflitePoolOptions>(g.operators[62].options);
    CHECK(pool.padding == io::TflitePadding::valid);
    CHECK(pool.filter_h == 7);
    CHECK(pool.filter_w == 7);
    CHECK(pool.stride_h == 1);

    // input: scale 0.0078125, zero point 128
    CHECK(g.tensors[0].quantization.scale == std::vector<float>{0.0078125f});
    CHECK(g.tensors[0].quantization.zero_point == std::vector<std::int64_t>{128});

    // classifier op 63 weights tensor 170 [1001, 1, 1, 1280] uint8 bias tensor 2 [1001] int32
    const auto& op = g.operators[63];
    REQUIRE(op.inputs == Ints{169, 170, 2});
    const auto& w = g.tensors[170];
    CHECK(w.shape == Ints{1001, 1, 1, 1280});
    CHECK(w.type == io::TfliteType::uint8);
    CHECK(!w.quantization.per_channel());
    CHECK(w.quantization.scale[0] == 0.0016910821432247758f);
    CHECK(w.quantization.zero_point[0] == 113);
    // weights dequantized: sum 1195.515594399185, [0] 0.0, [1] 0.010146492859348655, [-1] -0.05918787501286715
    const auto wv = io::dequantize(m, w);
    CHECK(sum(wv) == Approx(1195.515594399185).epsilon(1e-5));
    CHECK(wv[0] == 0.0f);
    CHECK(wv[1] == Approx(0.010146492859348655).epsilon(1e-6));
    CHECK(wv.back() == Approx(-0.05918787501286715).epsilon(1e-6));
    // bias dequantized: sum 6.83090491918847, [0] -0.2834936949511757
    const auto bv = io::dequantize(m, g.tensors[2]);
    CHECK(sum(bv) == Approx(6.83090491918847).epsilon(1e-5));
    CHECK(bv[0] == Approx(-0.2834936949511757).epsilon(1e-6));
    // first conv weights [32, 3, 3, 3] uint8, one scale: dequantized sum -16.50889778137207
    CHECK(g.tensors[55].shape == Ints{32, 3, 3, 3});
    CHECK(sum(io::dequantize(m, g.tensors[55])) == Approx(-16.50889778137207).epsilon(1e-5));
}

TEST_CASE("corrupt and truncated copies of the real models give format_error, never a crash") {
    // tools/tflite_dump.py: the buffers' data ends at byte 3546468 (PTQ) and 3546428 (QAT); the
    // tables (subgraph, tensors, operators) follow, the root and header precede byte 900.
    for (const fs::path& p : {ptq_path, qat_path}) {
        CAPTURE(p.string());
        const auto whole = io::read_file(p);
        const std::size_t tables_start = 3546400;
        REQUIRE(whole.size() > tables_start);
        Rng rng(5);
        int refused = 0;
        const int trials = 300;
        for (int trial = 0; trial < trials; ++trial) {
            auto b = whole;
            const int flips = 1 + static_cast<int>(rng.below(8));
            for (int k = 0; k < flips; ++k) {
                const std::size_t at =
                    rng.below(4) == 0 ? rng.below(900) : tables_start + rng.below(whole.size() - tables_start);
                b[at] = static_cast<std::byte>(rng.below(256));
            }
            if (rng.below(4) == 0) b.resize(rng.below(b.size()));
            try {
                io::parse_tflite(b, p.string());
            } catch (const format_error& e) {
                CHECK(e.path() == p.string());
                ++refused;
            }  // anything else (or a crash) fails the test
        }
        MESSAGE(refused << " of " << trials << " corrupted copies refused");
        CHECK(refused > trials / 2);
        // Every truncation before the last tensor table (at 4048076 in PTQ, 3588764 in QAT, says
        // tools/tflite_dump.py) is refused; the bytes after it (metadata, signatures) are not read.
        const std::size_t last_tensor = p == ptq_path ? 4048076 : 3588764;
        for (int trial = 0; trial < 50; ++trial) {
            const std::size_t n = tables_start + rng.below(last_tensor - tables_start);
            CHECK_THROWS_AS(io::parse_tflite(std::span(whole).first(n), p.string()), format_error);
        }
    }
}
