// The numerical gradient check on every layer of the core, for inputs and parameters.
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
// Inputs whose magnitudes stay away from the kinks of ReLU (0) and ReLU6 (0, 6) by
// more than the finite-difference step.
Tensor<2> away_from_kinks(const Shape<2>& s, Rng& rng, float scale = 1.0f) {
    Tensor<2> t(s);
    for (std::size_t i = 0; i < t.size(); ++i) {
        const float m = rng.uniform(0.1f, 1.0f) * scale;
        t.data()[i] = rng.bernoulli(0.5f) ? m : -m;
    }
    return t;
}

template <class L>
void check_dense_like(std::size_t in, std::size_t batch) {
    L layer;
    Rng rng(5);
    layer.build({batch, in}, rng);
    Tensor<2> x = random_tensor<2>({batch, in}, rng);
    auto r = check_layer_gradients(layer, x);
    CHECK_MESSAGE(r.ok, type_name<L>() << ": " << r.report());
    CHECK(r.checked > in * batch);
}
}  // namespace

TEST_CASE("Dense: gradient check for each activation") {
    check_dense_like<Dense<3>>(4, 5);
    check_dense_like<Dense<7, Softmax>>(3, 2);
    check_dense_like<Dense<1, Linear>>(6, 3);
    // ReLU / ReLU6: small weights keep pre-activations in the smooth parts most of
    // the time; a kink hit would show as one large error, so use a checked input.
    Dense<4, ReLU> relu_dense;
    Rng rng(8);
    relu_dense.build({3, 5}, rng);
    relu_dense.bias().fill(0.05f);
    Tensor<2> x = away_from_kinks({3, 5}, rng);
    GradientCheckOptions o;
    o.epsilon = 1e-3;
    auto r = check_layer_gradients(relu_dense, x, o);
    CHECK_MESSAGE(r.ok, r.report());
}

TEST_CASE("Dense: forward equals x W + b computed naively") {
    Dense<3> d;
    Rng rng(2);
    d.build({4, 5}, rng);
    d.bias() = xt::xtensor<float, 1>({0.5f, -1.0f, 2.0f});
    Tensor<2> x = random_tensor<2>({4, 5}, rng);
    Tensor<2> y({4, 3});
    d.forward(x, y, Context{});
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t u = 0; u < 3; ++u) {
            double s = d.bias()(u);
            for (std::size_t k = 0; k < 5; ++k) s += double(x(i, k)) * d.kernel()(k, u);
            CHECK(y(i, u) == doctest::Approx(s).epsilon(1e-5));
        }
}

TEST_CASE("Dense: Glorot-uniform kernel within its limit, zero bias") {
    Dense<50> d;
    Rng rng(3);
    d.build({1, 30}, rng);
    const float limit = std::sqrt(6.0f / 80.0f);
    float lo = 1, hi = -1;
    for (float v : d.kernel()) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo >= -limit);
    CHECK(hi <= limit);
    CHECK(hi - lo > 1.8f * limit);  // spread over (almost) the whole range
    for (float v : d.bias()) CHECK(v == 0.0f);
}

TEST_CASE("ReLU, ReLU6, Softmax, Linear as layers: gradient check") {
    Rng rng(4);
    {
        ReLU l;
        Tensor<2> x = away_from_kinks({4, 6}, rng);
        auto r = check_layer_gradients(l, x, {.epsilon = 1e-3});
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        ReLU6 l;
        Tensor<2> x = away_from_kinks({4, 6}, rng, 5.0f);  // in (-5, -0.5) u (0.5, 5): no kink at 0 or 6
        auto r = check_layer_gradients(l, x, {.epsilon = 1e-3});
        CHECK_MESSAGE(r.ok, r.report());
        Tensor<2> big = xt::xtensor<float, 2>({{7.0f, 8.0f}});  // saturated: zero gradient
        Tensor<2> y({1, 2}), dx({1, 2});
        Tensor<2> dy = xt::xtensor<float, 2>({{1.0f, 1.0f}});
        l.forward(big, y, Context{});
        CHECK(y(0, 0) == 6.0f);
        l.backward(big, y, dy, &dx, Context{});
        CHECK(dx(0, 0) == 0.0f);
    }
    {
        Softmax l;
        Tensor<2> x = random_tensor<2>({3, 5}, rng, -3, 3);
        auto r = check_layer_gradients(l, x);
        CHECK_MESSAGE(r.ok, r.report());
        Tensor<4> x4 = random_tensor<4>({2, 2, 2, 3}, rng);  // any rank: softmax over the last axis
        auto r4 = check_layer_gradients(l, x4);
        CHECK_MESSAGE(r4.ok, r4.report());
    }
    {
        Linear l;
        Tensor<3> x = random_tensor<3>({2, 3, 4}, rng);
        auto r = check_layer_gradients(l, x);
        CHECK_MESSAGE(r.ok, r.report());
    }
}

