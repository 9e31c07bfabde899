// Convolution, batch norm, pooling and block layers: forward against naive loops
// (TensorFlow padding written out by hand here), gradient checks, batch-norm modes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "test_util.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
// TF SAME padding by hand: out = ceil(in / s), total = max((out-1)*s + k - in, 0), before = total / 2.
std::size_t same_pad_before(std::size_t in, std::size_t k, std::size_t s) {
    const std::size_t out = (in + s - 1) / s;
    const long total = std::max<long>(long((out - 1) * s + k) - long(in), 0);
    return std::size_t(total / 2);
}

// Naive NHWC convolution, HWIO weights, double accumulation.
Tensor<4> naive_conv(const Tensor<4>& x, const Tensor<4>& w, std::size_t s, bool same, bool depthwise) {
    const std::size_t n = x.shape()[0], h = x.shape()[1], wd = x.shape()[2], c = x.shape()[3];
    const std::size_t k = w.shape()[0], co = depthwise ? c : w.shape()[3];
    const std::size_t oh = same ? (h + s - 1) / s : (h - k) / s + 1, ow = same ? (wd + s - 1) / s : (wd - k) / s + 1;
    const std::size_t pt = same ? same_pad_before(h, k, s) : 0, pl = same ? same_pad_before(wd, k, s) : 0;
    Tensor<4> y = zeros<4>({n, oh, ow, co});
    for (std::size_t b = 0; b < n; ++b)
        for (std::size_t i = 0; i < oh; ++i)
            for (std::size_t j = 0; j < ow; ++j)
                for (std::size_t o = 0; o < co; ++o) {
                    double acc = 0;
                    for (std::size_t di = 0; di < k; ++di)
                        for (std::size_t dj = 0; dj < k; ++dj) {
                            const long r = long(i * s + di) - long(pt), q = long(j * s + dj) - long(pl);
                            if (r < 0 || q < 0 || r >= long(h) || q >= long(wd)) continue;
                            if (depthwise) acc += double(x(b, r, q, o)) * w(di, dj, o, 0);
                            else
                                for (std::size_t ci = 0; ci < c; ++ci) acc += double(x(b, r, q, ci)) * w(di, dj, ci, o);
                        }
                    y(b, i, j, o) = float(acc);
                }
    return y;
}

template <class L>
Tensor<4> run(L& l, const Tensor<4>& x, Context ctx = {}) {
    Tensor<4> y(l.output_shape(shape_of(x)));
    l.forward(x, y, ctx);
    return y;
}
}  // namespace

TEST_CASE("Conv2D matches a naive convolution: SAME (asymmetric for stride 2) and VALID") {
    Rng rng(1);
    {
        Conv2D<5, 3, 2, Padding::Same, false> conv;  // 224-like even input: pad 0 top/left, 1 bottom/right
        Tensor<4> x = random_tensor<4>({2, 8, 8, 3}, rng);
        conv.build(shape_of(x), rng);
        CHECK(conv.output_shape(shape_of(x)) == Shape<4>{2, 4, 4, 5});
        CHECK(same_pad_before(8, 3, 2) == 0);
        CHECK(test::max_abs_diff(run(conv, x), naive_conv(x, conv.kernel(), 2, true, false)) < 1e-5);
        // The last output row reads input rows 6, 7 and the padding row 8 (bottom pad):
        // changing input row 0 must not change output row 0's dependence on a row above.
    }
    {
        Conv2D<4, 3, 1, Padding::Valid> conv;
        Tensor<4> x = random_tensor<4>({1, 7, 6, 2}, rng);
        conv.build(shape_of(x), rng);
        conv.bias() = xt::xtensor<float, 1>({0.5f, -0.5f, 1.0f, 0.0f});
        Tensor<4> ref = naive_conv(x, conv.kernel(), 1, false, false);
        for (std::size_t i = 0; i < ref.size(); ++i) ref.data()[i] += conv.bias()(i % 4);
        CHECK(test::max_abs_diff(run(conv, x), ref) < 1e-5);
    }
    {
        Conv2D<6, 1, 1> conv;  // 1x1: the gemm path
        Tensor<4> x = random_tensor<4>({3, 5, 5, 7}, rng);
        conv.build(shape_of(x), rng);
        CHECK(test::max_abs_diff(run(conv, x), naive_conv(x, conv.kernel(), 1, true, false)) < 1e-5);
    }
    {
        Conv2D<3, 3, 2> conv;  // odd input, stride 2: total pad 2, 1 each side
        Tensor<4> x = random_tensor<4>({1, 7, 7, 2}, rng);
        conv.build(shape_of(x), rng);
        CHECK(same_pad_before(7, 3, 2) == 1);
        CHECK(test::max_abs_diff(run(conv, x), naive_conv(x, conv.kernel(), 2, true, false)) < 1e-5);
    }
}

TEST_CASE("DepthwiseConv2D matches a naive depthwise convolution") {
    Rng rng(2);
    for (std::size_t s : {1u, 2u}) {
        DepthwiseConv2D<3, 1, Padding::Same, false> dw1;
        DepthwiseConv2D<3, 2, Padding::Same, false> dw2;
        Tensor<4> x = random_tensor<4>({2, 6, 6, 17}, rng);
        if (s == 1) {
            dw1.build(shape_of(x), rng);
            CHECK(test::max_abs_diff(run(dw1, x), naive_conv(x, dw1.kernel(), 1, true, true)) < 1e-5);
        } else {
            dw2.build(shape_of(x), rng);
            CHECK(test::max_abs_diff(run(dw2, x), naive_conv(x, dw2.kernel(), 2, true, true)) < 1e-5);
        }
    }
}

