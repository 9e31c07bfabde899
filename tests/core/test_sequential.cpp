#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
using Net = Sequential<Dense<5, ReLU>, Dropout<0.5f>, Dense<3, Softmax>>;

// Naive reference: y = softmax(relu(x W1 + b1) W2 + b2), in double.
Tensor<2> naive_forward(Net& m, const Tensor<2>& x) {
    auto& d1 = m.layer<0>();
    auto& d2 = m.layer<2>();
    const std::size_t n = x.shape()[0], f = x.shape()[1];
    Tensor<2> out({n, 3});
    for (std::size_t i = 0; i < n; ++i) {
        double h[5];
        for (std::size_t u = 0; u < 5; ++u) {
            double s = d1.bias()(u);
            for (std::size_t k = 0; k < f; ++k) s += double(x(i, k)) * d1.kernel()(k, u);
            h[u] = s > 0 ? s : 0;
        }
        double z[3], mx = -1e300, sum = 0;
        for (std::size_t c = 0; c < 3; ++c) {
            z[c] = d2.bias()(c);
            for (std::size_t u = 0; u < 5; ++u) z[c] += h[u] * d2.kernel()(u, c);
            mx = std::max(mx, z[c]);
        }
        for (std::size_t c = 0; c < 3; ++c) sum += std::exp(z[c] - mx);
        for (std::size_t c = 0; c < 3; ++c) out(i, c) = float(std::exp(z[c] - mx) / sum);
    }
    return out;
}
}  // namespace

TEST_CASE("Sequential: ranks are computed at compile time") {
    static_assert(Net::input_rank == 2 && Net::output_rank == 2);
    static_assert(Sequential<Dense<4>, Flatten, ReLU>::ranks[3] == 2);
    static_assert(Net::outputs_probabilities && !Net::outputs_logits);
    static_assert(Sequential<Dense<4>, Dense<2>>::outputs_logits);
}

TEST_CASE("Sequential: forward matches a naive computation, eval mode is deterministic") {
    Net m;
    m.build({4}, 7);
    Rng rng(3);
    Tensor<2> x = random_tensor<2>({6, 4}, rng);
    const Tensor<2> ref = naive_forward(m, x);
    const Tensor<2>& y = m.forward(x);
    CHECK(test::max_abs_diff(y, ref) < 1e-6);
    const Tensor<2> y1 = y;
    CHECK(test::max_abs_diff(m.forward(x), y1) == 0.0);
}

TEST_CASE("Sequential: summary counts parameters like Keras") {
    Net m;
    m.build({4});
    const std::string s = m.summary();
    CHECK(s.find("dense (Dense)") != std::string::npos);
    CHECK(s.find("dropout (Dropout)") != std::string::npos);
    CHECK(s.find("dense_1 (Dense)") != std::string::npos);
    CHECK(s.find("(None, 5)") != std::string::npos);
    // 4*5+5 = 25 and 5*3+3 = 18
    CHECK(s.find("Total params: 43") != std::string::npos);
    CHECK(s.find("Trainable params: 43") != std::string::npos);
    m.layer<0>().set_trainable(false);
    const auto c = m.parameter_counts();
    CHECK(c[0] == 43);
    CHECK(c[1] == 18);
    CHECK(c[2] == 25);
    CHECK(m.summary().find("Non-trainable params: 25") != std::string::npos);
}

TEST_CASE("Sequential: activation buffers are allocated once per shape") {
    Net m;
    m.build({4});
    Rng rng(1);
    Tensor<2> x = random_tensor<2>({8, 4}, rng);
    const float* p1 = m.forward(x).data();
    Tensor<2> x2 = random_tensor<2>({8, 4}, rng);
    const float* p2 = m.forward(x2).data();
    CHECK(p1 == p2);
}

