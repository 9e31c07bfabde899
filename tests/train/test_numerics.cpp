// The numerical guard: NaN or infinity stops training, names where it appeared, and
// leaves the last good weights.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
// Passes values through; after `after` forward calls its output holds a NaN.
struct Unstable {
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    int calls = 0, after = 2;
    Shape<2> output_shape(const Shape<2>& s) const { return s; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) {
        y = x;
        if (++calls > after) y(0, 0) = std::numeric_limits<float>::quiet_NaN();
    }
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = dy;
    }
};
// Passes values through; its backward sends an infinity down.
struct BadGradient {
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    Shape<2> output_shape(const Shape<2>& s) const { return s; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = x; }
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (!dx) return;
        *dx = dy;
        (*dx)(0, 0) = std::numeric_limits<float>::infinity();
    }
};

Example example(std::size_t i) {
    Example e;
    e.image = Tensor<3>(Shape<3>{1, 1, 4});
    for (std::size_t k = 0; k < 4; ++k) e.image(0, 0, k) = static_cast<float>((i * 7 + k) % 5) / 5.0f;
    e.label = static_cast<std::int32_t>(i % 2);
    e.source = "ex" + std::to_string(i);
    return e;
}

// Snapshot of every weight after each batch (the last good weights).
struct Snapshot {
    std::vector<std::vector<float>> last;
    template <class M>
    void on_train_batch_end(std::size_t, Logs&, M& model) {
        last.clear();
        for (const BufferRef& t : state_tensors(model.net())) last.emplace_back(t.value, t.value + t.size);
    }
};
}  // namespace

TEST_CASE("check_numerics names the first layer whose output is NaN and keeps the last good weights") {
    Sequential<GlobalAveragePooling2D, Dense<6, ReLU>, Unstable, Dense<2, Softmax>> net;
    net.build({1, 1, 4});
    auto model = compile(net, Adam(0.01f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    auto data = data::Dataset::from_generator(40, example).batch(8);
    Snapshot snap;
    FitOptions o;
    o.epochs = 3;
    o.verbose = 0;
    o.check_numerics = true;
    try {
        model.fit(data, o, snap);
        FAIL("no numeric_error");
    } catch (const numeric_error& e) {
        CHECK(e.where() == "unstable");
        CHECK(std::string(e.what()).find("training step 2") != std::string::npos);
    }
    const auto now = state_tensors(net);
    REQUIRE(snap.last.size() == now.size());
    for (std::size_t i = 0; i < now.size(); ++i)
        for (std::size_t k = 0; k < now[i].size; ++k) CHECK(now[i].value[k] == snap.last[i][k]);
}

TEST_CASE("check_numerics names the parameter whose gradient is not finite") {
    Sequential<GlobalAveragePooling2D, Dense<6, ReLU>, BadGradient, Dense<2, Softmax>> net;
    net.build({1, 1, 4});
    auto model = compile(net, SGD(0.1f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    auto data = data::Dataset::from_generator(16, example).batch(8);
    FitOptions o;
    o.verbose = 0;
    o.check_numerics = true;
    const auto before = state_tensors(net);
    std::vector<float> first(before[0].value, before[0].value + before[0].size);
    CHECK_THROWS_WITH_AS(model.fit(data, o), doctest::Contains("gradient of dense/kernel"), numeric_error);
    for (std::size_t k = 0; k < first.size(); ++k) CHECK(before[0].value[k] == first[k]);  // no step taken
    o.check_numerics = false;  // without the guard the infinity goes into the weights
    model.fit(data, o);
    bool finite = true;
    for (std::size_t k = 0; k < before[0].size; ++k) finite &= std::isfinite(before[0].value[k]);
    CHECK_FALSE(finite);
}