TEST_CASE("convolution layers: gradient checks") {
    Rng rng(3);
    GradientCheckOptions o;
    o.max_checks = 60;
    {
        Conv2D<4, 3, 2> conv;
        Tensor<4> x = random_tensor<4>({2, 6, 6, 3}, rng);
        conv.build(shape_of(x), rng);
        auto r = check_layer_gradients(conv, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        Conv2D<3, 3, 1, Padding::Valid> conv;
        Tensor<4> x = random_tensor<4>({1, 5, 5, 2}, rng);
        conv.build(shape_of(x), rng);
        auto r = check_layer_gradients(conv, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        Conv2D<5, 1, 1> conv;
        Tensor<4> x = random_tensor<4>({2, 3, 3, 4}, rng);
        conv.build(shape_of(x), rng);
        auto r = check_layer_gradients(conv, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        DepthwiseConv2D<3, 2> dw;
        Tensor<4> x = random_tensor<4>({2, 6, 5, 3}, rng);
        dw.build(shape_of(x), rng);
        auto r = check_layer_gradients(dw, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        DepthwiseConv2D<3, 1> dw;
        Tensor<4> x = random_tensor<4>({1, 4, 4, 9}, rng);
        dw.build(shape_of(x), rng);
        auto r = check_layer_gradients(dw, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
    {
        GlobalAveragePooling2D gap;
        Tensor<4> x = random_tensor<4>({2, 3, 3, 5}, rng);
        auto r = check_layer_gradients(gap, x, o);
        CHECK_MESSAGE(r.ok, r.report());
        Tensor<2> y({2, 5});
        gap.forward(x, y, Context{});
        double s = 0;
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t j = 0; j < 3; ++j) s += x(1, i, j, 4);
        CHECK(y(1, 4) == doctest::Approx(s / 9).epsilon(1e-6));
    }
    {
        Rescaling<2.0f, -1.0f> rs;
        Tensor<4> x = random_tensor<4>({1, 2, 2, 3}, rng, 0, 1);
        auto r = check_layer_gradients(rs, x, o);
        CHECK_MESSAGE(r.ok, r.report());
    }
}

TEST_CASE("BatchNormalization: training statistics, moving averages, eval form, gradients") {
    Rng rng(4);
    BatchNormalization bn;
    Tensor<4> x = random_tensor<4>({4, 3, 3, 2}, rng, -2, 3);
    bn.build(shape_of(x), rng);
    bn.gamma() = xt::xtensor<float, 1>({1.5f, 0.5f});
    bn.beta() = xt::xtensor<float, 1>({0.1f, -0.2f});
    Context train;
    train.training = true;
    Tensor<4> y = run(bn, x, train);
    // Per channel: mean 0 / var 1 before gamma/beta.
    for (std::size_t c = 0; c < 2; ++c) {
        double m = 0, v = 0, ym = 0;
        for (std::size_t i = 0; i < 36; ++i) m += x.data()[i * 2 + c];
        m /= 36;
        for (std::size_t i = 0; i < 36; ++i) v += std::pow(x.data()[i * 2 + c] - m, 2);
        v /= 36;
        for (std::size_t i = 0; i < 36; ++i) ym += y.data()[i * 2 + c];
        CHECK(ym / 36 == doctest::Approx(bn.beta()(c)).epsilon(1e-5));
        const double expected_y0 = bn.gamma()(c) * (x.data()[c] - m) / std::sqrt(v + 1e-3) + bn.beta()(c);
        CHECK(y.data()[c] == doctest::Approx(expected_y0).epsilon(1e-4));
        // moving averages: 0.99 * initial + 0.01 * batch (variance unbiased)
        CHECK(bn.moving_mean()(c) == doctest::Approx(0.01 * m).epsilon(1e-4));
        CHECK(bn.moving_variance()(c) == doctest::Approx(0.99 + 0.01 * v * 36 / 35).epsilon(1e-4));
    }
    // Eval: moving statistics.
    Tensor<4> ye = run(bn, x, Context{.training = false});
    const double expected = bn.gamma()(0) * (x(0, 0, 0, 0) - bn.moving_mean()(0)) /
                                std::sqrt(bn.moving_variance()(0) + 1e-3) + bn.beta()(0);
    CHECK(ye(0, 0, 0, 0) == doctest::Approx(expected).epsilon(1e-5));

    // Every output moves with every input in training mode: float finite differences
    // carry ~1e-4 of noise (the exact check against double arithmetic is below).
    GradientCheckOptions o;
    o.training = true;
    o.max_checks = 72;
    o.tolerance = 5e-3;

    auto r = check_layer_gradients(bn, x, o);
    CHECK_MESSAGE(r.ok, r.report());
    o.training = false;
    auto re = check_layer_gradients(bn, x, o);
    CHECK_MESSAGE(re.ok, re.report());
}

TEST_CASE("BatchNormalization: training backward equals a double-precision reference") {
    Rng rng(14);
    const std::size_t R = 36, C = 3;
    Tensor<2> x = random_tensor<2>({R, C}, rng, -2, 3);
    BatchNormalization bn;
    bn.build(Shape<2>{R, C}, rng);
    bn.gamma() = xt::xtensor<float, 1>({1.5f, 0.5f, -0.7f});
    bn.beta() = xt::xtensor<float, 1>({0.1f, -0.2f, 0.3f});
    Context ctx;
    ctx.training = true;
    Tensor<2> y({R, C}), dx({R, C});
    bn.forward(x, y, ctx);
    Tensor<2> r = random_tensor<2>({R, C}, rng);
    bn.backward(x, y, r, &dx, ctx);
    // f(x) = sum r * (gamma (x - mean) / sqrt(var + eps) + beta), all in double,
    // differentiated by central differences with a tiny step.
    auto f = [&](const std::vector<double>& xv) {
        double s = 0;
        for (std::size_t c = 0; c < C; ++c) {
            double mu = 0, var = 0;
            for (std::size_t i = 0; i < R; ++i) mu += xv[i * C + c];
            mu /= R;
            for (std::size_t i = 0; i < R; ++i) var += (xv[i * C + c] - mu) * (xv[i * C + c] - mu);
            var /= R;
            for (std::size_t i = 0; i < R; ++i)
                s += r(i, c) * (bn.gamma()(c) * (xv[i * C + c] - mu) / std::sqrt(var + 1e-3) + bn.beta()(c));
        }
        return s;
    };
    std::vector<double> xv(x.begin(), x.end());
    double worst = 0;
    for (std::size_t k = 0; k < R * C; ++k) {
        auto a = xv, b = xv;
        a[k] += 1e-6;
        b[k] -= 1e-6;
        worst = std::max(worst, std::abs((f(a) - f(b)) / 2e-6 - dx.data()[k]));
    }
    CHECK(worst < 1e-5);
    // gamma / beta gradients: sum r * x_hat and sum r
    for (std::size_t c = 0; c < C; ++c) {
        double mu = 0, var = 0, sg = 0, sb = 0;
        for (std::size_t i = 0; i < R; ++i) mu += xv[i * C + c];
        mu /= R;
        for (std::size_t i = 0; i < R; ++i) var += (xv[i * C + c] - mu) * (xv[i * C + c] - mu);
        var /= R;
        for (std::size_t i = 0; i < R; ++i) {
            sg += r(i, c) * (xv[i * C + c] - mu) / std::sqrt(var + 1e-3);
            sb += r(i, c);
        }
        std::vector<ParamRef> ps;
        bn.visit_parameters([&](ParamRef& p) { ps.push_back(p); });
        CHECK(ps[0].grad[c] == doctest::Approx(sg).epsilon(1e-5));
        CHECK(ps[1].grad[c] == doctest::Approx(sb).epsilon(1e-5));
    }
}

TEST_CASE("BatchNormalization Frozen: moving statistics unchanged by a training step, gamma/beta frozen") {
    Sequential<Dense<6>, BatchNormalization, Dense<2, Softmax>> m;
    m.build({3});
    m.layer<1>().set_mode(BatchNormMode::Frozen);
    Rng rng(5);
    Tensor<2> x = random_tensor<2>({8, 3}, rng);
    Tensor<2> y = test::one_hot({0, 1, 0, 1, 0, 1, 0, 1}, 2);
    const Tensor<1> mm = m.layer<1>().moving_mean(), mv = m.layer<1>().moving_variance();
    const Tensor<1> g = m.layer<1>().gamma();
    const Tensor<2> k0 = m.layer<0>().kernel();
    Adam opt(0.1f);
    CategoricalCrossentropy<> loss;
    train_step(m, loss, opt, x, y);
    CHECK(test::max_abs_diff(m.layer<1>().moving_mean(), mm) == 0.0);
    CHECK(test::max_abs_diff(m.layer<1>().moving_variance(), mv) == 0.0);
    CHECK(test::max_abs_diff(m.layer<1>().gamma(), g) == 0.0);
    CHECK(test::max_abs_diff(m.layer<0>().kernel(), k0) > 0.0);  // neighbours still train
    // Auto mode does update them
    m.layer<1>().set_mode(BatchNormMode::Auto);
    train_step(m, loss, opt, x, y);
    CHECK(test::max_abs_diff(m.layer<1>().moving_mean(), mm) > 0.0);
    CHECK(test::max_abs_diff(m.layer<1>().gamma(), g) > 0.0);
}

TEST_CASE("ConvBN: folded equals convolution followed by batch norm, within 1e-4") {
    Rng rng(6);
    for (bool depthwise : {false, true}) {
        ConvBN<ReLU6> cb(detail::ConvSpec{8, 3, 2, Padding::Same, depthwise});
        Tensor<4> x = random_tensor<4>({2, 8, 8, 8}, rng);
        cb.build(shape_of(x), rng);
        auto& bn = cb.batchnorm();
        for (std::size_t c = 0; c < 8; ++c) {
            bn.gamma(c) = rng.uniform(0.5f, 2.0f);
            bn.beta(c) = rng.uniform(-1, 1);
            bn.moving_mean(c) = rng.uniform(-0.5f, 0.5f);
            bn.moving_variance(c) = rng.uniform(0.2f, 3.0f);
        }
        Context eval;
        eval.training = false;
        eval.backward = false;
        Tensor<4> folded = run(cb, x, eval);
        // Moving statistics with a backward to follow (an input gradient in inference mode):
        // the convolution, then batch norm applied to its stored output.
        Context moving;
        moving.training = false;
        Tensor<4> unfolded = run(cb, x, moving);
        Tensor<4> z = naive_conv(x, cb.kernel(), 2, true, depthwise);
        double worst = 0, worst_unfolded = 0;
        for (std::size_t i = 0; i < z.size(); ++i) {
            const std::size_t c = i % 8;
            double v = bn.gamma(c) * (z.data()[i] - bn.moving_mean(c)) / std::sqrt(bn.moving_variance(c) + 1e-3) +
                       bn.beta(c);
            v = std::min(std::max(v, 0.0), 6.0);
            worst = std::max(worst, std::abs(v - folded.data()[i]));
            worst_unfolded = std::max(worst_unfolded, std::abs(v - unfolded.data()[i]));
        }
        CHECK(worst < 1e-4);
        CHECK(worst_unfolded < 1e-4);
    }
}

TEST_CASE("Conv2DBN with an input map equals the rescaling followed by the convolution") {
    // The map is applied before the zero padding: the reference rescales the input,
    // then convolves it with zero padding (as TensorFlow's Rescaling + Conv2D).
    Rng rng(16);
    Conv2DBN<32, 3, 2, ReLU6, 2.0f, -1.0f> mapped;
    Conv2DBN<32, 3, 2, ReLU6> plain;
    Tensor<4> x = random_tensor<4>({2, 10, 9, 3}, rng, 0, 1);
    mapped.build(shape_of(x), rng);
    plain.build(shape_of(x), rng);
    plain.kernel() = mapped.kernel();
    Tensor<4> xs = x;
    for (std::size_t i = 0; i < xs.size(); ++i) xs.data()[i] = x.data()[i] * 2.0f - 1.0f;
    for (bool training : {false, true}) {
        Context ctx;
        ctx.training = training;
        ctx.backward = false;
        const Tensor<4> a = run(mapped, x, ctx), b = run(plain, xs, ctx);
        CHECK(test::max_abs_diff(a, b) < 1e-5);
    }
    CHECK(mapped.config().find("input x*2-1") != std::string::npos);
    ConvBN<Linear> bad(detail::ConvSpec{0, 3, 1, Padding::Same, true, kernels::InputMap{2.0f, -1.0f}});
    CHECK_THROWS_AS(bad.build({1, 4, 4, 3}, rng), config_error);
}

TEST_CASE("Conv2DBN as a first layer (no input gradient) gives the gradients of the full backward") {
    // Without an input gradient a training backward on the direct kernel takes batch norm's
    // input gradient a row at a time (never a tensor); its weight and batch-norm gradients
    // must equal those of the backward that also computes dx (which writes that tensor).
    for (int threads : {1, 2}) {
        const int threads_before = max_threads();
        set_num_threads(threads);
        Rng rng(17);
        Conv2DBN<32, 3, 2, ReLU6, 2.0f, -1.0f> a, b;
        Tensor<4> x = random_tensor<4>({3, 14, 13, 3}, rng, 0, 1);
        a.build(shape_of(x), rng);
        b.build(shape_of(x), rng);
        a.kernel() = b.kernel();
        Context ctx;
        ctx.training = true;
        Tensor<4> ya(a.output_shape(shape_of(x))), yb(shape_of(ya)), dx(shape_of(x));
        a.forward(x, ya, ctx);
        b.forward(x, yb, ctx);
        const Tensor<4> dy = random_tensor<4>(shape_of(ya), rng, -1, 1);
        a.backward(x, ya, dy, nullptr, ctx);
        b.backward(x, yb, dy, &dx, ctx);
        std::vector<ParamRef> pa, pb;
        a.visit_parameters([&](ParamRef& p) { pa.push_back(p); });
        b.visit_parameters([&](ParamRef& p) { pb.push_back(p); });
        REQUIRE(pa.size() == 3);
        for (std::size_t i = 0; i < pa.size(); ++i) {
            double worst = 0, scale = 0;
            for (std::size_t j = 0; j < pb[i].size; ++j) scale = std::max(scale, double(std::fabs(pb[i].grad[j])));
            for (std::size_t j = 0; j < pa[i].size; ++j)
                worst = std::max(worst, double(std::fabs(pa[i].grad[j] - pb[i].grad[j])));
            INFO(pa[i].name << ", " << threads << " thread(s): largest difference " << worst << " of " << scale);
            CHECK(scale > 0);
            CHECK(worst <= 1e-5 * scale);
        }
        set_num_threads(threads_before);
    }
}

TEST_CASE("ConvBN with frozen batch norm: the produced backward equals the unfolded one") {
    // Frozen batch norm while the weights train (fine-tuning) runs the folded kernel, and its
    // backward takes dy masked by the clamp a block of rows at a time (1x1, depthwise, a first
    // layer on the direct kernel). Reference: the same layer in the moving-statistics path
    // (Auto mode, not training, a backward to follow), which normalises the stored
    // convolution output and runs the generic gradients (gradient-checked above).
    auto compare = [](auto& a, auto& b, const Tensor<4>& x, bool with_dx, const std::string& what) {
        Rng rng(29);
        a.build(shape_of(x), rng);
        b.build(shape_of(x), rng);
        b.kernel() = a.kernel();
        auto& bna = a.batchnorm();
        auto& bnb = b.batchnorm();
        for (std::size_t c = 0; c < a.out_channels(); ++c) {
            bna.gamma(c) = bnb.gamma(c) = rng.uniform(0.5f, 2.0f);
            bna.beta(c) = bnb.beta(c) = rng.uniform(-0.5f, 1.5f);
            bna.moving_mean(c) = bnb.moving_mean(c) = rng.uniform(-0.5f, 0.5f);
            bna.moving_variance(c) = bnb.moving_variance(c) = rng.uniform(0.2f, 3.0f);
        }
        a.set_batchnorm_mode(BatchNormMode::Frozen);
        Context frozen;
        frozen.training = true;
        Context moving;
        moving.training = false;
        Tensor<4> ya(a.output_shape(shape_of(x))), yb(shape_of(ya)), dxa(shape_of(x)), dxb(shape_of(x));
        a.forward(x, ya, frozen);
        b.forward(x, yb, moving);
        CHECK(test::max_abs_diff(ya, yb) < 1e-4);
        const Tensor<4> dy = random_tensor<4>(shape_of(ya), rng, -1, 1);
        a.backward(x, ya, dy, with_dx ? &dxa : nullptr, frozen);
        b.backward(x, yb, dy, &dxb, moving);
        std::vector<ParamRef> pa, pb;
        a.visit_parameters([&](ParamRef& p) { pa.push_back(p); });
        b.visit_parameters([&](ParamRef& p) { pb.push_back(p); });
        double worst = 0, scale = 0;
        for (std::size_t j = 0; j < pb[0].size; ++j) scale = std::max(scale, double(std::fabs(pb[0].grad[j])));
        for (std::size_t j = 0; j < pa[0].size; ++j)
            worst = std::max(worst, double(std::fabs(pa[0].grad[j] - pb[0].grad[j])));
        INFO(what << ": kernel gradient, largest difference " << worst << " of " << scale);
        CHECK(scale > 0);
        CHECK(worst <= 1e-5 * scale);
        if (with_dx) {
            INFO(what << ": input gradient, largest difference " << test::max_abs_diff(dxa, dxb));
            CHECK(test::max_abs(dxb) > 0);
            CHECK(test::max_abs_diff(dxa, dxb) <= 1e-5 * test::max_abs(dxb));
        }
    };
    for (int threads : {1, 2}) {
        const int threads_before = max_threads();
        set_num_threads(threads);
        Rng rng(31);
        const Tensor<4> x8 = random_tensor<4>({3, 9, 7, 8}, rng, -1, 1), x24 = random_tensor<4>({2, 9, 8, 24}, rng, 0, 2);
        const Tensor<4> img = random_tensor<4>({3, 14, 13, 3}, rng, 0, 1);
        {
            ConvBN<ReLU6> a(detail::ConvSpec{24, 1, 1, Padding::Same, false}), b(a.spec());
            compare(a, b, x8, true, "1x1 + ReLU6");
        }
        {
            ConvBN<Linear> a(detail::ConvSpec{24, 1, 1, Padding::Same, false}), b(a.spec());
            compare(a, b, x8, true, "1x1, linear");
        }
        for (std::size_t stride : {1, 2}) {
            ConvBN<ReLU6> a(detail::ConvSpec{0, 3, stride, Padding::Same, true}), b(a.spec());
            compare(a, b, x24, true, stride == 1 ? "depthwise, stride 1" : "depthwise, stride 2");
        }
        {
            Conv2DBN<32, 3, 2, ReLU6, 2.0f, -1.0f> a, b;
            compare(a, b, img, false, "stem, no input gradient");
        }
        set_num_threads(threads_before);
    }
}

TEST_CASE("Conv2DBN stem, training forward: batch statistics and output against a naive reference") {
    // The stem takes its batch statistics piece by piece as the direct kernel makes its
    // rows (several pieces and chunks here: 4096 output pixels of 32 channels). Reference:
    // the input rescaled by x * 2 - 1, a naive convolution in double, mean and biased
    // variance in double, then gamma, beta, ReLU6 and the moving averages written out.
    for (int threads : {1, 2}) {
        const int threads_before = max_threads();
        set_num_threads(threads);
        Rng rng(23);
        Conv2DBN<32, 3, 2, ReLU6, 2.0f, -1.0f> stem;
        Tensor<4> x = random_tensor<4>({4, 64, 63, 3}, rng, 0, 1);
        stem.build(shape_of(x), rng);
        auto& bn = stem.batchnorm();
        for (std::size_t c = 0; c < 32; ++c) {
            bn.gamma(c) = 0.5f + 0.03f * float(c);
            bn.beta(c) = 0.1f * float(c % 7) - 0.2f;
        }
        Tensor<4> xs = x;
        for (std::size_t i = 0; i < xs.size(); ++i) xs.data()[i] = x.data()[i] * 2.0f - 1.0f;
        const Tensor<4> z = naive_conv(xs, stem.kernel(), 2, true, false);
        Context ctx;
        ctx.training = true;
        const Tensor<4> y = run(stem, x, ctx);
        REQUIRE(shape_of(y) == shape_of(z));
        const std::size_t rows = z.size() / 32;
        double worst = 0;
        for (std::size_t c = 0; c < 32; ++c) {
            double m = 0, v = 0;
            for (std::size_t r = 0; r < rows; ++r) m += z.data()[r * 32 + c];
            m /= double(rows);
            for (std::size_t r = 0; r < rows; ++r) v += std::pow(z.data()[r * 32 + c] - m, 2);
            v /= double(rows);
            for (std::size_t r = 0; r < rows; ++r) {
                const double e = std::clamp(bn.gamma(c) * (z.data()[r * 32 + c] - m) / std::sqrt(v + 1e-3) + bn.beta(c),
                                            0.0, 6.0);
                worst = std::max(worst, std::fabs(e - y.data()[r * 32 + c]));
            }
            CHECK(bn.moving_mean(c) == doctest::Approx(0.01 * m).epsilon(1e-4));
            CHECK(bn.moving_variance(c) == doctest::Approx(0.99 + 0.01 * v * rows / (rows - 1)).epsilon(1e-4));
        }
        INFO(threads << " thread(s): largest difference " << worst);
        CHECK(worst < 1e-4);
        set_num_threads(threads_before);
    }
}

TEST_CASE("ConvBN: gradient checks in the batch-statistics, moving and folded (frozen BN) paths") {
    Rng rng(7);
    GradientCheckOptions o;
    o.max_checks = 50;
    o.tolerance = 5e-3;  // batch norm: see the BatchNormalization test
    {
        ConvBN<Linear> cb(detail::ConvSpec{6, 1, 1, Padding::Same, false});
        Tensor<4> x = random_tensor<4>({3, 4, 4, 5}, rng);
        cb.build(shape_of(x), rng);
        o.training = true;
        auto r = check_layer_gradients(cb, x, o);
        CHECK_MESSAGE(r.ok, "batch: " << r.report());
        o.training = false;
        auto rm = check_layer_gradients(cb, x, o);
        CHECK_MESSAGE(rm.ok, "moving: " << rm.report());
        cb.set_batchnorm_mode(BatchNormMode::Frozen);
        auto rf = check_layer_gradients(cb, x, o);
        CHECK_MESSAGE(rf.ok, "frozen: " << rf.report());
    }
    // Gradient checks of a built layer with batch statistics, then with batch norm frozen.
    auto batch_then_frozen = [&o](auto& layer, const Tensor<4>& x, const char* what) {
        o.training = true;
        auto r = check_layer_gradients(layer, x, o);
        CHECK_MESSAGE(r.ok, what << " batch: " << r.report());
        layer.set_batchnorm_mode(BatchNormMode::Frozen);
        auto rf = check_layer_gradients(layer, x, o);
        CHECK_MESSAGE(rf.ok, what << " frozen: " << rf.report());
    };
    {
        // MobileNetV2's stem: 3 channels read through x * 2 - 1 (the direct kernel);
        // the input gradient carries the map's scale.
        Rng srng(17);
        Conv2DBN<16, 3, 2, Linear, 2.0f, -1.0f> stem;  // Linear: no kinks for the differences to cross
        Tensor<4> x = random_tensor<4>({2, 7, 8, 3}, srng, 0, 1);
        stem.build(shape_of(x), srng);
        batch_then_frozen(stem, x, "stem");
    }
    {
        ConvBN<Linear> dw(detail::ConvSpec{0, 3, 2, Padding::Same, true});
        Tensor<4> x = random_tensor<4>({2, 6, 6, 4}, rng);
        dw.build(shape_of(x), rng);
        batch_then_frozen(dw, x, "depthwise");
    }
}

namespace {
// A 1x1 ConvBN's training step in double precision: z = x W, batch statistics, y = clamp(
// gamma x_hat + beta + res), and the gradients of sum(dy * y) by the chain rule written
// out (the clamp's mask taken from the layer's own output, so that values within rounding
// of a kink cannot flip it; the output itself is checked against the reference's).
struct PointwiseBNReference {
    std::vector<double> y, dx, dw, dgamma, dbeta;
};
PointwiseBNReference pointwise_bn_reference(const Tensor<4>& x, const std::vector<float>& w,
                                            const std::vector<float>& gamma, const std::vector<float>& beta,
                                            const float* res, const Tensor<4>& dy, const Tensor<4>& y_layer,
                                            bool clamp, std::size_t cout, double eps) {
    const std::size_t R = x.size() / x.shape()[3], cin = x.shape()[3];
    std::vector<double> z(R * cout, 0.0), xh(R * cout), g(R * cout), mean(cout, 0.0), var(cout, 0.0), is(cout);
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t o = 0; o < cout; ++o)
            for (std::size_t i = 0; i < cin; ++i) z[r * cout + o] += double(x.data()[r * cin + i]) * w[i * cout + o];
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t o = 0; o < cout; ++o) mean[o] += z[r * cout + o] / double(R);
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t o = 0; o < cout; ++o) var[o] += std::pow(z[r * cout + o] - mean[o], 2) / double(R);
    for (std::size_t o = 0; o < cout; ++o) is[o] = 1.0 / std::sqrt(var[o] + eps);
    PointwiseBNReference ref;
    ref.y.resize(R * cout);
    ref.dgamma.assign(cout, 0.0);
    ref.dbeta.assign(cout, 0.0);
    for (std::size_t k = 0; k < R * cout; ++k) {
        const std::size_t o = k % cout;
        xh[k] = (z[k] - mean[o]) * is[o];
        const double v = gamma[o] * xh[k] + beta[o] + (res ? res[k] : 0.0);
        ref.y[k] = clamp ? std::min(std::max(v, 0.0), 6.0) : v;
        const bool inside = !clamp || (y_layer.data()[k] > 0.0f && y_layer.data()[k] < 6.0f);
        g[k] = inside ? dy.data()[k] : 0.0;
        ref.dbeta[o] += g[k];
        ref.dgamma[o] += g[k] * xh[k];
    }
    std::vector<double> dz(R * cout);
    for (std::size_t k = 0; k < R * cout; ++k) {
        const std::size_t o = k % cout;
        dz[k] = gamma[o] * is[o] * (g[k] - ref.dbeta[o] / double(R) - xh[k] * ref.dgamma[o] / double(R));
    }
    ref.dw.assign(cin * cout, 0.0);
    ref.dx.assign(R * cin, 0.0);
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t i = 0; i < cin; ++i)
            for (std::size_t o = 0; o < cout; ++o) {
                ref.dw[i * cout + o] += double(x.data()[r * cin + i]) * dz[r * cout + o];
                ref.dx[r * cin + i] += dz[r * cout + o] * w[i * cout + o];
            }
    return ref;
}
// Largest |a - b| / (|b| + RMS of b).
double scaled_error(const float* a, const std::vector<double>& b) {
    double q = 0;
    for (double v : b) q += v * v;
    const double s = std::sqrt(q / double(b.size())) + 1e-12;
    double m = 0;
    for (std::size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]) / (std::abs(b[i]) + s));
    return m;
}
}  // namespace

