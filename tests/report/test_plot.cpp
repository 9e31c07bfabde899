// Tests of report/plot.hpp: the PNG has the requested size, values land on the rows
// computed by hand from the plotting area, out-of-range values are cut at the frame,
// ticks and legend are placed sensibly, and the SVG is well formed with the same lines.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/report/plot.hpp"

using namespace typenet;
using namespace typenet::report;
using report_test::at;
using report_test::TempDir;

namespace {

constexpr Color red{255, 0, 0};
bool reddish(Color c) { return c.r > 150 && c.g < 150 && c.b < 150 && c.r - c.g > 60; }

Series red_series(std::string name, std::vector<double> y) {
    Series s;
    s.name = std::move(name);
    s.y = std::move(y);
    s.color = red;
    return s;
}

// Canvas y of value v, computed from the area alone: y_hi on the centre of its top
// row, y_lo on the centre of its bottom row.
double row_of(const Rect& area, double lo, double hi, double v) {
    return area.y + 0.5 + (hi - v) / (hi - lo) * (area.height - 1);
}

}  // namespace

TEST_CASE("a plot's PNG has the requested size and a value lands on the row computed by hand") {
    TempDir dir("plot");
    LinePlot p(640, 400);
    p.title("Loss per batch").x_label("training step").y_label("loss").y_range(0, 2);
    p.add(red_series("loss", std::vector<double>(11, 1.0)));
    const PlotLayout L = p.layout();
    p.save_png(dir / "p.png");
    const data::Image im = data::read_image(dir / "p.png");
    CHECK(im.width == 640);
    CHECK(im.height == 400);
    CHECK(L.scale == 2);

    // The frame is the border of the area: ink on it, white just outside its top-left corner.
    CHECK(at(im, L.area.x, L.area.y + 3) == colors::text);
    CHECK(at(im, L.area.right() - 1, L.area.y + 3) == colors::text);
    CHECK(at(im, L.area.x + 3, L.area.bottom() - 1) == colors::text);
    CHECK(at(im, L.area.x - 1, L.area.y - 1) == colors::white);
    CHECK(at(im, L.area.right(), L.area.y + 3) == colors::white);

    // 1.0 is half way between 0 (bottom row centre) and 2 (top row centre).
    const double yc = row_of(L.area, 0.0, 2.0, 1.0);
    CHECK(L.py(1.0) == doctest::Approx(yc));
    const int row = static_cast<int>(std::floor(yc));
    const int mid = L.area.x + L.area.width / 2;
    CHECK(at(im, mid, row) == red);
    for (int y = L.area.y; y < L.area.bottom(); ++y)
        if (std::abs(y + 0.5 - yc) > 2.0) CHECK_FALSE(reddish(at(im, mid, y)));
    // x runs over 0..10 exactly: the line spans the area from frame to frame and no further.
    CHECK(L.x_lo == 0.0);
    CHECK(L.x_hi == 10.0);
    CHECK(at(im, L.area.x, row) == red);
    CHECK(at(im, L.area.right() - 1, row) == red);
    CHECK_FALSE(reddish(at(im, L.area.x - 1, row)));
    CHECK_FALSE(reddish(at(im, L.area.right(), row)));
}

TEST_CASE("values outside a fixed range are cut at the frame, never drawn over the labels") {
    TempDir dir("clip");
    LinePlot p(500, 360);
    p.title("clipped").y_range(0, 2).legend(Legend::hidden);
    const double inf = std::numeric_limits<double>::infinity();
    p.add(red_series("loss", {1, 5, 1, -3, 1, 1e300, 1, -inf, 1}));
    const PlotLayout L = p.layout();
    p.save_png(dir / "c.png");
    const data::Image im = data::read_image(dir / "c.png");
    CHECK(report_test::count_outside(im, L.area, reddish) == 0);
    // The spikes reach the top and bottom rows of the area.
    CHECK(report_test::count_if(im, {L.area.x, L.area.y, L.area.width, 1}, reddish) > 0);
    CHECK(report_test::count_if(im, {L.area.x, L.area.bottom() - 1, L.area.width, 1}, reddish) > 0);
    // Four excursions split the line into five visible pieces, none far outside the area.
    CHECK(L.lines[0].size() == 5);
    for (const auto& run : L.lines[0])
        for (const Point& q : run) {
            CHECK(q.y >= L.area.y - 2.0 - 1e-9);
            CHECK(q.y <= L.area.bottom() + 2.0 + 1e-9);
        }
    // Segments keep their slope: the first rises from 1 to 5 over one step and is cut
    // where it leaves the clip box (the area widened by half the line width + 1 = 2).
    const Point exit = L.lines[0][0].back();
    CHECK(exit.y == doctest::Approx(L.area.y - 2.0));
    const double t_exit = (L.py(1.0) - exit.y) / (L.py(1.0) - L.py(5.0));
    CHECK(exit.x == doctest::Approx(L.px(t_exit)));
}

