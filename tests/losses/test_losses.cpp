#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

TEST_CASE("CategoricalCrossentropy on probabilities: hand-computed values") {
    CategoricalCrossentropy<> ce;
    Tensor<2> p = xt::xtensor<float, 2>({{0.7f, 0.2f, 0.1f}, {0.1f, 0.1f, 0.8f}});
    Tensor<2> t = test::one_hot({0, 1}, 3);
    // (-ln 0.7 - ln 0.1) / 2
    CHECK(ce.forward(p, t) == doctest::Approx((-std::log(0.7) - std::log(0.1)) / 2).epsilon(1e-6));
    // clipping: p = 0 gives -ln(1e-7), not infinity
    Tensor<2> p0 = xt::xtensor<float, 2>({{0.0f, 1.0f}});
    CHECK(ce.forward(p0, test::one_hot({0}, 2)) == doctest::Approx(-std::log(1e-7)).epsilon(1e-5));
}

TEST_CASE("CategoricalCrossentropy from logits equals the probability form on softmax, and is stable") {
    CategoricalCrossentropy<true> cel;
    CategoricalCrossentropy<false> cep;
    Tensor<2> z = xt::xtensor<float, 2>({{2.0f, -1.0f, 0.5f}, {0.0f, 3.0f, -2.0f}});
    Tensor<2> t = test::one_hot({2, 1}, 3);
    Tensor<2> p({2, 3});
    Softmax::apply(z.data(), p.data(), 2, 3);
    CHECK(cel.forward(z, t) == doctest::Approx(cep.forward(p, t)).epsilon(1e-5));
    // log-sum-exp: huge logits give the exact finite answer
    CategoricalCrossentropy<true> big;
    Tensor<2> zb = xt::xtensor<float, 2>({{1000.0f, 0.0f, -1000.0f}});
    CHECK(big.forward(zb, test::one_hot({1}, 3)) == doctest::Approx(1000.0));
    CHECK(std::isfinite(big.forward(zb, test::one_hot({2}, 3))));
}

TEST_CASE("losses: gradient checks") {
    Rng rng(1);
    Tensor<2> z = random_tensor<2>({4, 5}, rng, -2, 2);
    Tensor<2> t = test::one_hot({0, 4, 2, 2}, 5);
    {
        CategoricalCrossentropy<true> l;
        auto r = check_loss_gradients(l, z, t);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        CategoricalCrossentropy<false> l;
        Tensor<2> p = random_tensor<2>({4, 5}, rng, 0.1f, 0.9f);
        auto r = check_loss_gradients(l, p, t, {.epsilon = 1e-3});
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        SparseCategoricalCrossentropy<true> l;
        Tensor<2> idx = xt::xtensor<float, 2>({{0}, {4}, {2}, {2}});
        auto r = check_loss_gradients(l, z, idx);
        CHECK_MESSAGE(r.ok, r.report());
        CategoricalCrossentropy<true> dense;
        CHECK(l.forward(z, idx) == doctest::Approx(dense.forward(z, t)).epsilon(1e-6));
    }
    {
        SparseCategoricalCrossentropy<false> l;
        Tensor<2> p = random_tensor<2>({4, 5}, rng, 0.1f, 0.9f);
        Tensor<2> idx = xt::xtensor<float, 2>({{1}, {0}, {3}, {2}});
        auto r = check_loss_gradients(l, p, idx, {.epsilon = 1e-3});
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        MeanSquaredError l;
        Tensor<2> y = random_tensor<2>({4, 5}, rng);
        auto r = check_loss_gradients(l, z, y);
        CHECK_MESSAGE(r.ok, r.report());
        Tensor<2> a = xt::xtensor<float, 2>({{1.0f, 2.0f}}), b = xt::xtensor<float, 2>({{0.0f, 4.0f}});
        CHECK(l.forward(a, b) == doctest::Approx(2.5));  // (1 + 4) / 2
    }
}

TEST_CASE("a probability fed to a from-logits loss (the reference tutorial's bug) is refused at run time") {
    CategoricalCrossentropy<true> l;
    Tensor<2> p = xt::xtensor<float, 2>({{0.7f, 0.2f, 0.1f}, {0.1f, 0.1f, 0.8f}});
    CHECK_THROWS_AS(l.forward(p, test::one_hot({0, 1}, 3)), config_error);
    CategoricalCrossentropy<false> lp;
    Tensor<2> z = xt::xtensor<float, 2>({{2.0f, -1.0f, 0.5f}});
    CHECK_THROWS_WITH_AS(lp.forward(z, test::one_hot({0}, 3)), doctest::Contains("logits"), config_error);
    SparseCategoricalCrossentropy<true> s;
    CHECK_THROWS_AS(s.forward(p, xt::xtensor<float, 2>({{0}, {1}})), config_error);
}

TEST_CASE("SparseCategoricalCrossentropy rejects bad targets") {
    SparseCategoricalCrossentropy<true> l;
    Tensor<2> z = xt::xtensor<float, 2>({{2.0f, -1.0f, 0.5f}});
    CHECK_THROWS_AS(l.forward(z, xt::xtensor<float, 2>({{3}})), shape_error);
    CHECK_THROWS_AS(l.forward(z, xt::xtensor<float, 2>({{0.5f}})), shape_error);
    CHECK_THROWS_AS(l.forward(z, xt::xtensor<float, 2>({{0, 1}})), shape_error);
}
