#include <doctest/doctest.h>

#include <cmath>

#include "typenet/train/schedules.hpp"

using namespace typenet;

TEST_CASE("learning-rate schedules: values computed by hand") {
    CHECK(ConstantLR{0.5f}(1000) == 0.5f);
    StepDecay sd{1.0f, 0.5f, 10};
    CHECK(sd(0) == 1.0f);
    CHECK(sd(9) == 1.0f);
    CHECK(sd(10) == 0.5f);
    CHECK(sd(25) == 0.25f);
    ExponentialDecay ed{1e-3f, 0.96f, 1000, false};
    CHECK(ed(500) == doctest::Approx(1e-3 * std::sqrt(0.96)).epsilon(1e-6));
    ExponentialDecay eds{1e-3f, 0.96f, 1000, true};
    CHECK(eds(1999) == doctest::Approx(1e-3 * 0.96).epsilon(1e-6));
    CosineDecay cd{1.0f, 100, 0.1f};
    CHECK(cd(0) == doctest::Approx(1.0));
    CHECK(cd(50) == doctest::Approx(0.1 + 0.9 * 0.5));  // cos(pi/2) = 0
    CHECK(cd(100) == doctest::Approx(0.1));
    CHECK(cd(1000) == doctest::Approx(0.1));
    CosineDecay warm{0.0f, 100, 0.0f, 10, 1.0f};  // 0 -> 1 over 10 steps, then cosine from 1
    CHECK(warm(0) == doctest::Approx(0.1));
    CHECK(warm(9) == doctest::Approx(1.0));
    CHECK(warm(10) == doctest::Approx(1.0));
    CHECK(warm(60) == doctest::Approx(0.5));
    CHECK_THROWS_AS(StepDecay({1.0f, 0.5f, 0})(3), config_error);
}

namespace {
struct FakeOptimizer {
    float lr = 0;
    void set_learning_rate(float v) { lr = v; }
    float learning_rate() const { return lr; }
};
struct FakeModel {
    FakeOptimizer opt;
    FakeOptimizer& optimizer() { return opt; }
};
}  // namespace

TEST_CASE("LearningRateScheduler sets the optimizer's rate before each batch") {
    LearningRateScheduler lrs(StepDecay{1.0f, 0.1f, 2});
    FakeModel m;
    Logs logs;
    for (std::size_t b = 0; b < 5; ++b) lrs.on_train_batch_begin(b, logs, m);
    CHECK(m.opt.lr == doctest::Approx(0.01));  // step 4: 1.0 * 0.1^2
    CHECK(logs["lr"] == doctest::Approx(0.01));
    CHECK(lrs.step() == 5);
}
