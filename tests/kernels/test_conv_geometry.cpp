// ConvGeometry against hand-computed TensorFlow SAME / VALID values.
#include <doctest/doctest.h>

#include "typenet/kernels/conv_geometry.hpp"

using typenet::kernels::ConvGeometry;

TEST_CASE("ConvGeometry::same matches TensorFlow's SAME padding") {
    // 224 -> 112 with a 3x3 stride-2 kernel: pad_total = 111*2 + 3 - 224 = 1 -> top 0, bottom 1.
    auto g = ConvGeometry::same(1, 224, 224, 3, 3, 3, 2, 2);
    CHECK(g.oh == 112);
    CHECK(g.ow == 112);
    CHECK(g.pad_top == 0);
    CHECK(g.pad_left == 0);
    CHECK(g.pad_bottom() == 1);
    CHECK(g.pad_right() == 1);
    // 7 -> 4 with stride 2: pad_total = 3*2 + 3 - 7 = 2 -> 1 / 1.
    g = ConvGeometry::same(2, 7, 7, 5, 3, 3, 2, 2);
    CHECK(g.oh == 4);
    CHECK(g.pad_top == 1);
    CHECK(g.pad_bottom() == 1);
    // Stride 1, 3x3: 56 -> 56, pads 1 / 1.
    g = ConvGeometry::same(1, 56, 56, 8, 3, 3, 1, 1);
    CHECK(g.oh == 56);
    CHECK(g.pad_top == 1);
    CHECK(g.pad_bottom() == 1);
    // 1x1: no padding.
    g = ConvGeometry::same(1, 14, 14, 8, 1, 1, 1, 1);
    CHECK(g.oh == 14);
    CHECK(g.pad_top == 0);
    CHECK(g.pad_bottom() == 0);
    // Non-square: h 5, w 8, 5x5 kernel, strides 2 / 3: oh 3, ow 3;
    // pad_total_h = 2*2 + 5 - 5 = 4 -> 2/2; pad_total_w = 2*3 + 5 - 8 = 3 -> 1/2.
    g = ConvGeometry::same(1, 5, 8, 1, 5, 5, 2, 3);
    CHECK(g.oh == 3);
    CHECK(g.ow == 3);
    CHECK(g.pad_top == 2);
    CHECK(g.pad_bottom() == 2);
    CHECK(g.pad_left == 1);
    CHECK(g.pad_right() == 2);
    // Stride larger than the kernel: h 10, k 1, s 3 -> oh 4, pad_total = 3*3 + 1 - 10 = 0.
    g = ConvGeometry::same(1, 10, 10, 1, 1, 1, 3, 3);
    CHECK(g.oh == 4);
    CHECK(g.pad_top == 0);
    CHECK(g.pad_bottom() == 0);
}

TEST_CASE("ConvGeometry::valid") {
    auto g = ConvGeometry::valid(1, 224, 224, 3, 3, 3, 2, 2);
    CHECK(g.oh == 111);  // (224 - 3) / 2 + 1
    CHECK(g.pad_top == 0);
    CHECK(g.pad_bottom() == 0);
    g = ConvGeometry::valid(1, 7, 9, 3, 7, 3, 1, 2);
    CHECK(g.oh == 1);
    CHECK(g.ow == 4);
    CHECK_THROWS_AS(ConvGeometry::valid(1, 2, 2, 3, 3, 3, 1, 1), typenet::shape_error);
}

TEST_CASE("ConvGeometry rejects zero extents and windows in the padding") {
    CHECK_THROWS_AS(ConvGeometry::same(0, 4, 4, 3, 3, 3, 1, 1), typenet::shape_error);
    CHECK_THROWS_AS(ConvGeometry::same(1, 4, 4, 3, 3, 3, 0, 1), typenet::shape_error);
    CHECK_THROWS_AS(ConvGeometry::same(1, 4, 4, 0, 3, 3, 1, 1), typenet::shape_error);
    ConvGeometry g{1, 4, 4, 3, 3, 3, 1, 1, 3, 0, 4, 2};  // pad_top == kh: first window all padding
    CHECK_THROWS_AS(g.check("test"), typenet::shape_error);
    ConvGeometry ok = ConvGeometry::same(1, 4, 4, 3, 3, 3, 1, 1);
    CHECK_NOTHROW(ok.check("test"));
}
