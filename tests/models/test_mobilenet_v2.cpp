#include <doctest/doctest.h>

#include <set>

#include "test_util.hpp"
#include "typenet/models/mobilenet_v2.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

TEST_CASE("MobileNetV2: output shapes and Keras's parameter counts") {
    models::MobileNetV2<> m;
    m.build(224);
    CHECK(m.output_shape({1, 224, 224, 3}) == Shape<2>{1, 1280});
    // Keras: MobileNetV2(include_top=False, alpha=1.0) has 2,257,984 parameters, of
    // which 34,112 non-trainable (batch-norm moving statistics).
    std::size_t params = 0, buffers = 0;
    m.visit_parameters([&](ParamRef& p) { params += p.size; });
    m.visit_buffers([&](BufferRef& b) { buffers += b.size; });
    CHECK(params + buffers == 2257984);
    CHECK(buffers == 34112);
    // 52 convolutions + 52 batch norms (4 tensors each) = 260 tensors, as the TF-slim checkpoint.
    std::size_t tensors = 0;
    m.visit_parameters([&](ParamRef&) { ++tensors; });
    m.visit_buffers([&](BufferRef&) { ++tensors; });
    CHECK(tensors == 260);

    models::MobileNetV2<true> top;
    top.build(224);
    std::size_t top_params = 0;
    top.visit_parameters([&](ParamRef& p) { top_params += p.size; });
    CHECK(top_params + buffers == 2257984 + 1280 * 1001 + 1001);
}

TEST_CASE("MobileNetV2: parameter names follow the TF-slim checkpoint") {
    models::MobileNetV2<> m;
    m.build(32);
    std::set<std::string> names;
    m.visit_parameters([&](ParamRef& p) { names.insert(p.name); });
    m.visit_buffers([&](BufferRef& b) { names.insert(b.name); });
    CHECK(names.count("Conv/weights"));
    CHECK(names.count("Conv/BatchNorm/moving_variance"));
    CHECK(names.count("expanded_conv/depthwise/depthwise_weights"));
    CHECK(names.count("expanded_conv/project/BatchNorm/beta"));
    CHECK_FALSE(names.count("expanded_conv/expand/weights"));  // block 0 has no expansion
    CHECK(names.count("expanded_conv_16/expand/weights"));
    CHECK(names.count("Conv_1/weights"));
}

TEST_CASE("MobileNetV2: stride-2 blocks give 112, 56, 28, 14, 7; batch items are independent") {
    models::MobileNetV2<> m;
    m.build(64);
    auto& net = m.net();
    Shape<4> s{2, 64, 64, 3};
    CHECK(net.layer<0>().output_shape(s) == Shape<4>{2, 32, 32, 32});
    Rng rng(1);
    Tensor<4> x = random_tensor<4>({2, 64, 64, 3}, rng, 0, 1);
    const Tensor<2> both = m.forward(x);
    CHECK(both.shape()[1] == 1280);
    Tensor<4> one({1, 64, 64, 3});
    std::copy(x.data() + one.size(), x.data() + 2 * one.size(), one.data());
    const Tensor<2> second = m.forward(one);
    double worst = 0;
    for (std::size_t c = 0; c < 1280; ++c) worst = std::max(worst, double(std::abs(second(0, c) - both(1, c))));
    CHECK(worst < 1e-4);
}

TEST_CASE("MobileNetV2: the scratch (inference) path equals the training-buffer path") {
    models::MobileNetV2<> m;
    m.build(32);
    Rng rng(2);
    Tensor<4> x = random_tensor<4>({2, 32, 32, 3}, rng, 0, 1);
    const Tensor<2> a = m.forward(x);
    Tensor<2> b({2, 1280});
    Context ctx;
    ctx.training = false;
    ctx.backward = true;  // keeps per-block buffers
    ctx.trainable = false;
    m.forward(x, b, ctx);
    CHECK(test::max_abs_diff(a, b) < 1e-5);
}

TEST_CASE("MobileNetV2: unfreeze_from<12> leaves blocks 0-11 frozen") {
    models::MobileNetV2<> m;
    m.build(32);
    m.set_trainable(false);
    m.unfreeze_from<12>();
    std::size_t trainable_tensors = 0;
    bool block11_frozen = true, block12_trainable = true;
    m.visit_parameters([&](ParamRef& p) {
        trainable_tensors += p.trainable;
        if (p.name.rfind("expanded_conv_11/", 0) == 0) block11_frozen &= !p.trainable;
        if (p.name.rfind("expanded_conv_12/", 0) == 0 && p.name.find("BatchNorm") == std::string::npos)
            block12_trainable &= p.trainable;
    });
    CHECK(block11_frozen);
    CHECK(block12_trainable);
    CHECK(m.is_trainable());
    m.unfreeze_from("Conv_1");
    std::size_t n = 0;
    m.visit_parameters([&](ParamRef& p) { n += p.trainable; });
    CHECK(n == 3);  // Conv_1 weights, gamma, beta
    CHECK_THROWS_AS(m.unfreeze_from("expanded_conv_99"), config_error);
}

TEST_CASE("MobileNetV2 at 32x32: gradient check on a sample of parameters and inputs") {
    models::MobileNetV2<> m;
    Rng rng(3);
    m.build({2, 32, 32, 3}, rng);
    // Keep ReLU6 inputs inside (0, 6) so finite differences do not cross kinks (the
    // masks are checked layer by layer): batch norm gamma 0.5 and beta 3, except the
    // projections (linear) whose beta stays 0.
    m.visit_parameters([](ParamRef& p) {
        const bool projection = p.name.find("project") != std::string::npos;
        if (p.name.find("BatchNorm/gamma") != std::string::npos) std::fill(p.value, p.value + p.size, 0.5f);
        if (p.name.find("BatchNorm/beta") != std::string::npos)
            std::fill(p.value, p.value + p.size, projection ? 0.0f : 3.0f);
    });
    weights_changed(m);
    Tensor<4> x = random_tensor<4>({2, 32, 32, 3}, rng, 0, 1);
    GradientCheckOptions o;
    o.max_checks = 2;   // two values of each checked tensor and of the input
    o.max_tensors = 40; // a random sample of the 156 parameter tensors (each check re-folds every layer)
    o.tolerance = 2e-2;
    o.floor = 0.1;  // 50 layers of float: differences carry ~1e-3 of noise
    o.training = false;
    auto r = check_layer_gradients(m, x, o);
    CHECK(r.checked > 60);
    CHECK_MESSAGE(r.ok, r.report());
}
