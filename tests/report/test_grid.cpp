// Tests of report/grid.hpp: tile positions worked out by hand from the layout rules
// in the header, images and captions where the layout puts them, frames, errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/report/grid.hpp"

using namespace typenet;
using namespace typenet::report;
using report_test::at;

namespace {

data::Image solid(std::size_t w, std::size_t h, Color c) {
    data::Image im = data::Image::filled(w, h);
    for (std::size_t i = 0; i < w * h; ++i) im.pixels[3 * i] = c.r, im.pixels[3 * i + 1] = c.g, im.pixels[3 * i + 2] = c.b;
    return im;
}

GridStyle small_style() {
    GridStyle s;
    s.tile_size = 20;
    s.text_scale = 1;
    s.padding = 5;
    s.gap = 3;
    s.frame = 2;
    return s;
}

const Color tile_colors[5] = {{200, 0, 0}, {0, 150, 0}, {0, 0, 200}, {200, 200, 0}, {0, 200, 200}};

}  // namespace

TEST_CASE("tile positions and picture size follow the layout rules") {
    ImageGrid g(3, small_style());
    g.add(solid(20, 20, tile_colors[0]), {{"ab"}, {"cd"}});
    for (int i = 1; i < 5; ++i) g.add(solid(20, 20, tile_colors[i]), {{"x"}});
    const GridLayout L = g.layout();
    // tile_width = max(20 + 2*2, widest caption "ab" 11 + 2*6) = 24
    // tile_height = 24 + 2 caption lines * (9 + 2) = 46
    CHECK(L.columns == 3);
    CHECK(L.rows == 2);
    CHECK(L.tile_width == 24);
    CHECK(L.tile_height == 46);
    CHECK(L.top == 5);
    CHECK(L.tile(0) == Rect{5, 5, 24, 46});
    CHECK(L.tile(2) == Rect{5 + 2 * 27, 5, 24, 46});
    CHECK(L.tile(4) == Rect{5 + 27, 5 + 49, 24, 46});
    CHECK(L.image_box(4) == Rect{32 + 2, 54 + 2, 20, 20});
    CHECK(L.caption_y(4, 1) == 54 + 2 * 2 + 20 + 2 + 11);  // frames, box, 2 s, one line of 9 + 2
    CHECK(L.width == 2 * 5 + 3 * 24 + 2 * 3);        // 88
    CHECK(L.height == 5 + 2 * 46 + 3 + 5);           // 105

    const Canvas c = g.render();
    CHECK(c.width() == 88);
    CHECK(c.height() == 105);
    for (std::size_t i = 0; i < 5; ++i) {
        const Rect b = L.image_box(i);
        CAPTURE(i);
        CHECK(c.pixel(b.x + 10, b.y + 10) == tile_colors[i]);
        CHECK(c.pixel(b.x, b.y) == tile_colors[i]);
        CHECK(c.pixel(b.right() - 1, b.bottom() - 1) == tile_colors[i]);
        CHECK(report_test::count_if(c.image(), b, [&](Color k) { return k == tile_colors[i]; }) == 400);
    }
    // Title: the first row moves down by the title's height and a gap.
    g.title("T");
    CHECK(g.layout().top == 5 + 9 * 2 + 3);
    CHECK(g.layout().width == 88);
    g.title(std::string(10, 'T'));  // 10 * 12 - 2 = 118 pixels: wider than the tiles
    CHECK(g.layout().width == 2 * 5 + 118);
    CHECK(g.layout().tile(0).x == 5);
    // A wider caption widens every tile: "abc" is 17 pixels, plus 6 on each side.
    g.add(solid(20, 20, tile_colors[0]), {{"abc"}});
    CHECK(g.layout().tile_width == 29);
    CHECK(g.layout().tile(1).x == 5 + 29 + 3);
}

