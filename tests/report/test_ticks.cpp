// Tests of report/ticks.hpp: nice steps, tick values and labels, against values
// written out by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <clocale>
#include <string>
#include <vector>

#include "typenet/report/ticks.hpp"

using namespace typenet;
using namespace typenet::report;

TEST_CASE("nice_step is the smallest 1, 2 or 5 times a power of ten not below the raw step") {
    CHECK(nice_step(1.0) == 1.0);
    CHECK(nice_step(1.2) == 2.0);
    CHECK(nice_step(2.0) == 2.0);
    CHECK(nice_step(2.1) == 5.0);
    CHECK(nice_step(6.0) == 10.0);
    CHECK(nice_step(0.3) == doctest::Approx(0.5));
    CHECK(nice_step(0.25) == doctest::Approx(0.5));
    CHECK(nice_step(0.15) == doctest::Approx(0.2));
    CHECK(nice_step(17.0) == 20.0);
    CHECK(nice_step(0.0007) == doctest::Approx(0.001));
    CHECK(nice_step(3.3e7) == doctest::Approx(5e7));
    CHECK_THROWS_AS(nice_step(0.0), config_error);
    CHECK_THROWS_AS(nice_step(-1.0), config_error);
    CHECK_THROWS_AS(nice_step(std::nan("")), config_error);
}

TEST_CASE("tick_values are the multiples of the step within the range, ends included") {
    CHECK(tick_values(0.0, 2.0, 0.5) == std::vector<double>{0.0, 0.5, 1.0, 1.5, 2.0});
    CHECK(tick_values(-0.3, 0.45, 0.2) == std::vector<double>{-0.2, 0.0, 0.2, 0.4});
    CHECK(tick_values(0.0, 1.0, 0.2).size() == 6);  // 0.2 * 5 = 1.0000000000000002 still counts
    CHECK(tick_values(0.0, 1.0, 0.2).back() == doctest::Approx(1.0));
    CHECK(tick_values(3.0, 3.5, 1.0) == std::vector<double>{3.0});
    CHECK(tick_values(3.2, 3.5, 1.0).empty());
    const auto t = tick_values(-1.0, 1.0, 1.0);
    CHECK(!std::signbit(t[1]));  // 0, never -0
    CHECK_THROWS_AS(tick_values(1.0, 0.0, 0.5), config_error);
    CHECK_THROWS_AS(tick_values(0.0, 1e9, 1.0), config_error);  // too many
}

TEST_CASE("tick labels carry the decimals the step needs") {
    CHECK(tick_decimals(1.0) == 0);
    CHECK(tick_decimals(20.0) == 0);
    CHECK(tick_decimals(0.5) == 1);
    CHECK(tick_decimals(0.2) == 1);
    CHECK(tick_decimals(0.25) == 2);
    CHECK(tick_decimals(0.05) == 2);
    CHECK(format_tick(1.0, 0.5) == "1.0");
    CHECK(format_tick(0.6000000000000001, 0.2) == "0.6");
    CHECK(format_tick(140.0, 20.0) == "140");
    CHECK(format_tick(-0.0, 0.1) == "0.0");
    CHECK(format_tick(-1e-17, 0.1) == "0.0");
    CHECK(format_tick(-0.5, 0.5) == "-0.5");
    CHECK(format_tick(2.5e-7, 5e-8) == "2.5e-07");
    CHECK(format_tick(3e-7, 1e-7) == "3e-07");
    CHECK(format_tick(2e9, 5e8) == "2.0e+09");
    CHECK(format_fixed(0.96754, 4) == "0.9675");
    CHECK(format_fixed(-0.00001, 2) == "0.00");
}

TEST_CASE("labels do not depend on the C locale") {
    const char* old = std::setlocale(LC_NUMERIC, nullptr);
    const std::string saved = old ? old : "C";
    if (std::setlocale(LC_NUMERIC, "de_DE.UTF-8") || std::setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        CHECK(format_tick(0.5, 0.5) == "0.5");
        CHECK(format_fixed(1.25, 2) == "1.25");
    }
    std::setlocale(LC_NUMERIC, saved.c_str());
}