TEST_CASE("Sequential: a frozen layer gets no update, a learning-rate multiplier scales the step") {
    Net m;
    m.build({4});
    Rng rng(2);
    Tensor<2> x = random_tensor<2>({16, 4}, rng);
    Tensor<2> y = test::one_hot({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, 3);
    m.layer<0>().set_trainable(false);
    const Tensor<2> k0 = m.layer<0>().kernel();
    const Tensor<2> k2 = m.layer<2>().kernel();
    SGD opt(0.1f);
    CategoricalCrossentropy<> loss;
    train_step(m, loss, opt, x, y);
    CHECK(test::max_abs_diff(m.layer<0>().kernel(), k0) == 0.0);
    CHECK(test::max_abs_diff(m.layer<2>().kernel(), k2) > 0.0);
    for (const ParamRef& p : m.parameters()) CHECK(p.trainable == (p.name.rfind("dense_1/", 0) == 0));

    // lr multiplier: a step with multiplier 0.5 moves the weights half as far as with 1.
    Net a, b;
    a.build({4});
    b.build({4});
    b.layer<2>().set_learning_rate_multiplier(0.5f);
    const Tensor<2> w0 = a.layer<2>().kernel();
    SGD oa(0.1f), ob(0.1f);
    CategoricalCrossentropy<> la, lb;
    a.set_seed(5);
    b.set_seed(5);
    train_step(a, la, oa, x, y);
    train_step(b, lb, ob, x, y);
    const auto& wa = a.layer<2>().kernel();
    const auto& wb = b.layer<2>().kernel();
    for (std::size_t i = 0; i < w0.size(); ++i)
        CHECK(double(wb.data()[i] - w0.data()[i]) == doctest::Approx(0.5 * (wa.data()[i] - w0.data()[i])).epsilon(1e-4));
}

TEST_CASE("Sequential: the whole chain passes the gradient check, and nests") {
    using Inner = Sequential<Dense<6, Softmax>, Dense<4>>;
    Sequential<Dense<5>, Inner, Dense<3, Softmax>> m;
    m.build({3});
    Rng rng(9);
    Tensor<2> x = random_tensor<2>({4, 3}, rng);
    auto r = check_layer_gradients(m, x);
    CHECK_MESSAGE(r.ok, r.report());
    CHECK(r.checked > 12);
    // names of nested parameters carry both prefixes
    bool found = false;
    for (const ParamRef& p : m.parameters()) found |= p.name == "sequential/dense_1/kernel";
    CHECK(found);
}

TEST_CASE("Sequential: dropout masks depend only on the seed and the step") {
    Net a, b;
    a.build({4}, 1);
    b.build({4}, 1);
    Rng rng(4);
    Tensor<2> x = random_tensor<2>({32, 4}, rng);
    a.set_seed(11);
    b.set_seed(11);
    const Tensor<2> ya = a.forward(x, true);
    const Tensor<2> yb = b.forward(x, true);
    CHECK(test::max_abs_diff(ya, yb) == 0.0);
    const Tensor<2> ya2 = a.forward(x, true);  // next step: a different mask
    CHECK(test::max_abs_diff(ya, ya2) > 0.0);
}

TEST_CASE("Sequential: wrong input width is a shape_error naming the layer") {
    Net m;
    m.build({4});
    Tensor<2> x = zeros<2>({2, 5});
    CHECK_THROWS_AS(m.forward(x), shape_error);
    try {
        m.forward(x);
    } catch (const shape_error& e) {
        CHECK(std::string(e.what()).find("Dense") != std::string::npos);
    }
}

TEST_CASE("Sequential: forward_from / backward_from run the tail only, with the same results") {
    Net a, b;
    a.build({4}, 3);
    b.build({4}, 3);
    a.set_seed(7);
    b.set_seed(7);
    Rng rng(12);
    Tensor<2> x = random_tensor<2>({6, 4}, rng);
    Tensor<2> y = test::one_hot({0, 1, 2, 0, 1, 2}, 3);
    a.layer<0>().set_trainable(false);
    b.layer<0>().set_trainable(false);
    // a: full forward/backward; b: features of layer 0 computed once, then the tail.
    const Tensor<2> full = a.forward(x, true);
    Tensor<2> feats({6, 5});
    b.layer<0>().forward(x, feats, Context{.training = false});
    const Tensor<2> tail = b.forward_from<1>(feats, true);
    CHECK(test::max_abs_diff(full, tail) < 1e-6);  // same dropout mask: same seed and step
    CategoricalCrossentropy<> loss;
    Tensor<2> g(shape_of(full));
    loss.backward(full, y, g);
    a.backward(g);
    b.backward_from<1>(g);
    const auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i)
        if (pa[i].trainable)
            for (std::size_t j = 0; j < pa[i].size; ++j) CHECK(pa[i].grad[j] == doctest::Approx(pb[i].grad[j]).epsilon(1e-5));
    CHECK_THROWS_AS(b.backward(g), config_error);
}

