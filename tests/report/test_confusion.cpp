// Tests of report/confusion.hpp: counts, metrics against fractions worked out by hand
// for a small example, the text tables, and the heatmap picture.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/report/confusion.hpp"

using namespace typenet;
using namespace typenet::report;

namespace {

// actual    0 0 0 0 1 1 1 2 2 2
// predicted 0 0 1 2 1 1 0 2 2 1
// -> rows [2 1 1] [1 2 0] [0 1 2]
ConfusionMatrix small_example() {
    ConfusionMatrix cm(3);
    const std::vector<int> actual{0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
    const std::vector<long> predicted{0, 0, 1, 2, 1, 1, 0, 2, 2, 1};
    cm.add_all(actual, predicted);
    return cm;
}

}  // namespace

TEST_CASE("counts, totals and supports") {
    const ConfusionMatrix cm = small_example();
    CHECK(cm.num_classes() == 3);
    CHECK(cm.rows() == std::vector<std::vector<std::size_t>>{{2, 1, 1}, {1, 2, 0}, {0, 1, 2}});
    CHECK(cm.count(0, 2) == 1);
    CHECK(cm.total() == 10);
    CHECK(cm.support(0) == 4);
    CHECK(cm.support(1) == 3);
    CHECK(cm.predicted_total(1) == 4);
    ConfusionMatrix copy = cm;
    copy.add(2u, std::size_t{2});
    CHECK(copy.count(2, 2) == 3);
    copy.reset();
    CHECK(copy.total() == 0);
}

TEST_CASE("precision, recall, F1 and their averages match the hand computation") {
    const ConfusionMatrix cm = small_example();
    CHECK(cm.accuracy() == doctest::Approx(6.0 / 10));
    // class 0: 2 right of 3 predicted, of 4 actual
    CHECK(cm.precision(0) == doctest::Approx(2.0 / 3));
    CHECK(cm.recall(0) == doctest::Approx(2.0 / 4));
    CHECK(cm.f1(0) == doctest::Approx(4.0 / 7));  // 2 (2/3)(1/2) / (2/3 + 1/2)
    // class 1: 2 right of 4 predicted, of 3 actual
    CHECK(cm.precision(1) == doctest::Approx(2.0 / 4));
    CHECK(cm.recall(1) == doctest::Approx(2.0 / 3));
    CHECK(cm.f1(1) == doctest::Approx(4.0 / 7));
    // class 2: 2 of 3 both ways
    CHECK(cm.precision(2) == doctest::Approx(2.0 / 3));
    CHECK(cm.recall(2) == doctest::Approx(2.0 / 3));
    CHECK(cm.f1(2) == doctest::Approx(2.0 / 3));
    CHECK(cm.macro_precision() == doctest::Approx(11.0 / 18));
    CHECK(cm.macro_recall() == doctest::Approx(11.0 / 18));
    CHECK(cm.macro_f1() == doctest::Approx(38.0 / 63));
    CHECK(cm.weighted_precision() == doctest::Approx(37.0 / 60));
    CHECK(cm.weighted_recall() == doctest::Approx(0.6));
    CHECK(cm.weighted_f1() == doctest::Approx(0.6));
}

TEST_CASE("zero denominators give 0, as scikit-learn reports by default") {
    ConfusionMatrix cm(3);
    CHECK(cm.accuracy() == 0.0);
    CHECK(cm.macro_f1() == 0.0);
    cm.add(0, 0);
    cm.add(1, 0);
    // class 1 never right, class 2 never seen nor predicted
    CHECK(cm.precision(1) == 0.0);
    CHECK(cm.recall(1) == 0.0);
    CHECK(cm.f1(1) == 0.0);
    CHECK(cm.precision(2) == 0.0);
    CHECK(cm.recall(2) == 0.0);
    CHECK(cm.macro_recall() == doctest::Approx(1.0 / 3));  // (1 + 0 + 0) / 3
    CHECK(cm.weighted_recall() == doctest::Approx(0.5));
}

template <class A>
concept can_add = requires(ConfusionMatrix& c, A a) { c.add(a, 0); };
static_assert(can_add<int> && can_add<unsigned char> && can_add<std::size_t> && !can_add<bool> && !can_add<double>);

TEST_CASE("bad classes and arguments are config errors, and add_all counts nothing then") {
    ConfusionMatrix cm(3);
    CHECK_THROWS_AS(ConfusionMatrix(0), config_error);
    CHECK_THROWS_AS(cm.add(3, 0), config_error);
    CHECK_THROWS_AS(cm.add(0, -1), config_error);
    CHECK_THROWS_AS(cm.count(0, 5), config_error);
    CHECK_THROWS_AS(cm.support(3), config_error);
    CHECK_THROWS_AS(cm.add_all(std::vector<int>{0, 1}, std::vector<int>{0}), config_error);
    CHECK_THROWS_AS(cm.add_all(std::vector<int>{0, 1, 2}, std::vector<int>{0, 1, 7}), config_error);
    CHECK(cm.total() == 0);
    CHECK_THROWS_AS(cm.to_string({"a", "b"}), config_error);
    CHECK_THROWS_AS(cm.to_string({}, 11), config_error);
    CHECK_THROWS_AS(cm.render({"a"}), config_error);
    try {
        cm.add(-2, 0);
        FAIL("no exception");
    } catch (const config_error& e) {
        CHECK(std::string(e.what()).find("-2") != std::string::npos);
    }
}

TEST_CASE("to_string prints the matrix and the per-class report, aligned") {
    const ConfusionMatrix cm = small_example();
    const std::string s = cm.to_string({"rock", "paper", "scissors"}, 4);
    // Matrix: names padded to "actual \ predicted" (18), counts right-aligned in 8 ("scissors").
    CHECK(s.find("actual \\ predicted      rock     paper  scissors\n") != std::string::npos);
    CHECK(s.find("rock                       2         1         1\n") != std::string::npos);
    CHECK(s.find("scissors                   0         1         2\n") != std::string::npos);
    // Report: names right-aligned in 12, numbers in columns of 9 after two spaces.
    CHECK(s.find("\n              precision     recall   f1-score    support\n") != std::string::npos);
    CHECK(s.find("        rock     0.6667     0.5000     0.5714          4\n") != std::string::npos);
    CHECK(s.find("       paper     0.5000     0.6667     0.5714          3\n") != std::string::npos);
    CHECK(s.find("    scissors     0.6667     0.6667     0.6667          3\n") != std::string::npos);
    CHECK(s.find("    accuracy                           0.6000         10\n") != std::string::npos);
    CHECK(s.find("   macro avg     0.6111     0.6111     0.6032         10\n") != std::string::npos);
    CHECK(s.find("weighted avg     0.6167     0.6000     0.6000         10\n") != std::string::npos);
    // Without names: class numbers (column width 1: the widest count); two digits.
    const std::string t = cm.to_string({}, 2);
    CHECK(t.find("\n0                   2  1  1\n") != std::string::npos);
    CHECK(t.find("           0       0.67       0.50       0.57          4\n") != std::string::npos);
}

TEST_CASE("the reference confusion matrix of the workflow") {
    ConfusionMatrix cm(3);
    const std::size_t ref[3][3] = {{142, 3, 0}, {1, 131, 1}, {0, 1, 121}};
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t p = 0; p < 3; ++p)
            for (std::size_t k = 0; k < ref[a][p]; ++k) cm.add(a, p);
    CHECK(cm.rows() == std::vector<std::vector<std::size_t>>{{142, 3, 0}, {1, 131, 1}, {0, 1, 121}});
    CHECK(cm.total() == 400);
    CHECK(cm.accuracy() == doctest::Approx(394.0 / 400));
    CHECK(cm.recall(0) == doctest::Approx(142.0 / 145));
    CHECK(cm.precision(1) == doctest::Approx(131.0 / 135));
}

