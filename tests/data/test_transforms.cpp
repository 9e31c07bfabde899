// Transforms as types (typenet/data/transform.hpp, transforms.hpp, augment.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "test_util.hpp"
#include "typenet/data/augment.hpp"
#include "typenet/data/transforms.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

Example ramp(std::size_t h, std::size_t w, std::size_t c = 3) {
    Example e;
    e.image = Tensor<3>(Shape<3>{h, w, c});
    for (std::size_t i = 0; i < e.image.size(); ++i) e.image.data()[i] = static_cast<float>((i * 7) % 251);
    e.label = 1;
    e.source = "ramp.png";
    return e;
}

struct NotATransform {
    void operator()(Example&) const {}
};

}  // namespace

// The concept and the type-level flags.
static_assert(Transform<Scale<255>>);
static_assert(Transform<Compose<Scale<255>, Resize<4, 4>, OneHot<3>>>);
static_assert(!Transform<NotATransform>);
static_assert(!Transform<int>);
static_assert(!Compose<Scale<255>, Resize<4, 4>>::is_random);
static_assert(Compose<Scale<255>, RandomFlipLeftRight>::is_random);
static_assert(Compose<Compose<Scale<2>>, Compose<RandomRotation>>::is_random);
static_assert(is_random_transform_v<RandomCrop<2, 2>>);
static_assert(!is_random_transform_v<Normalize>);

TEST_CASE("lambdas are transforms") {
    auto twice = [](Example& e, Rng&) { e.image *= 2.0f; };
    static_assert(Transform<decltype(twice)>);
    Compose<decltype(twice), Scale<4>> both{twice, Scale<4>{}};
    Example e = ramp(1, 2);
    const float before = e.image(0, 1, 2);
    Rng rng(1);
    both(e, rng);
    CHECK(e.image(0, 1, 2) == doctest::Approx(before / 2.0f));
}

TEST_CASE("Scale, Resize, crops") {
    Rng rng(1);
    Example e = ramp(4, 6);
    const Tensor<3> orig = e.image;
    Scale<255>{}(e, rng);
    CHECK(e.image(3, 5, 2) == orig(3, 5, 2) / 255.0f);
    Scale<0.5f>{}(e, rng);
    CHECK(e.image(3, 5, 2) == doctest::Approx(orig(3, 5, 2) / 255.0f * 2.0f));

    Example r = ramp(4, 6);
    Resize<3, 5>{}(r, rng);
    CHECK(typenet::test::max_abs_diff(r.image, resize_bilinear(orig, 3, 5)) == 0.0);
    Example a = ramp(4, 6);
    ResizeAntialiased<2, 3>{}(a, rng);
    CHECK(typenet::test::max_abs_diff(a.image, resize_antialiased(orig, 2, 3)) == 0.0);

    Example c = ramp(4, 6);
    CenterCrop<2, 2>{}(c, rng);
    CHECK(c.image(0, 0, 0) == orig(1, 2, 0));
    Example s = ramp(4, 6);
    CenterSquareCrop{}(s, rng);
    CHECK(s.image.shape()[1] == 4);
    CHECK(s.image(0, 0, 1) == orig(0, 1, 1));
    Example small = ramp(1, 1);
    CHECK_THROWS_AS((CenterCrop<2, 2>{}(small, rng)), shape_error);
}

TEST_CASE("Normalize and OneHot") {
    Rng rng(1);
    Example e = ramp(1, 2);
    e.image(0, 0, 0) = 10.0f, e.image(0, 0, 1) = 20.0f, e.image(0, 0, 2) = 30.0f;
    Normalize{{10.0f, 10.0f, 20.0f}, {1.0f, 2.0f, 5.0f}}(e, rng);
    CHECK(e.image(0, 0, 0) == 0.0f);
    CHECK(e.image(0, 0, 1) == 5.0f);
    CHECK(e.image(0, 0, 2) == 2.0f);
    CHECK_THROWS_AS(Normalize({1.0f, 2.0f}, {1.0f}), config_error);
    CHECK_THROWS_AS(Normalize({1.0f}, {0.0f}), config_error);
    Example two = ramp(1, 1, 2);
    CHECK_THROWS_AS((Normalize{{1.0f, 2.0f, 3.0f}, {1.0f, 1.0f, 1.0f}}(two, rng)), shape_error);

    Example o = ramp(1, 1);
    o.label = 2;
    OneHot<3>{}(o, rng);
    REQUIRE(o.target.size() == 3);
    CHECK(o.target(0) == 0.0f);
    CHECK(o.target(1) == 0.0f);
    CHECK(o.target(2) == 1.0f);
    o.label = 3;
    try {
        OneHot<3>{}(o, rng);
        FAIL("no error for label 3");
    } catch (const config_error& err) {
        CHECK(std::string(err.what()).find("ramp.png") != std::string::npos);
    }
}