TEST_CASE("Softmax: rows sum to one, large logits stay finite") {
    Softmax l;
    Tensor<2> x = xt::xtensor<float, 2>({{1000.0f, 0.0f, -1000.0f}, {1.0f, 2.0f, 3.0f}});
    Tensor<2> y({2, 3});
    l.forward(x, y, Context{});
    CHECK(y(0, 0) == doctest::Approx(1.0));
    CHECK(y(0, 2) == 0.0f);
    const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
    CHECK(y(1, 0) == doctest::Approx(e1 / (e1 + e2 + e3)));
    CHECK(y(1, 2) == doctest::Approx(e3 / (e1 + e2 + e3)));
}

TEST_CASE("Flatten: shape, order and gradient") {
    Flatten f;
    Rng rng(6);
    Tensor<4> x = random_tensor<4>({2, 3, 2, 4}, rng);
    CHECK(f.output_shape(shape_of(x)) == Shape<2>{2, 24});
    Tensor<2> y({2, 24});
    f.forward(x, y, Context{});
    CHECK(y(1, 2 * 4 + 1 * 4 + 3) == x(1, 1, 1, 3));  // row-major: h, w, c
    auto r = check_layer_gradients(f, x);
    CHECK_MESSAGE(r.ok, r.report());
}

TEST_CASE("Dropout: identity in eval, inverted scaling and rate in training, gradient check") {
    Dropout<0.25f> d;
    Rng rng(7);
    Tensor<2> x = random_tensor<2>({100, 100}, rng, 1.0f, 2.0f);
    Tensor<2> y({100, 100});
    Context eval;
    d.forward(x, y, eval);
    CHECK(test::max_abs_diff(x, y) == 0.0);

    Context train;
    train.training = true;
    train.seed = 99;
    d.forward(x, y, train);
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        if (y.data()[i] == 0.0f) ++dropped;
        else CHECK(y.data()[i] == doctest::Approx(x.data()[i] / 0.75f));
    }
    // 10,000 draws at p = 0.25: mean 2,500, sd 43; allow 5 sd.
    CHECK(dropped > 2500 - 217);
    CHECK(dropped < 2500 + 217);

    Tensor<2> xs = random_tensor<2>({4, 5}, rng);
    auto r = check_layer_gradients(d, xs, {.training = true});
    CHECK_MESSAGE(r.ok, r.report());
    auto re = check_layer_gradients(d, xs, {.training = false});
    CHECK_MESSAGE(re.ok, re.report());
}

TEST_CASE("Dense<0>: units at run time, shown in the signature") {
    Sequential<Dense<4, ReLU>, Dense<0, Softmax>> m(Dense<4, ReLU>(), Dense<0, Softmax>(5));
    m.build({3});
    Rng rng(1);
    CHECK(m.forward(random_tensor<2>({2, 3}, rng)).shape()[1] == 5);
    CHECK(m.signature().find("units=5") != std::string::npos);
    Dense<0, Softmax> d(7);
    d.build({2, 3}, rng);
    auto r = check_layer_gradients(d, random_tensor<2>({2, 3}, rng));
    CHECK_MESSAGE(r.ok, r.report());
    CHECK_THROWS_AS(Dense<0>(0), config_error);
    CHECK_THROWS_AS(Dense<3>(4), config_error);
}