TEST_CASE("ConvBN 1x1 training backward equals a double-precision reference (ReLU6 masks, residual, threads)") {
    // Enough rows for several of the backward's row blocks per thread, channel counts that
    // are not multiples of the vector width, narrow and wide outputs.
    struct Case {
        std::size_t cin, cout;
        bool relu6, residual;
        int threads;
    };
    const Case cases[] = {{24, 40, true, false, 2}, {40, 24, true, true, 2}, {17, 96, false, false, 2},
                          {96, 16, true, false, 1}, {33, 50, true, true, 1}};
    const int threads_before = max_threads();
    for (const Case& c : cases) {
        set_num_threads(c.threads);
        Rng rng(31 + c.cin);
        Tensor<4> x = random_tensor<4>({3, 19, 23, c.cin}, rng, -1, 2);
        ConvBN<ReLU6> relu6(detail::ConvSpec{c.cout, 1, 1, Padding::Same, false});
        ConvBN<Linear> linear(detail::ConvSpec{c.cout, 1, 1, Padding::Same, false});
        auto check = [&](auto& cb) {
            cb.build(shape_of(x), rng);
            std::vector<float> w(cb.kernel().begin(), cb.kernel().end()), gamma(c.cout), beta(c.cout);
            for (std::size_t o = 0; o < c.cout; ++o) {
                gamma[o] = 0.5f + 2.5f * float(o % 7) / 7.0f;  // many activations outside (0, 6) too
                beta[o] = -1.0f + 0.5f * float(o % 9);
            }
            cb.visit_parameters([&](ParamRef& p) {
                if (p.name == "BatchNorm/gamma") std::copy(gamma.begin(), gamma.end(), p.value);
                if (p.name == "BatchNorm/beta") std::copy(beta.begin(), beta.end(), p.value);
            });
            weights_changed(cb);
            Context ctx;
            ctx.training = true;
            const Shape<4> out = cb.output_shape(shape_of(x));
            Tensor<4> y(out), dx(shape_of(x));
            Tensor<4> res = random_tensor<4>(out, rng, -2, 2);
            cb.forward_raw(x.data(), shape_of(x), y.data(), c.residual ? res.data() : nullptr, ctx);
            Tensor<4> dy = random_tensor<4>(out, rng);
            cb.backward(x, y, dy, &dx, ctx);
            const bool clamp = std::is_same_v<std::decay_t<decltype(cb)>, ConvBN<ReLU6>>;
            const auto ref = pointwise_bn_reference(x, w, gamma, beta, c.residual ? res.data() : nullptr, dy, y,
                                                    clamp, c.cout, 1e-3);
            std::vector<ParamRef> ps;
            cb.visit_parameters([&](ParamRef& p) { ps.push_back(p); });
            REQUIRE(ps.size() == 3);  // weights, gamma, beta
            INFO("cin " << c.cin << " cout " << c.cout << (clamp ? " relu6" : " linear")
                        << (c.residual ? " residual" : "") << ", " << c.threads << " thread(s)");
            CHECK(scaled_error(y.data(), ref.y) < 1e-5);
            CHECK(scaled_error(dx.data(), ref.dx) < 1e-4);
            CHECK(scaled_error(ps[0].grad, ref.dw) < 1e-4);
            CHECK(scaled_error(ps[1].grad, ref.dgamma) < 1e-4);
            CHECK(scaled_error(ps[2].grad, ref.dbeta) < 1e-4);
        };
        if (c.relu6) check(relu6);
        else check(linear);
    }
    set_num_threads(threads_before);
}