TEST_CASE("flips and random crops") {
    Example e = ramp(3, 4);
    const Tensor<3> orig = e.image;
    Rng rng(5);
    RandomFlipLeftRight{1.0f}(e, rng);
    for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 4; ++x)
            for (std::size_t k = 0; k < 3; ++k) CHECK(e.image(y, x, k) == orig(y, 3 - x, k));
    Example u = ramp(3, 4);
    RandomFlipUpDown{1.0f}(u, rng);
    CHECK(u.image(0, 1, 2) == orig(2, 1, 2));
    Example n = ramp(3, 4);
    RandomFlipLeftRight{0.0f}(n, rng);
    CHECK(typenet::test::max_abs_diff(n.image, orig) == 0.0);

    // A random crop is the window at (below(H - h + 1), below(W - w + 1)) of the stream.
    const Tensor<3> src = ramp(5, 7).image;
    for (std::uint64_t seed = 0; seed < 8; ++seed) {
        Example c = ramp(5, 7);
        Rng r1(seed), r2(seed);
        RandomCrop<2, 3>{}(c, r1);
        const std::size_t top = r2.below(4), left = r2.below(5);
        for (std::size_t y = 0; y < 2; ++y)
            for (std::size_t x = 0; x < 3; ++x) CHECK(c.image(y, x, 1) == src(top + y, left + x, 1));
    }
    Example tiny = ramp(1, 1);
    CHECK_THROWS_AS((RandomCrop<2, 2>{}(tiny, rng)), shape_error);
}

TEST_CASE("rotation and zoom geometry") {
    const Tensor<3> img = ramp(5, 5).image;
    // 90 degrees counter-clockwise: out(y, x) = in(x, W - 1 - y).
    const Tensor<3> r = rotate(img, 90.0f);
    for (std::size_t y = 0; y < 5; ++y)
        for (std::size_t x = 0; x < 5; ++x)
            for (std::size_t k = 0; k < 3; ++k) CHECK(r(y, x, k) == doctest::Approx(img(x, 4 - y, k)).epsilon(1e-4));
    CHECK(typenet::test::max_abs_diff(rotate(img, 0.0f), img) == 0.0);
    // 45 degrees on 9x9: corner (0, 0) comes from (4, -1.66), outside: white; the centre stays.
    const Tensor<3> big = ramp(9, 9).image;
    const Tensor<3> d = rotate(big, 45.0f);
    CHECK(d(0, 0, 0) == 255.0f);
    CHECK(d(4, 4, 1) == doctest::Approx(big(4, 4, 1)));
    CHECK(rotate(big, 45.0f, FillMode::edge)(0, 0, 0) == doctest::Approx(big(0, 4, 0)).epsilon(1e-3));

    // Zoom out by 2: the centre stays, (1, 1) shows (0, 0), the corner is fill.
    const Tensor<3> z = zoom(img, 2.0f, FillMode::constant, 7.0f);
    CHECK(z(2, 2, 0) == img(2, 2, 0));
    CHECK(z(1, 1, 2) == img(0, 0, 2));
    CHECK(z(0, 0, 1) == 7.0f);
    CHECK(zoom(img, 2.0f, FillMode::edge)(0, 0, 1) == img(0, 0, 1));
    // Zoom in by 2: (0, 0) shows (1, 1).
    CHECK(zoom(img, 0.5f)(0, 0, 0) == img(1, 1, 0));
    CHECK(typenet::test::max_abs_diff(zoom(img, 1.0f), img) == 0.0);
}

TEST_CASE("brightness and contrast") {
    Rng rng(3);
    Example e = ramp(4, 4);
    for (std::size_t i = 0; i < e.image.size(); ++i) e.image.data()[i] = 100.0f + static_cast<float>(i % 10);
    const Tensor<3> orig = e.image;
    RandomBrightness{30.0f}(e, rng);
    const float delta = e.image.data()[0] - orig.data()[0];
    CHECK(std::abs(delta) <= 30.0f);
    for (std::size_t i = 0; i < e.image.size(); ++i) CHECK(e.image.data()[i] - orig.data()[i] == doctest::Approx(delta));

    Example b = ramp(2, 2);
    b.image.fill(250.0f);
    RandomBrightness{1000.0f, 0.0f, 255.0f}(b, rng);
    for (float v : b.image) CHECK((v >= 0.0f && v <= 255.0f));

    Example c = ramp(4, 4);
    for (std::size_t i = 0; i < c.image.size(); ++i) c.image.data()[i] = 100.0f + static_cast<float>(i % 13);
    const Tensor<3> before = c.image;
    RandomContrast{0.5f, 1.5f}(c, rng);
    for (std::size_t k = 0; k < 3; ++k) {
        double m0 = 0, m1 = 0;
        for (std::size_t i = 0; i < 16; ++i) m0 += before.data()[i * 3 + k], m1 += c.image.data()[i * 3 + k];
        CHECK(m1 == doctest::Approx(m0).epsilon(1e-5));  // the channel mean is kept
        const double f = (c.image.data()[k] - m0 / 16) / (before.data()[k] - m0 / 16);
        CHECK((f >= 0.5 && f <= 1.5));
    }
}

TEST_CASE("random transforms: same stream, same result") {
    using Aug = Compose<RandomFlipLeftRight, RandomCrop<3, 3>, RandomRotation, RandomZoom, RandomBrightness, RandomContrast>;
    Aug aug;
    Example a = ramp(5, 6), b = ramp(5, 6), c = ramp(5, 6);
    Rng r1(99), r2(99), r3(100);
    aug(a, r1);
    aug(b, r2);
    aug(c, r3);
    CHECK(typenet::test::max_abs_diff(a.image, b.image) == 0.0);
    CHECK(typenet::test::max_abs_diff(a.image, c.image) > 0.0);
}
