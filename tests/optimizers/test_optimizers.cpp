// Five steps of each optimizer on the quadratic of tools/optimizer_reference.py,
// against the values that script computes (Keras's formulas in NumPy float64,
// cross-checked there against PyTorch's optimizers).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
// Output of `/usr/bin/python3 tools/optimizer_reference.py`.
const double sgd_plain[] = {0.254294, -0.260448, 1.41183044, -0.27731};
const double sgd_momentum[] = {-0.117496, 0.738462, 0.484605438, -0.59276};
const double sgd_nesterov[] = {-0.16274901, 0.557289339, 0.221449993, -0.44928408};
const double adam[] = {0.0193832301, -0.506864188, 1.5021198, -0.433403871};
const double adamw[] = {0.012656196, -0.487538757, 1.4578345, -0.429422318};

template <class O>
void run_and_compare(O opt, const double* expected, double tol) {
    const float c[] = {1.0f, 2.0f, 0.5f, 3.0f}, d[] = {0.1f, -0.2f, 0.3f, 1.0f};
    std::vector<float> w = {0.5f, -1.0f, 2.0f, 0.0f}, g(4);
    std::vector<float> frozen = {1.0f}, frozen_g = {100.0f};
    ParamRef p{"w", w.data(), g.data(), 4, {4}};
    ParamRef f{"frozen", frozen.data(), frozen_g.data(), 1, {1}, false};
    std::vector<ParamRef> params = {f, p};
    for (int s = 0; s < 5; ++s) {
        for (int i = 0; i < 4; ++i) g[i] = c[i] * w[i] + d[i];
        opt.step(params);
    }
    for (int i = 0; i < 4; ++i) CHECK(w[i] == doctest::Approx(expected[i]).epsilon(0).scale(1).epsilon(tol));
    CHECK(frozen[0] == 1.0f);  // not trainable: untouched
}

// The same problem tiled over a tensor large enough to be updated by several threads:
// every copy must reach the reference values.
template <class O>
void run_tiled(O opt, const double* expected, double tol) {
    const int threads_before = max_threads();
    set_num_threads(2);
    const std::size_t copies = 100000, n = 4 * copies;
    const float c[] = {1.0f, 2.0f, 0.5f, 3.0f}, d[] = {0.1f, -0.2f, 0.3f, 1.0f}, w0[] = {0.5f, -1.0f, 2.0f, 0.0f};
    std::vector<float> w(n), g(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = w0[i % 4];
    ParamRef p{"w", w.data(), g.data(), n, {n}};
    std::vector<ParamRef> params = {p};
    for (int s = 0; s < 5; ++s) {
        for (std::size_t i = 0; i < n; ++i) g[i] = c[i % 4] * w[i] + d[i % 4];
        opt.step(params);
    }
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) wrong += !(std::abs(w[i] - expected[i % 4]) <= tol);
    CHECK(wrong == 0);
    set_num_threads(threads_before);
}
}  // namespace

TEST_CASE("SGD: plain, momentum, Nesterov") {
    run_and_compare(SGD(0.1f), sgd_plain, 1e-5);
    run_and_compare(SGD(0.1f, 0.9f), sgd_momentum, 1e-5);
    run_and_compare(SGD(0.1f, 0.9f, true), sgd_nesterov, 1e-5);
    run_tiled(SGD(0.1f), sgd_plain, 1e-5);
    run_tiled(SGD(0.1f, 0.9f), sgd_momentum, 1e-5);
    run_tiled(SGD(0.1f, 0.9f, true), sgd_nesterov, 1e-5);
}

TEST_CASE("Adam and AdamW") {
    run_and_compare(Adam(0.1f), adam, 1e-5);
    run_and_compare(AdamW(0.1f, 0.05f), adamw, 1e-5);
    run_tiled(Adam(0.1f), adam, 1e-5);
    run_tiled(AdamW(0.1f, 0.05f), adamw, 1e-5);
    Adam defaults;
    CHECK(defaults.learning_rate() == 1e-3f);
    CHECK(defaults.beta_1() == 0.9f);
    CHECK(defaults.beta_2() == 0.999f);
    CHECK(defaults.epsilon() == 1e-7f);
}

TEST_CASE("gradient clipping by global norm") {
    std::vector<float> w = {0.0f, 0.0f}, g = {3.0f, 4.0f};  // norm 5
    ParamRef p{"w", w.data(), g.data(), 2, {2}};
    std::vector<ParamRef> ps = {p};
    SGD opt(1.0f);
    opt.set_clipnorm(1.0f);
    opt.step(ps);
    CHECK(w[0] == doctest::Approx(-0.6));
    CHECK(w[1] == doctest::Approx(-0.8));
    CHECK(opt.last_grad_norm() == doctest::Approx(5.0));
}

TEST_CASE("optimizer settings are validated") {
    CHECK_THROWS_AS(SGD(-1.0f), config_error);
    CHECK_THROWS_AS(SGD(0.1f, 1.5f), config_error);
    CHECK_THROWS_AS(Adam(1e-3f, 1.0f), config_error);
}