TEST_CASE("ConvBN: batch-norm sums shared between layers are refused off the training path") {
    // A 1x1 layer can take the previous layer's batch-norm sums from its input gradient
    // (InvertedResidual's projection does, for the depthwise layer) only on the training
    // path with a mapped input; a layer told its sums were given must have had them made.
    Rng rng(5);
    Tensor<4> x = random_tensor<4>({2, 5, 5, 16}, rng, -1, 1);
    ConvBN<ReLU6> prev(detail::ConvSpec{16, 1, 1, Padding::Same, false}), cb(detail::ConvSpec{8, 1, 1, Padding::Same, false});
    prev.build(shape_of(x), rng);
    cb.build(shape_of(x), rng);
    Tensor<4> y(cb.output_shape(shape_of(x))), dx(shape_of(x)), dy = random_tensor<4>(shape_of(y), rng);
    Context infer;
    cb.forward(x, y, infer);
    prev.forward(x, dx, infer);
    const kernels::DxBatchNormSums sums = prev.gradient_sums();
    CHECK_THROWS_AS(cb.backward_raw(x.data(), shape_of(x), y.data(), dy.data(), dx.data(), infer, nullptr, &sums),
                    config_error);
    Context train;
    train.training = true;
    cb.forward(x, y, train);
    CHECK_THROWS_AS(cb.backward_raw(x.data(), shape_of(x), y.data(), dy.data(), nullptr, train, nullptr, &sums),
                    config_error);  // no input gradient to take them from
    ConvBN<ReLU6> fresh(detail::ConvSpec{8, 1, 1, Padding::Same, false});
    fresh.build(shape_of(x), rng);
    fresh.forward(x, y, train);
    CHECK_THROWS_AS(fresh.backward_raw(x.data(), shape_of(x), y.data(), dy.data(), dx.data(), train, nullptr, nullptr, true),
                    config_error);  // nobody made its sums
}