TEST_CASE("NaN leaves a gap; an all-NaN series draws nothing") {
    LinePlot p;
    p.add("a", {1, 1, std::nan(""), 1, 1});
    p.add("b", {std::nan(""), std::nan("")});
    const PlotLayout L = p.layout();
    REQUIRE(L.lines[0].size() == 2);
    CHECK(L.lines[0][0].size() == 2);
    CHECK(L.lines[0][1].size() == 2);
    CHECK(L.lines[1].empty());
    CHECK(L.lines[0][1][0].x == doctest::Approx(L.px(3.0)));
}

TEST_CASE("automatic ranges cover the data with whole steps; x ticks of step indices are whole") {
    LinePlot p(800, 500);
    p.add("acc", {0.13, 0.87, 0.5, 0.61});
    const PlotLayout L = p.layout();
    CHECK(L.y_lo <= 0.13);
    CHECK(L.y_hi >= 0.87);
    CHECK(std::abs(L.y_lo / L.y_step - std::round(L.y_lo / L.y_step)) < 1e-9);
    CHECK(std::abs(L.y_hi / L.y_step - std::round(L.y_hi / L.y_step)) < 1e-9);
    CHECK(L.x_step >= 1.0);
    CHECK(L.x_lo == 0.0);
    CHECK(L.x_hi >= 3.0);
    for (const std::string& s : L.x_tick_labels) CHECK(s.find('.') == std::string::npos);
    REQUIRE(L.y_ticks.size() == L.y_tick_labels.size());
    for (std::size_t i = 0; i < L.y_ticks.size(); ++i) {
        CHECK(L.y_ticks[i] >= L.y_lo - 1e-12);
        CHECK(L.y_ticks[i] <= L.y_hi + 1e-12);
        CHECK(L.y_tick_labels[i] == format_tick(L.y_ticks[i], L.y_step));
    }

    // Whole-number literals work for x and y; colours come from the palette in order.
    LinePlot r;
    r.add("a", {1, 2, 3}, {4, 5, 6}).add("b", {7, 8});
    CHECK(r.series()[0].color == palette(0));
    CHECK(r.series()[1].color == palette(1));
    CHECK(r.series()[1].y == std::vector<double>{7.0, 8.0});

    // Given fractional x: fractional ticks; a constant series still gets a range.
    LinePlot q;
    q.add("f", {0.0, 0.1, 0.2}, {5.0, 5.0, 5.0});
    const PlotLayout M = q.layout();
    CHECK(M.x_step < 1.0);
    CHECK(M.y_lo < 5.0);
    CHECK(M.y_hi > 5.0);
}

TEST_CASE("x tick labels never collide, however long") {
    LinePlot p(500, 300);
    std::vector<double> x, y;
    for (int i = 0; i < 50; ++i) x.push_back(1234567.0 * i), y.push_back(i);
    p.add("big", x, y);
    const PlotLayout L = p.layout();
    REQUIRE(L.x_ticks.size() >= 2);
    int widest = 0;
    for (const std::string& s : L.x_tick_labels) widest = std::max(widest, measure_text(s, L.scale).width);
    const double spacing = L.px(L.x_ticks[1]) - L.px(L.x_ticks[0]);
    CHECK(spacing >= widest + 2 * L.scale);
}

TEST_CASE("the legend goes where it hides the fewest points, or where it is told") {
    auto layout_with = [](double level, Legend where) {
        LinePlot p(640, 400);
        p.y_range(0, 2).legend(where);
        p.add("level", std::vector<double>(30, level));
        return p.layout();
    };
    const int inset = 4 * 2;
    const PlotLayout low = layout_with(0.2, Legend::best);
    CHECK(low.legend.right() == low.area.right() - inset);  // upper right: the line is low
    CHECK(low.legend.y == low.area.y + inset);
    const PlotLayout high = layout_with(1.8, Legend::best);
    CHECK(high.legend.right() == high.area.right() - inset);  // lower right: the line is high
    CHECK(high.legend.bottom() == high.area.bottom() - inset);
    const PlotLayout ul = layout_with(0.2, Legend::upper_left);
    CHECK(ul.legend.x == ul.area.x + inset);
    CHECK(ul.legend.y == ul.area.y + inset);
    CHECK(layout_with(0.2, Legend::hidden).legend.empty());

    LinePlot unnamed;
    unnamed.add("", {1, 2});
    CHECK(unnamed.layout().legend.empty());

    // The legend shows the series colour and its name inside its box.
    LinePlot p(640, 400);
    p.y_range(0, 2);
    p.add(red_series("level", std::vector<double>(30, 0.2)));
    const PlotLayout L = p.layout();
    const Canvas c = p.render();
    CHECK(report_test::count_if(c.image(), L.legend, reddish) > 0);
    CHECK(report_test::count_if(c.image(), L.legend, [](Color k) { return k == colors::text; }) > 0);
}

