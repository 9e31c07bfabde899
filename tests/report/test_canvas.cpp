// Tests of report/canvas.hpp at pixel level: every expected pixel set below was
// worked out by hand from the conventions in the header (pixel (x, y) is the square
// [x, x+1) x [y, y+1); a line covers the pixels whose centres lie within width/2).
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/report/canvas.hpp"

using namespace typenet;
using namespace typenet::report;
using report_test::TempDir;

namespace {

constexpr Color W = colors::white, K = colors::black, R{255, 0, 0};

// The set of pixels of `c` that are not `bg`.
std::set<std::pair<int, int>> inked(const Canvas& c, Color bg = W) {
    std::set<std::pair<int, int>> out;
    for (int y = 0; y < c.height(); ++y)
        for (int x = 0; x < c.width(); ++x)
            if (!(c.pixel(x, y) == bg)) out.insert({x, y});
    return out;
}

std::set<std::pair<int, int>> rect_pixels(int x0, int y0, int x1, int y1) {  // [x0, x1) x [y0, y1)
    std::set<std::pair<int, int>> out;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) out.insert({x, y});
    return out;
}

}  // namespace

TEST_CASE("a new canvas is filled with its background; pixels outside the clip are left alone") {
    Canvas c(7, 5, Color{10, 20, 30});
    CHECK(c.width() == 7);
    CHECK(c.height() == 5);
    CHECK(c.pixel(6, 4) == Color{10, 20, 30});
    c.set_pixel(3, 2, R);
    c.set_pixel(-1, 2, R);  // outside: ignored
    c.set_pixel(7, 0, R);
    CHECK(inked(c, Color{10, 20, 30}) == std::set<std::pair<int, int>>{{3, 2}});
    CHECK_THROWS_AS(c.pixel(7, 0), config_error);
    CHECK_THROWS_AS(c.pixel(0, -1), config_error);
    CHECK_THROWS_AS(Canvas(0, 5), config_error);
    CHECK_THROWS_AS(Canvas(5, -1), config_error);
    CHECK_THROWS_AS(Canvas(40000, 2), config_error);
}

TEST_CASE("blend_pixel mixes by the given weight") {
    Canvas c(2, 1);
    c.blend_pixel(0, 0, K, 0.5);   // 255 - 127.5 = 127.5, rounds to 128
    c.blend_pixel(1, 0, K, 0.25);  // 255 * 0.75 = 191.25 -> 191
    CHECK(c.pixel(0, 0) == Color{128, 128, 128});
    CHECK(c.pixel(1, 0) == Color{191, 191, 191});
}

TEST_CASE("rectangles: filled and outlined, clipped to the canvas and the clip rectangle") {
    Canvas c(12, 10);
    c.fill_rect({3, 4, 5, 2}, K);
    CHECK(inked(c) == rect_pixels(3, 4, 8, 6));

    Canvas d(12, 10);
    d.fill_rect({-3, -2, 5, 4}, K);  // only its part inside the canvas
    CHECK(inked(d) == rect_pixels(0, 0, 2, 2));

    Canvas e(12, 10);
    e.draw_rect({1, 1, 6, 5}, K, 2);  // border of 2 inside [1,7) x [1,6): interior [3,5) x [3,4)
    auto expect = rect_pixels(1, 1, 7, 6);
    for (auto p : rect_pixels(3, 3, 5, 4)) expect.erase(p);
    CHECK(inked(e) == expect);

    Canvas f(12, 10);
    f.set_clip({2, 2, 3, 3});
    CHECK(f.clip() == Rect{2, 2, 3, 3});
    f.fill(K);
    CHECK(inked(f) == rect_pixels(2, 2, 5, 5));
    f.clear_clip();
    f.set_pixel(0, 0, R);
    CHECK(f.pixel(0, 0) == R);
}