TEST_CASE("ConvBN: a forward from the expansion needs the expansion's statistics of the same input first") {
    Rng rng(6);
    Tensor<4> x = random_tensor<4>({2, 6, 6, 4}, rng);
    const Shape<4> e{2, 6, 6, 24};
    ConvBN<ReLU6> expand(detail::ConvSpec{24, 1, 1, Padding::Same, false}), dw(detail::ConvSpec{0, 3, 1, Padding::Same, true});
    expand.build(shape_of(x), rng);
    dw.build(e, rng);
    Context train;
    train.training = true;
    CHECK_THROWS_AS(dw.forward_from_expansion(x.data(), shape_of(x), e, expand, train), config_error);
    expand.forward_statistics_from_input(x.data(), shape_of(x), train);
    CHECK_NOTHROW(dw.forward_from_expansion(x.data(), shape_of(x), e, expand, train));
    // An ordinary forward of the expansion in between: its statistics are no longer those.
    Tensor<4> y(e);
    expand.forward_raw(x.data(), shape_of(x), y.data(), nullptr, train);
    CHECK_THROWS_AS(dw.forward_from_expansion(x.data(), shape_of(x), e, expand, train), config_error);
    // Another input shape.
    Tensor<4> x2 = random_tensor<4>({3, 6, 6, 4}, rng);
    expand.forward_statistics_from_input(x2.data(), shape_of(x2), train);
    CHECK_THROWS_AS(dw.forward_from_expansion(x.data(), shape_of(x), e, expand, train), config_error);
}

