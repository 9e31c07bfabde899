// custom_model: compose a network as a type, add a layer of your own, train it.
//
// The data are three interleaved spirals in the plane, generated here (900 points,
// 3 classes). The network is
//
//     Sequential<Fourier<32>, Dense<32, ReLU>, Dropout<0.2f>, Dense<3, Softmax>>
//
// where `Fourier` is a layer written in this file: it satisfies typenet's Layer
// concept (see docs/concepts.md) and has trainable parameters, so the optimizer
// updates it like any built-in layer.
//
//     custom_model [--epochs N] [--seed S]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numbers>
#include <string>
#include <vector>

#include "typenet/typenet.hpp"

using namespace typenet;

// A user-written layer: y = sin(x W + b), K random Fourier features of the input,
// with W and b trained by back-propagation.
template <std::size_t K>
struct Fourier {
    static constexpr std::size_t input_rank = 2;   // (batch, features)
    static constexpr std::size_t output_rank = 2;  // (batch, K)

    Tensor<2> w, dw;
    Tensor<1> b, db;

    Shape<2> output_shape(const Shape<2>& in) const { return {in[0], K}; }

    void build(const Shape<2>& in, Rng& rng) {
        w = Tensor<2>(Shape<2>{in[1], K});
        b = Tensor<1>(Shape<1>{K});
        for (float& v : w) v = 2.0f * rng.normal();  // frequencies
        for (float& v : b) v = rng.uniform(0.0f, 2.0f * std::numbers::pi_v<float>);
        dw = zeros<2>({in[1], K});
        db = zeros<1>({K});
    }

    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) {
        for (std::size_t n = 0; n < x.shape()[0]; ++n)
            for (std::size_t k = 0; k < K; ++k) {
                float z = b(k);
                for (std::size_t i = 0; i < x.shape()[1]; ++i) z += x(n, i) * w(i, k);
                y(n, k) = std::sin(z);
            }
    }

    void backward(const Tensor<2>& x, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context& ctx) {
        if (ctx.trainable) {
            dw.fill(0.0f);
            db.fill(0.0f);
        }
        if (dx) dx->fill(0.0f);
        for (std::size_t n = 0; n < x.shape()[0]; ++n)
            for (std::size_t k = 0; k < K; ++k) {
                float z = b(k);
                for (std::size_t i = 0; i < x.shape()[1]; ++i) z += x(n, i) * w(i, k);
                const float g = dy(n, k) * std::cos(z);  // d sin(z) = cos(z)
                if (ctx.trainable) {
                    db(k) += g;
                    for (std::size_t i = 0; i < x.shape()[1]; ++i) dw(i, k) += g * x(n, i);
                }
                if (dx)
                    for (std::size_t i = 0; i < x.shape()[1]; ++i) (*dx)(n, i) += g * w(i, k);
            }
    }

    template <class F>
    void visit_parameters(F&& f) {
        ParamRef pw = param_ref("frequencies", w, dw);
        f(pw);
        ParamRef pb = param_ref("phases", b, db);
        f(pb);
    }
};

// Three interleaved spirals: class k's points lie at radius r in [0, 1] and angle
// 4r + 2 pi k / 3 (plus noise).
static void make_spirals(std::size_t per_class, Rng& rng, Tensor<2>& x, Tensor<2>& y) {
    const std::size_t n = 3 * per_class;
    x = Tensor<2>({n, 2});
    y = zeros<2>({n, 3});
    for (std::size_t k = 0; k < 3; ++k)
        for (std::size_t i = 0; i < per_class; ++i) {
            const std::size_t row = k * per_class + i;
            const float r = static_cast<float>(i) / static_cast<float>(per_class - 1);
            const float t = 4.0f * r + 2.0f * std::numbers::pi_v<float> * static_cast<float>(k) / 3.0f +
                            0.2f * rng.normal();
            x(row, 0) = r * std::sin(t);
            x(row, 1) = r * std::cos(t);
            y(row, k) = 1.0f;
        }
}

int main(int argc, char** argv) {
    std::size_t epochs = 100;
    std::uint64_t seed = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--epochs" || a == "--seed") {
            // "abc", "5x" or "-1" is an error, not 0, 5 or 2^64 - 1.
            const auto n = i + 1 < argc ? parse_whole_number(argv[++i]) : std::nullopt;
            if (!n) {
                std::fprintf(stderr, "custom_model: %s needs a whole number\n", a.c_str());
                return 2;
            }
            if (a == "--epochs") epochs = static_cast<std::size_t>(*n);
            else seed = *n;
        } else {
            std::fprintf(stderr, "usage: custom_model [--epochs N] [--seed S]\n");
            return 2;
        }
    }

    Rng rng(seed);
    Tensor<2> x, y;
    make_spirals(300, rng, x, y);

    Sequential<Fourier<32>, Dense<32, ReLU>, Dropout<0.2f>, Dense<3, Softmax>> model;
    model.build({2}, seed);
    std::cout << model.summary();

    Adam optimizer(0.01f);
    CategoricalCrossentropy<> loss;  // the model ends in Softmax: probabilities, not logits
    CategoricalAccuracy accuracy;
    Mean mean_loss;

    // Mini-batches of 64 from a fresh shuffle each epoch.
    const std::size_t n = x.shape()[0], batch = 64;
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    Tensor<2> bx, by;
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        rng.shuffle(order.begin(), order.end());
        accuracy.reset();
        mean_loss.reset();
        for (std::size_t start = 0; start < n; start += batch) {
            const std::size_t m = std::min(batch, n - start);
            ensure_shape(bx, {m, 2});
            ensure_shape(by, {m, 3});
            for (std::size_t j = 0; j < m; ++j) {
                for (std::size_t c = 0; c < 2; ++c) bx(j, c) = x(order[start + j], c);
                for (std::size_t c = 0; c < 3; ++c) by(j, c) = y(order[start + j], c);
            }
            mean_loss.add(train_step(model, loss, optimizer, bx, by, accuracy), static_cast<double>(m));
        }
        if (epoch == 1 || epoch % 25 == 0 || epoch == epochs)
            std::printf("epoch %4zu  loss %.4f  accuracy %.4f\n", epoch, mean_loss.result(), accuracy.result());
    }

    accuracy.reset();
    const float final_loss = evaluate_step(model, loss, x, y, accuracy);
    std::printf("final training accuracy %.4f (loss %.4f) on %zu points\n", accuracy.result(), final_loss, n);
    return accuracy.result() >= 0.95f ? 0 : 1;
}
