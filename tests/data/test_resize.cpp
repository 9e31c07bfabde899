// Resizing and cropping (typenet/data/resize.hpp) against independent NumPy values.
#include <doctest/doctest.h>

#include <cmath>

#include "data/resize_reference.hpp"
#include "test_util.hpp"
#include "typenet/data/resize.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

// The same deterministic image as tools/resize_reference.py's test_image().
Tensor<3> test_image(std::size_t h, std::size_t w, std::size_t c) {
    Tensor<3> t(Shape<3>{h, w, c});
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x)
            for (std::size_t k = 0; k < c; ++k)
                t(y, x, k) = static_cast<float>((y * 37 + x * 11 + k * 53 + (x * y) % 7 * 19) % 256);
    return t;
}

double max_diff(const Tensor<3>& got, const std::vector<float>& want) {
    REQUIRE(got.size() == want.size());
    double m = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) m = std::max(m, std::abs(double(got.data()[i]) - double(want[i])));
    return m;
}

}  // namespace

TEST_CASE("resize_bilinear matches TensorFlow's formula (NumPy reference)") {
    for (const auto& c : resize_reference::cases) {
        INFO(c.ih << "x" << c.iw << " -> " << c.oh << "x" << c.ow);
        const Tensor<3> out = resize_bilinear(test_image(c.ih, c.iw, c.c), c.oh, c.ow);
        CHECK(out.shape()[0] == c.oh);
        CHECK(out.shape()[1] == c.ow);
        CHECK(out.shape()[2] == c.c);
        CHECK(max_diff(out, c.bilinear) < 2e-4);  // float32 arithmetic on values up to 255
    }
}

TEST_CASE("resize_antialiased matches the antialiased triangle filter (NumPy reference)") {
    for (const auto& c : resize_reference::cases) {
        INFO(c.ih << "x" << c.iw << " -> " << c.oh << "x" << c.ow);
        const Tensor<3> out = resize_antialiased(test_image(c.ih, c.iw, c.c), c.oh, c.ow);
        CHECK(max_diff(out, c.antialiased) < 2e-4);
    }
}

TEST_CASE("resize properties") {
    // A constant image stays constant; identity size is the identity.
    Tensor<3> flat(Shape<3>{30, 20, 3});
    flat.fill(42.5f);
    for (auto [h, w] : {std::pair<std::size_t, std::size_t>{224, 224}, {7, 3}, {1, 1}}) {
        Tensor<3> want(Shape<3>{h, w, 3});
        want.fill(42.5f);
        CHECK(typenet::test::max_abs_diff(resize_bilinear(flat, h, w), want) < 1e-4);
        CHECK(typenet::test::max_abs_diff(resize_antialiased(flat, h, w), want) < 1e-4);
    }
    const Tensor<3> img = test_image(9, 13, 3);
    CHECK(typenet::test::max_abs_diff(resize_bilinear(img, 9, 13), img) == 0.0);
    CHECK(typenet::test::max_abs_diff(resize_antialiased(img, 9, 13), img) < 1e-4);
    // Enlarging: the antialiased filter equals bilinear.
    CHECK(typenet::test::max_abs_diff(resize_antialiased(img, 20, 31), resize_bilinear(img, 20, 31)) < 1e-3);
    CHECK_THROWS_AS(resize_bilinear(img, 0, 5), shape_error);
    CHECK_THROWS_AS(resize_antialiased(Tensor<3>(Shape<3>{0, 4, 3}), 2, 2), shape_error);
}

TEST_CASE("center crops") {
    const Tensor<3> img = test_image(6, 9, 2);
    const Tensor<3> c = center_crop(img, 3, 4);
    REQUIRE(c.shape()[0] == 3);
    REQUIRE(c.shape()[1] == 4);
    // Offsets (6-3)/2 = 1 and (9-4)/2 = 2, rounded down.
    for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 4; ++x)
            for (std::size_t k = 0; k < 2; ++k) CHECK(c(y, x, k) == img(y + 1, x + 2, k));
    const Tensor<3> sq = center_square_crop(img);
    CHECK(sq.shape()[0] == 6);
    CHECK(sq.shape()[1] == 6);
    CHECK(sq(0, 0, 1) == img(0, 1, 1));
    CHECK_THROWS_AS(center_crop(img, 7, 2), shape_error);
}
