#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "test_util.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {
using Net = Sequential<Dense<8, ReLU>, BatchNormalization, Dropout<0.5f>, Dense<3, Softmax>>;

fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("typenet_model_" + std::to_string(::getpid()) + "_" + name);
}

void train_a_little(Net& m) {
    Rng rng(3);
    Tensor<2> x = random_tensor<2>({16, 4}, rng);
    Tensor<2> y = test::one_hot({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, 3);
    Adam opt(0.05f);
    CategoricalCrossentropy<> loss;
    for (int i = 0; i < 5; ++i) train_step(m, loss, opt, x, y);
}
}  // namespace

TEST_CASE("save_model / load_model: same predictions, metadata kept, buffers included") {
    Net a;
    a.build({4}, 1);
    train_a_little(a);
    const fs::path p = temp_path("roundtrip.tnet");
    io::SaveOptions o;
    o.meta["class_names"] = "rock,paper,scissors";
    io::save_model(a, p, o);

    Net b;  // not built: load builds it for the stored input shape
    const auto meta = io::load_model(b, p);
    CHECK(meta.at("class_names") == "rock,paper,scissors");
    Rng rng(9);
    Tensor<2> x = random_tensor<2>({5, 4}, rng);
    const Tensor<2> ya = a.forward(x);
    CHECK(test::max_abs_diff(b.forward(x), ya) == 0.0);
    CHECK(test::max_abs_diff(b.layer<1>().moving_mean(), a.layer<1>().moving_mean()) == 0.0);
    fs::remove(p);
}

TEST_CASE("load_model into another architecture says what differs") {
    Net a;
    a.build({4});
    const fs::path p = temp_path("arch.tnet");
    io::save_model(a, p);
    Sequential<Dense<8, ReLU>, BatchNormalization, Dropout<0.5f>, Dense<4, Softmax>> other;
    try {
        io::load_model(other, p);
        FAIL("no error");
    } catch (const mismatch_error& e) {
        const std::string w = e.what();
        MESSAGE(w);
        CHECK(e.path() == p.string());
        CHECK(w.find("architecture differs") != std::string::npos);
        CHECK(w.find("Dense<3, Softmax>") != std::string::npos);
        CHECK(w.find("Dense<4, Softmax>") != std::string::npos);
        CHECK(w.find("shape of dense_1/kernel: file (8, 3), model (8, 4)") != std::string::npos);
    }
    Sequential<Dense<8, ReLU>, Dense<3, Softmax>> fewer;
    CHECK_THROWS_WITH_AS(io::load_model(fewer, p), doctest::Contains("not in the model: batch_normalization/gamma"),
                         mismatch_error);
    fs::remove(p);
}

TEST_CASE("a stored reference output is checked at load time") {
    Net a;
    a.build({4}, 2);
    train_a_little(a);
    Rng rng(4);
    Tensor<2> x = random_tensor<2>({3, 4}, rng);
    const fs::path p = temp_path("ref.tnet");
    io::SaveOptions o;
    o.store_reference = true;
    io::save_model(a, p, o, &x);
    Net b;
    CHECK_NOTHROW(io::load_model(b, p));

    // Tamper with the stored reference output (keeping the file valid): refused, naming the position.
    io::Archive ar = io::read_archive(p);
    for (auto& t : ar.tensors)
        if (t.name == "__reference_output") t.data[4] += 0.5f;
    io::write_archive(p, ar);
    Net c;
    CHECK_THROWS_WITH_AS(io::load_model(c, p), doctest::Contains("worst at position 4"), mismatch_error);
    fs::remove(p);
}

TEST_CASE("corrupt, truncated and foreign files give format_error; a missing file io_error") {
    Net a;
    a.build({4});
    const fs::path p = temp_path("corrupt.tnet");
    io::save_model(a, p);
    {
        std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(200);
        f.put('\x55');
    }
    Net b;
    CHECK_THROWS_AS(io::load_model(b, p), format_error);
    fs::resize_file(p, 100);
    CHECK_THROWS_AS(io::load_model(b, p), format_error);
    io::Archive foreign;
    foreign.meta["format"] = "something-else";
    io::write_archive(p, foreign);
    CHECK_THROWS_WITH_AS(io::load_model(b, p), doctest::Contains("not a typenet model"), format_error);
    fs::remove(p);
    CHECK_THROWS_AS(io::load_model(b, p), io_error);
}
