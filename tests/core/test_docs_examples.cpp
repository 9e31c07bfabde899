// The examples of docs/concepts.md, compiled and run, so the docs match the code.
#include <doctest/doctest.h>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
struct Square {
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    Shape<2> output_shape(const Shape<2>& in) const { return in; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = x * x; }
    void backward(const Tensor<2>& x, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = 2.0f * x * dy;
    }
};

struct SignState {
    std::size_t size = 0;
};
class SignSGD : public OptimizerBase<SignSGD, SignState> {
public:
    explicit SignSGD(float lr) : OptimizerBase(lr) {}
    void init_state(SignState& s, std::size_t n) { s.size = n; }
    void update(SignState&, float* w, const float* g, std::size_t n, float lr, float) {
        for (std::size_t i = 0; i < n; ++i) w[i] -= lr * static_cast<float>((g[i] > 0) - (g[i] < 0));
    }
};
}  // namespace

TEST_CASE("docs/concepts.md: the Square layer is a Layer and its gradient is right") {
    static_assert(Layer<Square>);
    Square layer;
    Rng rng(1);
    Tensor<2> x = random_tensor<2>({4, 8}, rng);
    GradientCheckResult r = check_layer_gradients(layer, x);
    CHECK_MESSAGE(r.ok, r.report());
    Sequential<Dense<16>, Square, Dense<3, Softmax>> model;
    model.build({5});
    CHECK(model.forward(random_tensor<2>({2, 5}, rng)).shape()[1] == 3);
}

TEST_CASE("docs/concepts.md: SignSGD is an Optimizer and moves by lr * sign(g)") {
    static_assert(Optimizer<SignSGD>);
    std::vector<float> w = {1.0f, 1.0f, 1.0f}, g = {0.3f, -2.0f, 0.0f};
    ParamRef p{"w", w.data(), g.data(), 3, {3}};
    std::vector<ParamRef> ps = {p};
    SignSGD opt(0.5f);
    opt.step(ps);
    CHECK(w[0] == 0.5f);
    CHECK(w[1] == 1.5f);
    CHECK(w[2] == 1.0f);
}