namespace {
// Batch-norm parameters that keep every ReLU6 input inside (0, 6), far from its kinks:
// finite differences through a chain of kinks are meaningless, and the masks themselves
// are checked on single layers above.
template <class L>
void away_from_relu6_kinks(L& l) {
    l.visit_parameters([](ParamRef& p) {
        const bool projection = p.name.find("project") != std::string::npos;
        if (p.name.find("BatchNorm/gamma") != std::string::npos) std::fill(p.value, p.value + p.size, 0.5f);
        if (p.name.find("BatchNorm/beta") != std::string::npos)
            std::fill(p.value, p.value + p.size, projection ? 0.0f : 3.0f);
    });
    weights_changed(l);
}
// Depthwise ConvBN layers with the stride fixed at compile time, to build the same
// block out of generic parts.
template <std::size_t S>
struct DepthwiseBN : ConvBN<ReLU6> {
    DepthwiseBN() : ConvBN<ReLU6>(detail::ConvSpec{0, 3, S, Padding::Same, true}) {}
};
// Copy parameters from `a` to `b` (same visiting order and sizes).
template <class A, class B>
void copy_weights(A& a, B& b) {
    std::vector<ParamRef> pa, pb;
    a.visit_parameters([&](ParamRef& p) { pa.push_back(p); });
    b.visit_parameters([&](ParamRef& p) { pb.push_back(p); });
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
        REQUIRE(pa[i].size == pb[i].size);
        std::copy(pa[i].value, pa[i].value + pa[i].size, pb[i].value);
    }
    weights_changed(b);
}
// Forward + backward of both; outputs, input gradients and parameter gradients must agree:
// within fixed bounds, or with `relative` (> 0) within that share of the largest magnitude
// of each (for blocks whose batch statistics are computed another way: the rounding
// differs, and grows with the values).
template <class A, class B>
void same_gradients(A& a, B& b, const Tensor<4>& x, bool training, double relative = 0) {
    auto bound = [relative](double fixed, const float* v, std::size_t n) {
        if (relative <= 0) return fixed;
        double m = 0;
        for (std::size_t i = 0; i < n; ++i) m = std::max(m, double(std::abs(v[i])));
        return relative * m;
    };
    Context ctx;
    ctx.training = training;
    Tensor<4> ya(a.output_shape(shape_of(x))), yb = ya;
    a.forward(x, ya, ctx);
    b.forward(x, yb, ctx);
    CHECK(test::max_abs_diff(ya, yb) < bound(1e-6, yb.data(), yb.size()));
    Rng rng(5);
    Tensor<4> r = random_tensor<4>(shape_of(ya), rng);
    Tensor<4> da(shape_of(x)), db(shape_of(x));
    a.backward(x, ya, r, &da, ctx);
    b.backward(x, yb, r, &db, ctx);
    CHECK(test::max_abs_diff(da, db) < bound(1e-5, db.data(), db.size()));
    std::vector<ParamRef> pa, pb;
    a.visit_parameters([&](ParamRef& p) { pa.push_back(p); });
    b.visit_parameters([&](ParamRef& p) { pb.push_back(p); });
    for (std::size_t i = 0; i < pa.size(); ++i) {
        double worst = 0;
        for (std::size_t j = 0; j < pa[i].size; ++j)
            worst = std::max(worst, double(std::abs(pa[i].grad[j] - pb[i].grad[j])));
        CAPTURE(pa[i].name);
        CHECK(worst < bound(1e-4, pb[i].grad, pb[i].size));
    }
}
}  // namespace

TEST_CASE("InvertedResidual: shapes, residual, scratch path") {
    Rng rng(8);
    InvertedResidual<6, 4, 1> same;  // 4 -> 4, stride 1: residual
    InvertedResidual<6, 8, 2> down;  // stride 2: no residual
    Tensor<4> x = random_tensor<4>({2, 6, 6, 4}, rng);
    same.build(shape_of(x), rng);
    down.build(shape_of(x), rng);
    CHECK(same.residual());
    CHECK_FALSE(down.residual());
    CHECK(down.output_shape(shape_of(x)) == Shape<4>{2, 3, 3, 8});
    // Inference (no backward: the fused kernel, no intermediate tensors at all) and the
    // layer-by-layer path with its own buffers give the same output.
    Context eval;
    eval.training = false;
    eval.trainable = false;
    Tensor<4> a = run(same, x, eval);
    Scratch scratch;
    eval.backward = false;
    eval.scratch = &scratch;
    Tensor<4> b = run(same, x, eval);
    CHECK(test::max_abs_diff(a, b) < 1e-5);
    CHECK(scratch.capacity() == 0);  // the fused path keeps nothing between the convolutions
}