TEST_CASE("the heatmap: size from its layout, cells coloured by their share of the row, readable counts") {
    report_test::TempDir dir("confusion");
    ConfusionMatrix cm(3);
    const std::size_t ref[3][3] = {{142, 3, 0}, {1, 131, 1}, {0, 1, 121}};
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t p = 0; p < 3; ++p)
            for (std::size_t k = 0; k < ref[a][p]; ++k) cm.add(a, p);
    const std::vector<std::string> names{"rock", "paper", "scissors"};
    cm.title("Test set");
    const HeatmapLayout L = cm.heatmap_layout(names);
    cm.save_png(dir / "cm.png", names);
    const data::Image im = data::read_image(dir / "cm.png");
    CHECK(im.width == static_cast<std::size_t>(L.width));
    CHECK(im.height == static_cast<std::size_t>(L.height));
    CHECK(L.grid.width == 3 * L.cell);
    CHECK(L.grid.x + L.grid.width < L.colorbar.x);
    CHECK(L.colorbar.right() < L.width);
    CHECK(!L.vertical_names);

    // Corner pixels of the cells (away from their text) have the colour of the share.
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t p = 0; p < 3; ++p) {
            const Rect r = L.cell_rect(a, p);
            const Color c = report_test::at(im, r.x + 3, r.y + 3);
            CHECK(c == blues(static_cast<double>(ref[a][p]) / static_cast<double>(cm.support(a))));
        }
    // Diagonal cells are dark, so their counts are written in white; light cells in dark ink.
    const Rect d = L.cell_rect(1, 1), o = L.cell_rect(1, 0);
    CHECK(report_test::count_if(im, d, [](Color c) { return c == colors::white; }) > 20);
    CHECK(report_test::count_if(im, o, [](Color c) { return c == colors::text; }) > 20);
    CHECK(luminance(report_test::at(im, d.x + 3, d.y + 3)) < luminance(report_test::at(im, o.x + 3, o.y + 3)));

    // Long names turn the column labels; the picture still decodes to its layout size.
    ConfusionMatrix two(2);
    two.add(0, 1);
    const std::vector<std::string> long_names{"a very long class name indeed", "b"};
    const HeatmapLayout M = two.heatmap_layout(long_names);
    CHECK(M.vertical_names);
    CHECK(M.names[0].size() <= 24);
    CHECK(M.names[0].ends_with(".."));
    const Canvas c = two.render(long_names);
    CHECK(c.width() == M.width);
    CHECK(c.height() == M.height);
}