TEST_CASE("a horizontal line sets exactly the pixels it covers, with and without anti-aliasing") {
    for (bool aa : {false, true}) {
        CAPTURE(aa);
        Canvas c(16, 12);
        c.draw_line({2, 5.5}, {10, 5.5}, Stroke{K, 1.0, aa});
        CHECK(inked(c) == rect_pixels(2, 5, 10, 6));  // x = 2..9 of row 5, all fully black
        for (int x = 2; x < 10; ++x) CHECK(c.pixel(x, 5) == K);

        Canvas d(16, 12);
        d.draw_line({2, 5}, {10, 5}, Stroke{K, 2.0, aa});  // width 2 on the edge between rows 4 and 5
        CHECK(inked(d) == rect_pixels(2, 4, 10, 6));

        Canvas e(16, 12);
        e.draw_line({3.5, 1}, {3.5, 9}, Stroke{K, 3.0, aa});  // vertical, columns 2..4
        CHECK(inked(e) == rect_pixels(2, 1, 5, 9));
    }
    // Ends on pixel centres: those end pixels are half covered, which counts as inside.
    Canvas f(16, 12);
    f.draw_line({4.5, 5.5}, {8.5, 5.5}, Stroke{K, 1.0, false});
    CHECK(inked(f) == rect_pixels(4, 5, 9, 6));
    Canvas g(16, 12);
    g.draw_line({4.5, 5.5}, {8.5, 5.5}, Stroke{K, 1.0, true});
    CHECK(inked(g) == rect_pixels(4, 5, 9, 6));
    CHECK(g.pixel(4, 5) == Color{128, 128, 128});
    CHECK(g.pixel(6, 5) == K);
}

TEST_CASE("round caps extend a line by half its width; single points with round caps are dots") {
    Canvas c(16, 12);
    c.draw_line({4.5, 5.5}, {8.5, 5.5}, Stroke{K, 1.0, false, 0, 0, LineCap::round});
    CHECK(inked(c) == rect_pixels(4, 5, 9, 6));  // centres 4.5 .. 8.5 inclusive
    Canvas d(16, 12);
    const Point dot[1] = {{6.0, 6.0}};
    d.draw_polyline(dot, Stroke{K, 2.0, false, 0, 0, LineCap::round});
    CHECK(inked(d) == rect_pixels(5, 5, 7, 7));  // the four centres at distance 0.71 <= 1
}

TEST_CASE("a diagonal anti-aliased line is solid on its axis and fades within one pixel of its edge") {
    Canvas c(20, 20);
    c.draw_line({2, 2}, {18, 18}, Stroke{K, 2.0, true});
    for (int k = 3; k < 17; ++k) CHECK(c.pixel(k, k) == K);  // centres on the axis: distance 0
    for (int y = 0; y < 20; ++y)
        for (int x = 0; x < 20; ++x) {
            const double d = std::abs((x + 0.5) - (y + 0.5)) / std::sqrt(2.0);  // distance to the axis
            if (d > 1.0 + 0.5 + 1e-9) CHECK(c.pixel(x, y) == W);
        }
    // A pixel whose centre is 0.71 from the axis is covered about 0.79 (1 + 0.5 - 0.71): grey 54.
    const Color p = c.pixel(10, 11);
    CHECK(p.r > 40);
    CHECK(p.r < 70);
}

TEST_CASE("dashed lines alternate dash and gap along the line") {
    Canvas c(20, 5);
    c.draw_line({0, 2.5}, {20, 2.5}, Stroke{K, 1.0, false, 4.0, 3.0});
    // dashes over [0,4), [7,11), [14,18)
    std::set<std::pair<int, int>> expect;
    for (int x0 : {0, 7, 14})
        for (int x = x0; x < x0 + 4; ++x) expect.insert({x, 2});
    CHECK(inked(c) == expect);
    // The pattern runs on around a corner: 2 along x, then 2 more down before the gap.
    Canvas d(10, 10);
    const Point pts[3] = {{1, 1.5}, {3, 1.5}, {3, 9}};
    d.draw_polyline(pts, Stroke{K, 1.0, false, 4.0, 20.0});
    CHECK(d.pixel(1, 1) == K);
    CHECK(d.pixel(2, 1) == K);
    CHECK(d.pixel(4, 5) == W);
}

