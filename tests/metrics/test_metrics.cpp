#include <doctest/doctest.h>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

TEST_CASE("CategoricalAccuracy with one-hot and index targets") {
    CategoricalAccuracy acc;
    Tensor<2> p = xt::xtensor<float, 2>({{0.7f, 0.2f, 0.1f}, {0.1f, 0.1f, 0.8f}, {0.3f, 0.4f, 0.3f}});
    acc.update(p, test::one_hot({0, 1, 1}, 3));  // right, wrong, right
    CHECK(acc.correct() == 2);
    CHECK(acc.result() == doctest::Approx(2.0 / 3.0));
    acc.update(p, xt::xtensor<float, 2>({{2}, {2}, {0}}));  // wrong, right, wrong
    CHECK(acc.correct() == 3);
    CHECK(acc.count() == 6);
    acc.reset();
    CHECK(acc.result() == 0.0f);
    static_assert(Metric<CategoricalAccuracy>);
}

TEST_CASE("Mean: weighted running mean") {
    Mean m;
    m.add(1.0, 3);
    m.add(3.0, 1);
    CHECK(m.result() == doctest::Approx(1.5));
    m.reset();
    CHECK(m.result() == 0.0f);
}
