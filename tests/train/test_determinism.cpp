// Determinism: the same seed and thread count give bit-identical weights after
// training steps; different thread counts split reductions differently, so they agree
// within float rounding: the gradients of a whole MobileNetV2 training step agree to
// 1e-4 between 1 and 2 threads (L2 error of each tensor relative to its norm, or to
// 1e-3 of the largest gradient norm for tensors whose gradient is analytically zero,
// such as a projection's batch-norm beta followed by another batch norm). (Weights after several
// steps are not compared across thread counts: an untrained network with batch norm on
// batches of 4 amplifies rounding differences step after step.)
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
using Net = Sequential<models::MobileNetV2<>, Dropout<0.2f>, Dense<3, Softmax>>;

struct Result {
    std::vector<std::vector<float>> weights, grads;
};

Result run(int threads, std::uint64_t seed, int steps) {
    const int before = max_threads();
    set_num_threads(threads);
    Net net;
    net.build({32, 32, 3}, seed);
    net.set_seed(seed);
    Adam opt(1e-3f);
    CategoricalCrossentropy<> loss;
    Rng rng(seed + 1);
    for (int step = 0; step < steps; ++step) {
        Tensor<4> x = random_tensor<4>({4, 32, 32, 3}, rng, 0, 1);
        Tensor<2> y = test::one_hot({step % 3, (step + 1) % 3, 0, 2}, 3);
        train_step(net, loss, opt, x, y);
    }
    Result r;
    for (const BufferRef& t : state_tensors(net)) r.weights.emplace_back(t.value, t.value + t.size);
    for (const ParamRef& p : net.parameters()) r.grads.emplace_back(p.grad, p.grad + p.size);
    set_num_threads(before);
    return r;
}
}  // namespace

TEST_CASE("training is bit-identical for the same seed and thread count") {
    const Result a = run(2, 7, 3), b = run(2, 7, 3);
    REQUIRE(a.weights.size() == b.weights.size());
    std::size_t differ = 0, total = 0;
    for (std::size_t k = 0; k < a.weights.size(); ++k)
        for (std::size_t i = 0; i < a.weights[k].size(); ++i, ++total) differ += a.weights[k][i] != b.weights[k][i];
    CHECK(differ == 0);
    const Result d = run(2, 8, 3);  // another seed trains differently
    std::size_t changed = 0;
    for (std::size_t k = 0; k < a.weights.size(); ++k)
        for (std::size_t i = 0; i < a.weights[k].size(); ++i) changed += a.weights[k][i] != d.weights[k][i];
    CHECK(changed > total / 2);
}

TEST_CASE("1 and 2 threads give the same gradients up to float rounding") {
    const Result one = run(1, 7, 1), two = run(2, 7, 1);
    std::vector<double> diff(one.grads.size()), norm(one.grads.size());
    double largest = 0;
    for (std::size_t k = 0; k < one.grads.size(); ++k) {
        double num = 0, den = 0;
        for (std::size_t i = 0; i < one.grads[k].size(); ++i) {
            const double d = double(one.grads[k][i]) - two.grads[k][i];
            num += d * d;
            den += double(one.grads[k][i]) * one.grads[k][i];
        }
        diff[k] = std::sqrt(num);
        norm[k] = std::sqrt(den);
        largest = std::max(largest, norm[k]);
    }
    double worst = 0;
    for (std::size_t k = 0; k < diff.size(); ++k) worst = std::max(worst, diff[k] / std::max(norm[k], 1e-3 * largest));
    MESSAGE("largest relative L2 difference of a gradient tensor, 1 vs 2 threads: " << worst);
    CHECK(worst < 1e-4);
}