TEST_CASE("polylines draw all segments and round inner corners; bad input is refused") {
    Canvas c(12, 12);
    const Point pts[3] = {{1, 1.5}, {9.5, 1.5}, {9.5, 10}};
    c.draw_polyline(pts, Stroke{K, 1.0});
    for (int x = 1; x < 10; ++x) CHECK(c.pixel(x, 1) == K);
    for (int y = 1; y < 10; ++y) CHECK(c.pixel(9, y) == K);
    CHECK(inked(c).size() == 9 + 8);

    const Point bad[2] = {{0, 0}, {std::nan(""), 1}};
    CHECK_THROWS_AS(c.draw_polyline(bad, Stroke{}), config_error);
    CHECK_THROWS_AS(c.draw_line({0, 0}, {1, 1}, Stroke{K, 0.0}), config_error);
    CHECK_THROWS_AS(c.draw_line({0, 0}, {1, 1}, Stroke{K, 1.0, false, -1.0, 1.0}), config_error);
    // Far outside the canvas: nothing drawn, nothing crashes.
    Canvas e(8, 8);
    e.draw_line({-1e12, -5}, {1e12, -5}, Stroke{K, 3.0, true});
    CHECK(inked(e).empty());
}

TEST_CASE("text is drawn inside its measured box, touching its edges, and nothing outside") {
    for (int scale : {1, 2, 3}) {
        CAPTURE(scale);
        Canvas c(120, 60);
        const TextSize sz = measure_text("Ag|", scale);
        CHECK(sz.width == (3 * 6 - 1) * scale);
        CHECK(sz.height == 9 * scale);
        const Rect box = c.draw_text(5, 7, "Ag|", K, scale);
        CHECK(box == Rect{5, 7, sz.width, sz.height});
        // 'A' starts in column 0 of its glyph, 'g' reaches the last descender row, '|' spans rows 0-7.
        CHECK(report_test::ink_box(c.image(), W) == Rect{5, 7, sz.width - 2 * scale, sz.height});
    }
}

