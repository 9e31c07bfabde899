// The real ImageNet weights: typenet's MobileNetV2 against the independent PyTorch
// reference of tools/mobilenet_v2_reference.py (fixtures in tests/models/fixtures/).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>

#include "typenet/io/labels.hpp"
#include "typenet/io/mobilenet_v2_weights.hpp"
#include "typenet/io/npy.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {
const fs::path fixtures = fs::path(TYPENET_SOURCE_DIR) / "tests" / "models" / "fixtures";
const char* photos[] = {"chelsea", "coffee", "grace_hopper"};

Tensor<4> fixture_input(const std::string& photo) {
    const io::NpyArray a = io::read_npy(fixtures / (photo + "_input.npy"));
    REQUIRE(a.shape == std::vector<std::size_t>{224, 224, 3});
    Tensor<4> x({1, 224, 224, 3});
    for (std::size_t i = 0; i < a.data.size(); ++i) x.data()[i] = a.data[i] / 255.0f;
    return x;
}

std::vector<std::size_t> top_k(const float* v, std::size_t n, std::size_t k) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](auto a, auto b) { return v[a] > v[b]; });
    idx.resize(k);
    return idx;
}

// The table of weights/README.md: top-3 per photo (1001-indexed).
const std::vector<std::vector<std::size_t>> table_top3 = {{283, 282, 286}, {968, 926, 961}, {653, 668, 401}};
}  // namespace

TEST_CASE("ImageNet weights: features and logits match the PyTorch reference within 1e-3, top-5 equal") {
    const fs::path weights = data_dir() / "weights";
    models::MobileNetV2<> backbone;
    backbone.build(224);
    const auto t0 = std::chrono::steady_clock::now();
    io::load_mobilenet_v2_imagenet(backbone, weights);
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("loading the .npy backbone took " << load_ms << " ms");

    models::MobileNetV2<true, Linear> full;
    full.build(224);
    io::load_mobilenet_v2_imagenet(full, weights);

    for (const char* photo : photos) {
        const Tensor<4> x = fixture_input(photo);
        const io::NpyArray ref_f = io::read_npy(fixtures / (std::string(photo) + "_features.npy"));
        const io::NpyArray ref_l = io::read_npy(fixtures / (std::string(photo) + "_logits.npy"));
        const Tensor<2> f = backbone.forward(x);
        double df = 0;
        for (std::size_t i = 0; i < 1280; ++i) df = std::max(df, double(std::abs(f.data()[i] - ref_f.data[i])));
        const Tensor<2> l = full.forward(x);
        double dl = 0;
        for (std::size_t i = 0; i < 1001; ++i) dl = std::max(dl, double(std::abs(l.data()[i] - ref_l.data[i])));
        MESSAGE(std::string(photo) << ": max |features - reference| " << df << ", max |logits - reference| " << dl);
        CHECK(df <= 1e-3);
        CHECK(dl <= 1e-3);
        CHECK(top_k(l.data(), 1001, 5) == top_k(ref_l.data.data(), 1001, 5));
    }
}

TEST_CASE("both TFLite models, dequantized, put their top-1 in the table's top-3") {
    const fs::path tflite = data_dir() / "weights" / "tflite";
    for (const char* file : {"tf2_mobilenet_v2_1.0_224_ptq.tflite", "mobilenet_v2_1.0_224_quant.tflite"}) {
        models::MobileNetV2<true, Linear> m;
        m.build(224);
        io::load_mobilenet_v2_tflite(m, tflite / file);
        for (std::size_t p = 0; p < 3; ++p) {
            const Tensor<2> l = m.forward(fixture_input(photos[p]));
            const std::size_t top1 = top_k(l.data(), 1001, 1)[0];
            MESSAGE(std::string(file) << " " << std::string(photos[p]) << ": top-1 " << top1);
            CHECK(std::find(table_top3[p].begin(), table_top3[p].end(), top1) != table_top3[p].end());
        }
    }
}

TEST_CASE("ImageNet labels: 1001 with background first") {
    const auto labels = io::read_labels(data_dir() / "weights" / "imagenet_labels.txt");
    CHECK(labels.size() == 1001);
    CHECK(labels[0] == "background");
    CHECK(labels[283] == "tiger cat");
    CHECK(labels[968] == "espresso");
}

TEST_CASE("a weights folder that does not match reports every missing, unexpected and mis-shaped tensor") {
    const fs::path src = data_dir() / "weights" / "mobilenet_v2_1.0_224";
    const fs::path dir = fs::temp_directory_path() / ("typenet_bad_weights_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(src))
        if (e.path().extension() == ".npy") fs::copy_file(e.path(), dir / e.path().filename());
    fs::remove(dir / "expanded_conv_5_expand_weights.npy");
    fs::remove(dir / "Conv_1_BatchNorm_gamma.npy");
    const std::vector<std::size_t> wrong = {7, 7};
    std::vector<float> zeros(49, 0.0f);
    io::write_npy(dir / "Conv_weights.npy", wrong, zeros);
    io::write_npy(dir / "extra_tensor.npy", wrong, zeros);
    models::MobileNetV2<> m;
    m.build(224);
    try {
        io::load_mobilenet_v2_npy(m, dir);
        FAIL("no error");
    } catch (const mismatch_error& e) {
        const std::string what = e.what();
        MESSAGE(what);
        CHECK(e.path() == dir.string());
        CHECK(what.find("2 missing, 1 unexpected, 1 mis-shaped") != std::string::npos);
        CHECK(what.find("expanded_conv_5/expand/weights") != std::string::npos);
        CHECK(what.find("Conv_1/BatchNorm/gamma") != std::string::npos);
        CHECK(what.find("extra_tensor.npy") != std::string::npos);
        CHECK(what.find("Conv/weights: expected (3, 3, 3, 32), file has (7, 7)") != std::string::npos);
    }
    // A truncated file: format_error naming it.
    {
        std::FILE* f = std::fopen((dir / "Conv_weights.npy").c_str(), "wb");
        std::fputs("\x93NUMPY\x01\x00", f);
        std::fclose(f);
        CHECK_THROWS_AS(io::load_mobilenet_v2_npy(m, dir), format_error);
    }
    fs::remove_all(dir);
    CHECK_THROWS_AS(io::load_mobilenet_v2_npy(m, dir), io_error);
}
