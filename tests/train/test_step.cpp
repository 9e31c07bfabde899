#include <doctest/doctest.h>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

TEST_CASE("train_step learns a separable problem; evaluate_step leaves weights alone") {
    Sequential<Dense<8, ReLU>, Dense<2, Softmax>> m;
    m.build({2}, 3);
    Rng rng(10);
    Tensor<2> x = random_tensor<2>({64, 2}, rng);
    std::vector<int> labels;
    for (std::size_t i = 0; i < 64; ++i) labels.push_back(x(i, 0) + x(i, 1) > 0 ? 1 : 0);
    Tensor<2> y = test::one_hot(labels, 2);
    Adam opt(0.05f);
    CategoricalCrossentropy<> loss;
    CategoricalAccuracy acc;
    const float first = evaluate_step(m, loss, x, y, acc);
    for (int s = 0; s < 150; ++s) train_step(m, loss, opt, x, y);
    acc.reset();
    const Tensor<2> w = m.layer<1>().kernel();
    const float last = evaluate_step(m, loss, x, y, acc);
    CHECK(last < 0.5f * first);
    CHECK(acc.result() > 0.95f);
    CHECK(test::max_abs_diff(m.layer<1>().kernel(), w) == 0.0);
}