TEST_CASE("captions are drawn under their image in their colour; frames surround the image") {
    const Color green{0, 160, 0}, blue{0, 0, 230};
    ImageGrid g(2, small_style());
    g.add(solid(20, 20, colors::white), {{"A"}, {"B", green}});
    g.add(solid(20, 20, colors::white), {{"C"}}, blue);
    const GridLayout L = g.layout();
    const Canvas c = g.render();
    const auto is_green = [&](Color k) { return k == green; };
    const auto is_blue = [&](Color k) { return k == blue; };
    const Rect line1{L.tile(0).x, L.caption_y(0, 1), L.tile_width, 9};
    CHECK(report_test::count_if(c.image(), line1, is_green) > 5);
    CHECK(report_test::count_outside(c.image(), line1, is_green) == 0);
    const Rect line0{L.tile(0).x, L.caption_y(0, 0), L.tile_width, 9};
    CHECK(report_test::count_if(c.image(), line0, [](Color k) { return k == colors::text; }) > 5);
    // The frame: 2 pixels around the image box of tile 1, nothing else blue.
    const Rect b = L.image_box(1);
    const Rect framed{b.x - 2, b.y - 2, b.width + 4, b.height + 4};
    CHECK(report_test::count_if(c.image(), framed, is_blue) == framed.width * framed.height - 20 * 20);
    CHECK(report_test::count_outside(c.image(), framed, is_blue) == 0);
    // Without a frame, a light hairline marks the image's edge.
    const Rect a = L.image_box(0);
    CHECK(c.pixel(a.x - 1, a.y + 5) == colors::light_gray);
    CHECK(c.pixel(a.x + 5, a.y + 5) == colors::white);
}

TEST_CASE("images of other shapes are fitted into the box, aspect ratio kept") {
    ImageGrid g(1, small_style());
    g.add(solid(40, 10, tile_colors[2]));  // 4:1 -> 20 x 5, centred: rows 7..11 of the box
    const GridLayout L = g.layout();
    const Canvas c = g.render();
    const Rect b = L.image_box(0);
    CHECK(L.tile_height == 24);  // no captions
    CHECK(report_test::count_if(c.image(), b, [](Color k) { return k == tile_colors[2]; }) == 20 * 5);
    CHECK(c.pixel(b.x, b.y + 7) == tile_colors[2]);
    CHECK(c.pixel(b.x, b.y + 6) != tile_colors[2]);
}

TEST_CASE("float tensors in [0, 1] are tiles too; long captions are cut to the tile") {
    ImageGrid g(2, small_style());
    Tensor<3> t(Shape<3>{20, 20, 3});
    t.fill(0.5f);
    t(0, 0, 0) = 1.5f;  // clamped to 255
    g.add(t, {{"gray"}});
    g.add(solid(20, 20, colors::white), {{std::string(60, 'w'), colors::red}});
    const GridLayout L = g.layout();
    CHECK(L.tile_width == 2 * 20);  // capped at twice the image box
    const Canvas c = g.render();
    const Rect b = L.image_box(0);
    CHECK(c.pixel(b.x + 5, b.y + 5) == Color{128, 128, 128});  // 0.5 * 255 = 127.5, rounded
    CHECK(c.pixel(b.x, b.y) == Color{255, 128, 128});
    const auto is_red = [](Color k) { return k == colors::red; };
    CHECK(report_test::count_if(c.image(), L.tile(1), is_red) > 0);
    CHECK(report_test::count_outside(c.image(), L.tile(1), is_red) == 0);
}

TEST_CASE("save_png writes the grid; bad arguments are typed errors") {
    report_test::TempDir dir("grid");
    ImageGrid g(4);
    CHECK_THROWS_AS(g.layout(), config_error);  // no tile
    g.add(solid(30, 30, tile_colors[0]), {{"rock"}});
    g.save_png(dir / "g.png");
    const data::Image im = data::read_image(dir / "g.png");
    CHECK(im.width == static_cast<std::size_t>(g.layout().width));
    CHECK(g.layout().columns == 1);  // fewer tiles than columns: the grid shrinks
    CHECK_THROWS_AS(g.save_png(dir.path / "no" / "g.png"), io_error);

    CHECK_THROWS_AS(ImageGrid(0), config_error);
    GridStyle bad;
    bad.tile_size = 2;
    CHECK_THROWS_AS(ImageGrid(2, bad), config_error);
    data::Image broken;
    broken.width = 2, broken.height = 2;
    CHECK_THROWS_AS(g.add(broken), shape_error);
    CHECK_THROWS_AS(g.add(zeros<3>({4, 4, 2})), shape_error);
    Tensor<3> pixels(Shape<3>{4, 4, 3});
    pixels.fill(200.0f);  // 0..255 values, not divided by 255
    CHECK_THROWS_AS(g.add(pixels), config_error);
    ImageGrid huge(1);
    huge.add(solid(4, 4, tile_colors[0]));
    for (int i = 0; i < 300; ++i) huge.add(solid(4, 4, tile_colors[0]));
    CHECK_THROWS_AS(huge.layout(), config_error);  // 301 rows of 168 + 12 pixels: too tall
}