namespace {
// Build `Block` and the generic layers `Generic` (`build_generic(g)`), give both the same
// weights, and compare their forward and backward on x.
template <class Block, class Generic, class BuildGeneric>
void against_generic(const Tensor<4>& x, Rng& rng, bool training, BuildGeneric&& build_generic, double relative = 0) {
    Block block;
    Generic generic;
    block.build(shape_of(x), rng);
    build_generic(generic);
    copy_weights(block, generic);
    same_gradients(block, generic, x, training, relative);
}
}  // namespace

TEST_CASE("InvertedResidual: backward equals the same block built from generic layers") {
    Rng rng(9);
    Tensor<4> x = random_tensor<4>({2, 6, 6, 4}, rng);
    auto residual_build = [&rng](const Tensor<4>& in) { return [&rng, s = shape_of(in)](auto& g) { g.build(s, rng); }; };
    for (bool training : {true, false}) {
        against_generic<InvertedResidual<6, 8, 2>, Sequential<Conv2DBN<24, 1, 1>, DepthwiseBN<2>, Conv2DBN<8, 1, 1, Linear>>>(
            x, rng, training, [](auto& g) { g.build({6, 6, 4}); });
        // With the skip connection.
        against_generic<InvertedResidual<6, 4, 1>, Residual<Conv2DBN<24, 1, 1>, DepthwiseBN<1>, Conv2DBN<4, 1, 1, Linear>>>(
            x, rng, training, residual_build(x));

        // Larger: the expansion's backward consumes the depthwise input gradient row by
        // row over several chunks (InvertedResidual's path for large tensors).
        Tensor<4> xl = random_tensor<4>({2, 24, 24, 8}, rng);
        against_generic<InvertedResidual<6, 16, 2>,
                        Sequential<Conv2DBN<48, 1, 1>, DepthwiseBN<2>, Conv2DBN<16, 1, 1, Linear>>>(
            xl, rng, training, [](auto& g) { g.build({24, 24, 8}); });
        against_generic<InvertedResidual<6, 8, 1>, Residual<Conv2DBN<48, 1, 1>, DepthwiseBN<1>, Conv2DBN<8, 1, 1, Linear>>>(
            xl, rng, training, residual_build(xl));

        // Two images of 28x28 or more: the expansion and the depthwise layer run fused in
        // training (`kernels::expand_depthwise_forward`, the expansion's statistics from
        // its input's covariance); the generic layers run them one after the other.
        Tensor<4> xf = random_tensor<4>({2, 28, 30, 8}, rng, -1.0f, 3.0f);
        const double fused = training ? 1e-5 : 0.0;
        against_generic<InvertedResidual<6, 16, 2>,
                        Sequential<Conv2DBN<48, 1, 1>, DepthwiseBN<2>, Conv2DBN<16, 1, 1, Linear>>>(
            xf, rng, training, [](auto& g) { g.build({28, 30, 8}); }, fused);
        against_generic<InvertedResidual<6, 8, 1>, Residual<Conv2DBN<48, 1, 1>, DepthwiseBN<1>, Conv2DBN<8, 1, 1, Linear>>>(
            xf, rng, training, residual_build(xf), fused);

        // Small and deep (rows < 4 x chunks x channels): the expansion's gradient stored,
        // its sums taken by the depthwise backward.
        Tensor<4> xs = random_tensor<4>({1, 4, 4, 16}, rng);
        against_generic<InvertedResidual<6, 16, 1>,
                        Residual<Conv2DBN<96, 1, 1>, DepthwiseBN<1>, Conv2DBN<16, 1, 1, Linear>>>(
            xs, rng, training, residual_build(xs));

        // No expansion.
        against_generic<InvertedResidual<1, 4, 1>, Residual<DepthwiseBN<1>, Conv2DBN<4, 1, 1, Linear>>>(
            x, rng, training, residual_build(x));
    }
}

namespace {
// Every batch norm of generic layers frozen.
template <class... Ls>
void freeze_layers(Sequential<Ls...>& s) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (s.template layer<I>().set_batchnorm_mode(BatchNormMode::Frozen), ...);
    }(std::index_sequence_for<Ls...>{});
}
template <class... Ls>
void freeze_layers(Residual<Ls...>& r) {
    freeze_layers(r.branch());
}
// `against_generic` with every batch norm frozen (the folded path of fine-tuning).
template <class Block, class Generic, class BuildGeneric>
void frozen_against_generic(const Tensor<4>& x, Rng& rng, BuildGeneric&& build_generic) {
    Block block;
    Generic generic;
    block.build(shape_of(x), rng);
    build_generic(generic);
    copy_weights(block, generic);
    block.set_batchnorm_mode(BatchNormMode::Frozen);
    freeze_layers(generic);
    same_gradients(block, generic, x, true);
}
}  // namespace

TEST_CASE("InvertedResidual with frozen batch norm: the shared ReLU6 masks give the generic layers' gradients") {
    // Fine-tuning (frozen batch norm: the folded path): the block's projection and depthwise
    // layers mask their input gradients by the ReLU6 of the layer before, which then takes
    // them as they come (`ConvBN::shares_clamp_mask`); the generic layers each mask their
    // own. Inputs in [-3, 9]: every ReLU6 clamps values on both sides.
    Rng rng(19);
    for (std::size_t h : {6, 28}) {
        INFO("input " << h << "x" << h);
        Tensor<4> x = random_tensor<4>({2, h, h, 8}, rng, -3.0f, 9.0f);
        frozen_against_generic<InvertedResidual<6, 16, 2>,
                               Sequential<Conv2DBN<48, 1, 1>, DepthwiseBN<2>, Conv2DBN<16, 1, 1, Linear>>>(
            x, rng, [h](auto& g) { g.build({h, h, 8}); });
        frozen_against_generic<InvertedResidual<6, 8, 1>,
                               Residual<Conv2DBN<48, 1, 1>, DepthwiseBN<1>, Conv2DBN<8, 1, 1, Linear>>>(
            x, rng, [&rng, &x](auto& g) { g.build(shape_of(x), rng); });
        // No expansion: the depthwise layer takes dy masked by the projection.
        frozen_against_generic<InvertedResidual<1, 16, 1>, Sequential<DepthwiseBN<1>, Conv2DBN<16, 1, 1, Linear>>>(
            x, rng, [h](auto& g) { g.build({h, h, 8}); });
    }
}

TEST_CASE("InvertedResidual: gradient check of whole blocks") {
    Rng rng(8);
    Tensor<4> x = random_tensor<4>({2, 6, 6, 4}, rng);
    InvertedResidual<6, 4, 1> same;
    InvertedResidual<6, 8, 2> down;
    InvertedResidual<1, 4, 1> first;
    same.build(shape_of(x), rng);
    down.build(shape_of(x), rng);
    first.build(shape_of(x), rng);
    away_from_relu6_kinks(same);
    away_from_relu6_kinks(down);
    away_from_relu6_kinks(first);
    GradientCheckOptions o;
    o.max_checks = 40;
    // Three batch norms deep in float arithmetic: finite differences carry ~1e-3 of
    // rounding noise; a wrong backward shows errors of order 1. The exact check of the
    // block is the comparison with generic layers above.
    o.tolerance = 2e-2;
    o.floor = 5e-2;  // gradients below this are compared absolutely (noise ~3e-4)
    for (bool training : {true, false}) {
        o.training = training;
        auto r1 = check_layer_gradients(same, x, o);
        CHECK_MESSAGE(r1.ok, "stride 1, training " << training << ": " << r1.report());
        auto r2 = check_layer_gradients(down, x, o);
        CHECK_MESSAGE(r2.ok, "stride 2, training " << training << ": " << r2.report());
        auto r3 = check_layer_gradients(first, x, o);
        CHECK_MESSAGE(r3.ok, "t=1, training " << training << ": " << r3.report());
    }
}

