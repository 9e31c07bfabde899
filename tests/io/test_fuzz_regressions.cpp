// Inputs that fuzzing (scripts/fuzz.sh) found to crash, hang or exhaust memory in the readers of
// tests/io's headers, kept in tests/fuzz/regressions/<target>/: each must now give the typed
// error below.
#include <doctest/doctest.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "typenet/core/sequential.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/layers/dense.hpp"
#include "typenet/layers/relu.hpp"
#include "typenet/layers/softmax.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {

const fs::path regressions = fs::path(TYPENET_SOURCE_DIR) / "tests" / "fuzz" / "regressions";

// The model of the `model` fuzz target.
using Net = Sequential<Dense<4, ReLU>, Dense<3, Softmax>>;

struct Case {
    const char* file;    // under tests/fuzz/regressions
    const char* reason;  // a part of the format_error's reason()
};

// model/input_shape_negative.tnet: a valid model file of Net (2 features) whose "input_shape"
// says " -2"; std::stoull read it as 2^64 - 2, and building the model threw
// std::bad_array_new_length (not a typenet::error) out of load_model.
// model/input_shape_huge.tnet: the same with "1000000000": building the unbuilt model
// allocated a 1000000000 x 4 kernel (16 GB) before any weight was compared.
constexpr Case model_cases[] = {
    {"model/input_shape_negative.tnet", "bad input_shape metadata \" -2\""},
    {"model/input_shape_huge.tnet", "input shape (1000000000) has more values per example than the 27 weights"},
};

}  // namespace

TEST_CASE("fuzz regressions: model files give format_error, not std::bad_alloc") {
    for (const Case& c : model_cases) {
        CAPTURE(c.file);
        const fs::path p = regressions / c.file;
        REQUIRE(fs::exists(p));
        Net net;
        CHECK_THROWS_WITH_AS(io::load_model(net, p), doctest::Contains(c.reason), format_error);
        CHECK(!net.built());
    }
}

TEST_CASE("a large stored input shape is accepted when the file holds as many weights") {
    // What load_model decides before building: 2^24 + 1 values per example is refused from a
    // file of 27 weights, accepted from one holding 2^24 + 1 (a Dense kernel that many rows high).
    const std::size_t big = io::load_model_max_input_values + 1;
    const std::string text = std::to_string(big);
    CHECK_THROWS_AS(io::detail::parse_input_shape<Net>(text, "m.tnet", 27), format_error);
    CHECK(io::detail::parse_input_shape<Net>(text, "m.tnet", big)[0] == big);
    CHECK(io::detail::parse_input_shape<Net>("2", "m.tnet", 27)[0] == 2);
    CHECK_THROWS_AS(io::detail::parse_input_shape<Net>("2,3", "m.tnet", 27), mismatch_error);
    CHECK_THROWS_AS(io::detail::parse_input_shape<Net>("+2", "m.tnet", 27), format_error);
    CHECK_THROWS_AS(io::detail::parse_input_shape<Net>("99999999999999999999", "m.tnet", 27), format_error);
}

TEST_CASE("fuzz regressions: every io input in the folders has a case here") {
    std::set<std::string> listed;
    for (const Case& c : model_cases) listed.insert(c.file);
    for (const char* target : {"npy", "npz", "tflite", "archive", "model", "labels"}) {
        if (!fs::is_directory(regressions / target)) continue;
        for (const auto& e : fs::directory_iterator(regressions / target)) {
            const std::string rel = std::string(target) + "/" + e.path().filename().string();
            CAPTURE(rel);
            CHECK(listed.count(rel) == 1);
        }
    }
}