TEST_CASE("FunctionRef calls the callable it refers to, with its state, and returns its value") {
    int calls = 0;
    auto count = [&calls](int by) { calls += by; };
    FunctionRef<void(int)> f = count;
    f(2);
    f(3);
    CHECK(calls == 5);

    struct Acc {
        int total = 0;
        int operator()(int x) { return total += x; }
    } acc;
    FunctionRef<int(int)> g = acc;  // refers to acc: its state changes
    CHECK(g(4) == 4);
    CHECK(g(6) == 10);
    CHECK(acc.total == 10);

    // A void reference discards a callable's result; a temporary lives for the call.
    auto twice = [](FunctionRef<long(long)> h, long x) { return h(h(x)); };
    CHECK(twice([](long x) { return x * 3; }, 2) == 18);
    FunctionRef<void(int)> discard = acc;
    discard(5);
    CHECK(acc.total == 15);
}

namespace {
int twice_of(int x) { return 2 * x; }
std::size_t visited_tensors = 0;
void count_tensor(ParamRef&) { ++visited_tensors; }
}  // namespace

TEST_CASE("FunctionRef refers to a function as well") {
    FunctionRef<int(int)> f = twice_of;
    CHECK(f(21) == 42);
    FunctionRef<int(int)> g = &twice_of;
    CHECK(g(4) == 8);
    FunctionRef<int(int)> copy = f;  // a copy refers to the same function, not to f
    CHECK(copy(5) == 10);
    Dense<4> d;
    Rng rng(1);
    d.build({3}, rng);
    visited_tensors = 0;
    d.visit_parameters(count_tensor);  // a plain function as the visitor
    CHECK(visited_tensors == 2);
}

TEST_CASE("a layer visited through a ParamVisitor: every tensor once, in order, with its gradient") {
    Sequential<Dense<4, ReLU>, Dense<2>> m;
    m.build({3}, 1);
    std::vector<std::string> names;
    std::size_t total = 0;
    m.layer<0>().visit_parameters([&](ParamRef& p) {
        names.push_back(p.name);
        total += p.size;
        CHECK(p.grad != nullptr);
    });
    REQUIRE(names.size() == 2);
    CHECK(names[0] == "kernel");
    CHECK(names[1] == "bias");
    CHECK(total == 3 * 4 + 4);
    std::vector<std::string> all;
    m.visit_parameters([&](ParamRef& p) { all.push_back(p.name); });
    CHECK(all == std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"});
}

namespace {
// y = 2x.
struct Twice {
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    Shape<2> output_shape(const Shape<2>& in) const { return in; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = 2.0f * x; }
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = 2.0f * dy;
    }
};
// y = x + 1, which offers to run fused after Twice in any pass (forward_after) but has no
// backward_after: Sequential may fuse the pair only where no backward follows.
struct PlusOneAfterTwice {
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    int fused = 0;
    Shape<2> output_shape(const Shape<2>& in) const { return in; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = x + 1.0f; }
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = dy;
    }
    bool forward_after(Twice&, const Tensor<2>& x, Tensor<2>& y, const Context&, const Context&) {
        y = 2.0f * x + 1.0f;
        ++fused;
        return true;
    }
};
}  // namespace

TEST_CASE("Sequential: a pair without backward_after runs fused only where no backward follows") {
    Sequential<Twice, PlusOneAfterTwice> net;
    net.build({3}, 1);
    Tensor<2> x({2, 3});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) - 2.0f;
    const Tensor<2> y = net.forward(x);  // inference: fused, Twice's output never made
    CHECK(net.layer<1>().fused == 1);
    CHECK(net.activation<0>().size() == 0);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(y.data()[i] == 2.0f * x.data()[i] + 1.0f);
    const Tensor<2> yt = net.forward(x, true, true);  // a backward follows: one layer at a time
    CHECK(net.layer<1>().fused == 1);
    CHECK(net.activation<0>().size() == x.size());
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(yt.data()[i] == y.data()[i]);
    Tensor<2> dy({2, 3});
    for (std::size_t i = 0; i < dy.size(); ++i) dy.data()[i] = 0.5f * float(i);
    const Tensor<2>* dx = net.backward(dy, true);
    REQUIRE(dx);
    for (std::size_t i = 0; i < dx->size(); ++i) CHECK(dx->data()[i] == 2.0f * dy.data()[i]);
}