TEST_CASE("Residual<...>: y = x + F(x), gradient check") {
    Residual<Dense<3, Softmax>, Dense<3>> res;
    Rng rng(9);
    res.build({2, 3}, rng);
    Tensor<2> x = random_tensor<2>({2, 3}, rng);
    auto r = check_layer_gradients(res, x);
    CHECK_MESSAGE(r.ok, r.report());
}

TEST_CASE("Sequential: a stem Conv2DBN and a block without expansion run as one kernel in inference") {
    // Inference of the pair is kernels::stem_inverted_residual_forward (the stem's output
    // never written): the model's output has the bits of the layers run one at a time,
    // and the stem's activation stays empty. A training pass, and a block with a skip
    // connection, run the layers one by one.
    Rng rng(31);
    Tensor<4> x = random_tensor<4>({2, 19, 14, 3}, rng, 0, 1);
    Sequential<Conv2DBN<16, 3, 2, ReLU6, 2.0f, -1.0f>, InvertedResidual<1, 8, 1>, InvertedResidual<6, 8, 1>> net;
    net.build({19, 14, 3}, 5);
    Scratch scratch;
    Context eval;  // the layers' own inference paths (the block's fused kernel)
    eval.training = false;
    eval.trainable = false;
    eval.backward = false;
    eval.scratch = &scratch;
    const Tensor<4> s = run(net.layer<0>(), x, eval);
    const Tensor<4> b0 = run(net.layer<1>(), s, eval);
    const Tensor<4> want = run(net.layer<2>(), b0, eval);
    const Tensor<4> got = net.forward(x);
    REQUIRE(shape_of(got) == shape_of(want));
    CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    CHECK(net.activation<0>().size() == 0);   // fused: the stem's output never made
    CHECK(net.activation<1>().size() == b0.size());
    // A training pass that wants the input gradient keeps every activation (without it,
    // the pair is fused in training too: see the next test).
    net.forward(x, true, true);
    CHECK(net.activation<0>().size() == s.size());

    // Block 0 with a skip connection (16 -> 16) is not fused; the values are the same.
    Sequential<Conv2DBN<16, 3, 2, ReLU6, 2.0f, -1.0f>, InvertedResidual<1, 16, 1>> skip;
    skip.build({19, 14, 3}, 6);
    const Tensor<4> s2 = run(skip.layer<0>(), x, eval);
    const Tensor<4> want2 = run(skip.layer<1>(), s2, eval);
    const Tensor<4> got2 = skip.forward(x);
    CHECK(std::memcmp(got2.data(), want2.data(), got2.size() * sizeof(float)) == 0);
    CHECK(skip.activation<0>().size() == s2.size());
}

namespace {
// Largest |a - b| over every parameter gradient and every buffer (moving statistics) of
// two models of the same type, each relative to the largest |b| of its tensor.
template <class M>
double worst_state_difference(M& a, M& b) {
    std::vector<std::pair<const float*, std::size_t>> va, vb;
    a.visit_parameters([&](ParamRef& p) { va.emplace_back(p.grad, p.size); });
    b.visit_parameters([&](ParamRef& p) { vb.emplace_back(p.grad, p.size); });
    a.visit_buffers([&](BufferRef& r) { va.emplace_back(r.value, r.size); });
    b.visit_buffers([&](BufferRef& r) { vb.emplace_back(r.value, r.size); });
    REQUIRE(va.size() == vb.size());
    double worst = 0;
    for (std::size_t i = 0; i < va.size(); ++i) {
        double scale = 1e-6, d = 0;
        for (std::size_t j = 0; j < vb[i].second; ++j) {
            scale = std::max(scale, double(std::abs(vb[i].first[j])));
            d = std::max(d, double(std::abs(va[i].first[j] - vb[i].first[j])));
        }
        worst = std::max(worst, d / scale);
    }
    return worst;
}
}  // namespace

TEST_CASE("Sequential: a stem Conv2DBN and block 0 run fused in training, with the layers' own gradients") {
    // A training step with batch statistics and no input gradient fuses the pair too: the
    // stem's activation is never written, block 0's depthwise layer reads the stem's
    // convolution output through the stem's batch norm and ReLU6, and its backward takes
    // the stem's batch-norm sums (InvertedResidual::forward_after / backward_after).
    // Reference: the same model asked for its input gradient, which runs the layers one
    // by one, the stem's weight gradient on the generic path.
    using Net = Sequential<Conv2DBN<16, 3, 2, ReLU6, 2.0f, -1.0f>, InvertedResidual<1, 8, 1>, InvertedResidual<6, 8, 1>>;
    Rng rng(41);
    Tensor<4> x = random_tensor<4>({3, 23, 18, 3}, rng, 0, 1);
    Net fused, apart;
    fused.build({23, 18, 3}, 7);
    apart.build({23, 18, 3}, 7);
    // beta spread over [-2, 2]: some channels mostly clamped at 0, some mostly not.
    for (Net* n : {&fused, &apart}) {
        n->visit_parameters([](ParamRef& p) {
            if (p.name.find("BatchNorm/beta") != std::string::npos)
                for (std::size_t j = 0; j < p.size; ++j) p.value[j] = -2.0f + 4.0f * float(j % 5) / 4.0f;
        });
        weights_changed(*n);
    }
    for (int step = 0; step < 2; ++step) {  // the second step on moved moving averages and a second forward
        CAPTURE(step);
        const Tensor<4> yf = fused.forward(x, true);
        const Tensor<4> ya = apart.forward(x, true, true);
        CHECK(fused.activation<0>().size() == 0);  // fused: never written
        CHECK(apart.activation<0>().size() > 0);
        REQUIRE(shape_of(yf) == shape_of(ya));
        CHECK(test::max_abs_diff(yf, ya) < 1e-5);
        Rng r(50 + step);
        const Tensor<4> dy = random_tensor<4>(shape_of(yf), r);
        fused.backward(dy);
        apart.backward(dy, true);
        const double worst = worst_state_difference(fused, apart);
        MESSAGE("stem + block 0 fused in training: largest relative difference of a gradient or statistic " << worst);
        CHECK(worst < 1e-4);
    }
    // The fused path against finite differences (parameters only: no input gradient wanted).
    Sequential<Conv2DBN<8, 3, 2, ReLU6, 2.0f, -1.0f>, InvertedResidual<1, 4, 1>> pair;
    pair.build({9, 10, 3}, 3);
    away_from_relu6_kinks(pair);
    Tensor<4> xs = random_tensor<4>({2, 9, 10, 3}, rng, 0, 1);
    GradientCheckOptions o;
    o.training = true;
    o.check_input = false;
    o.max_checks = 40;
    o.tolerance = 2e-2;
    o.floor = 5e-2;
    auto res = check_layer_gradients(pair, xs, o);
    CHECK(pair.activation<0>().size() == 0);  // the check ran the fused pair
    CHECK_MESSAGE(res.ok, res.report());
}