TEST_CASE("glyphs at scale 1 and 2 match their drawings") {
    Canvas c(5, 9);
    c.draw_text(0, 0, "A", K);
    // .###. / #...# / #...# / ##### / #...# / #...# / #...# and two empty rows
    const char* rows[9] = {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#", ".....", "....."};
    for (int y = 0; y < 9; ++y)
        for (int x = 0; x < 5; ++x) CHECK((c.pixel(x, y) == K) == (rows[y][x] == '#'));
    Canvas d(10, 18);
    d.draw_text(0, 0, "A", K, 2);
    for (int y = 0; y < 18; ++y)
        for (int x = 0; x < 10; ++x) CHECK((d.pixel(x, y) == K) == (rows[y / 2][x / 2] == '#'));
}

TEST_CASE("text alignment places the box relative to the anchor") {
    Canvas c(100, 60);
    const int w = measure_text("abc", 2).width;  // 34
    CHECK(w == 34);
    CHECK(c.draw_text(50, 10, "abc", K, 2, HAlign::right) == Rect{16, 10, 34, 18});
    CHECK(c.draw_text(50, 10, "abc", K, 2, HAlign::center) == Rect{33, 10, 34, 18});
    CHECK(c.draw_text(50, 30, "abc", K, 2, HAlign::left, VAlign::baseline) == Rect{50, 16, 34, 18});
    CHECK(c.draw_text(50, 30, "abc", K, 2, HAlign::left, VAlign::bottom) == Rect{50, 12, 34, 18});
    CHECK(c.draw_text(50, 30, "abc", K, 2, HAlign::left, VAlign::middle) == Rect{50, 23, 34, 18});
    CHECK_THROWS_AS(c.draw_text(0, 0, "x", K, 0), config_error);
    CHECK_THROWS_AS(c.draw_text(0, 0, "x", K, 65), config_error);
}

TEST_CASE("vertical text reads from bottom to top inside its box") {
    Canvas c(30, 30);
    // "L": column 0 of the glyph (rows 0-6) and row 6 (columns 0-4).
    const Rect box = c.draw_text_vertical(15, 15, "L", K, 1);
    CHECK(box == Rect{15 - 4, 15 - 2, 9, 5});
    std::set<std::pair<int, int>> expect;
    for (int v = 0; v < 7; ++v) expect.insert({box.x + v, box.bottom() - 1});  // glyph column 0 -> bottom row
    for (int u = 0; u < 5; ++u) expect.insert({box.x + 6, box.bottom() - 1 - u});  // glyph row 6 -> column 6
    CHECK(inked(c) == expect);
}

TEST_CASE("non-ASCII text is measured per code point and drawn as '?'") {
    CHECK(measure_text("caf\xC3\xA9").width == measure_text("cafe").width);       // é: one character
    CHECK(measure_text("\xE2\x82\xAC").width == measure_text("?").width);          // €: one character
    CHECK(measure_text("\xFF\xC3").width == measure_text("??").width);             // two broken bytes
    CHECK(measure_text("").width == 0);
    Canvas a(40, 10), b(40, 10);
    a.draw_text(0, 0, "x\xC3\xA9", K);
    b.draw_text(0, 0, "x?", K);
    CHECK(a.image() == b.image());
}

TEST_CASE("blit copies an image; blit_scaled resamples it into a box") {
    data::Image img = data::Image::filled(2, 1);
    img.at(0, 1)[0] = img.at(0, 1)[1] = img.at(0, 1)[2] = 255;  // black, white

    Canvas c(6, 3, R);
    c.blit(img, 5, 1);  // half outside: only the black pixel lands
    CHECK(c.pixel(5, 1) == K);
    CHECK(inked(c, R).size() == 1);

    // Stretched to 4 x 1: samples at -0.25, 0.25, 0.75, 1.25 (clamped) -> 0, 63.75, 191.25, 255.
    Canvas d(4, 1, R);
    CHECK(d.blit_scaled(img, {0, 0, 4, 1}, Fit::stretch) == Rect{0, 0, 4, 1});
    CHECK(d.pixel(0, 0) == Color{0, 0, 0});
    CHECK(d.pixel(1, 0) == Color{64, 64, 64});
    CHECK(d.pixel(2, 0) == Color{191, 191, 191});
    CHECK(d.pixel(3, 0) == Color{255, 255, 255});

    // Contained: a 4x2 image in an 8x8 box becomes 8x4, centred vertically.
    data::Image wide = data::Image::filled(4, 2, 0);
    Canvas e(12, 12, R);
    const Rect placed = e.blit_scaled(wide, {2, 2, 8, 8});
    CHECK(placed == Rect{2, 4, 8, 4});
    CHECK(inked(e, R) == rect_pixels(2, 4, 10, 8));

    // Shrinking a uniform image keeps its colour.
    data::Image gray = data::Image::filled(30, 20, 77);
    Canvas f(10, 10, R);
    CHECK(f.blit_scaled(gray, {0, 0, 10, 10}) == Rect{0, 1, 10, 7});  // 20 * 10/30 = 6.67 -> 7 rows, (10 - 7) / 2 = 1
    CHECK(f.pixel(5, 5) == Color{77, 77, 77});

    data::Image broken;
    broken.width = 3, broken.height = 3;
    CHECK_THROWS_AS(c.blit(broken, 0, 0), shape_error);
    CHECK_THROWS_AS(c.blit_scaled(img, {0, 0, 0, 4}), config_error);
}

TEST_CASE("save_png writes a PNG that decodes to the canvas; a bad path is an io_error naming it") {
    TempDir dir("canvas");
    Canvas c(9, 4, Color{1, 2, 3});
    c.draw_text(0, 0, "hi", R);
    c.save_png(dir / "c.png");
    CHECK(data::read_image(dir / "c.png") == c.image());
    const auto bad = dir.path / "missing" / "c.png";
    try {
        c.save_png(bad);
        FAIL("no exception");
    } catch (const io_error& e) {
        CHECK(e.path() == bad.string());
    }
}