TEST_CASE("the SVG is well formed: one polyline per visible piece, points where the layout says, text escaped") {
    LinePlot p(640, 400);
    p.title("<loss> & \"accuracy\"").x_label("step").y_label("value").y_range(0, 1);
    std::vector<double> y;
    for (int i = 0; i < 50; ++i) y.push_back(0.5 + 0.4 * std::sin(i / 5.0));
    p.add("sin", y);
    const PlotLayout L = p.layout();
    const std::string svg = p.to_svg();

    report_test::XmlParser parser(svg);
    report_test::XmlElement root;
    REQUIRE_MESSAGE(parser.document(root), parser.error);
    CHECK(root.name == "svg");
    CHECK(*root.attr("version") == "1.1");
    CHECK(*root.attr("width") == "640");
    CHECK(*root.attr("height") == "400");

    std::vector<const report_test::XmlElement*> polys, texts;
    root.find_all("polyline", polys);
    root.find_all("text", texts);
    REQUIRE(polys.size() == 1 + 1);  // the series, and the legend's line sample
    std::istringstream pts(*polys[0]->attr("points"));
    std::string pair;
    std::size_t n = 0;
    while (pts >> pair) {
        const auto comma = pair.find(',');
        REQUIRE(comma != std::string::npos);
        CHECK(std::abs(std::stod(pair.substr(0, comma)) - L.px(static_cast<double>(n))) <= 0.006);
        CHECK(std::abs(std::stod(pair.substr(comma + 1)) - L.py(y[n])) <= 0.006);
        ++n;
    }
    CHECK(n == 50);

    // Title, axis labels, every tick label and the legend entry.
    CHECK(texts.size() == 3 + L.x_ticks.size() + L.y_ticks.size() + 1);
    bool title_found = false;
    for (const auto* t : texts) title_found |= t->text == "&lt;loss&gt; &amp; &quot;accuracy&quot;";
    CHECK(title_found);
    CHECK(svg.find("<loss>") == std::string::npos);
}

TEST_CASE("save_png and save_svg write atomically and name the path they cannot write") {
    TempDir dir("plotio");
    LinePlot p(300, 200);
    p.add("a", {1, 2, 3});
    p.save_png(dir / "a.png");
    p.save_svg(dir / "a.svg");
    CHECK(data::read_image(dir / "a.png").width == 300);
    CHECK(report_test::slurp(dir / "a.svg") == p.to_svg());
    CHECK(p.layout().scale == 1);  // small plot: small text
    for (const auto& bad : {dir.path / "no" / "a.png", dir.path / "no" / "a.svg"}) {
        try {
            if (bad.extension() == ".png") p.save_png(bad);
            else p.save_svg(bad);
            FAIL("no exception");
        } catch (const io_error& e) {
            CHECK(e.path() == bad.string());
        }
    }
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
    CHECK(files == 2);  // no temporary left behind
}

TEST_CASE("bad plot arguments are config errors") {
    LinePlot p;
    CHECK_THROWS_AS(p.add("empty", std::vector<double>{}), config_error);
    CHECK_THROWS_AS(p.add("xy", {1.0, 2.0}, {1.0}), config_error);
    CHECK_THROWS_AS(p.add("nan x", {std::nan(""), 1.0}, {1.0, 2.0}), config_error);
    CHECK_THROWS_AS(p.y_range(1, 1), config_error);
    CHECK_THROWS_AS(p.x_range(2, 1), config_error);
    CHECK_THROWS_AS(p.y_range(0, std::numeric_limits<double>::infinity()), config_error);
    CHECK_THROWS_AS(p.text_scale(9), config_error);
    CHECK_THROWS_AS(p.render(), config_error);  // nothing to plot
    CHECK_THROWS_AS(LinePlot(50, 50), config_error);
    Series s;
    s.y = {1.0};
    s.width = 0.0;
    CHECK_THROWS_AS(p.add(s), config_error);
    LinePlot wide;
    wide.add("huge", {-1e308, 1e308});
    CHECK_THROWS_AS(wide.layout(), config_error);  // span overflows
    CHECK_NOTHROW(wide.y_range(0, 1).layout());    // a fixed range clips instead
    LinePlot tiny(120, 90);
    tiny.text_scale(8).title("t").x_label("x");
    tiny.add("a", {1, 2});
    CHECK_THROWS_AS(tiny.layout(), config_error);  // labels leave no room
}
