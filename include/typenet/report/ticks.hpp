/// @file report/ticks.hpp
/// Axis ticks: "nice" steps (1, 2 or 5 times a power of ten), the tick values of a
/// range, axis ranges widened to whole steps, and tick labels with just the decimals
/// the step needs ("0.0 0.5 1.0", "0 20 40"), written independently of the C locale.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <vector>

#include "typenet/core/error.hpp"

namespace typenet::report {

/// The smallest value of the form {1, 2, 5} x 10^k that is >= `raw`.
/// @throws config_error unless `raw` is positive and finite.
inline double nice_step(double raw) {
    if (!(raw > 0.0) || !std::isfinite(raw))
        throw config_error("nice_step: step must be positive and finite, got " + std::to_string(raw));
    double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (;;) {
        for (double m : {1.0, 2.0, 5.0})
            if (m * p >= raw * (1.0 - 1e-12)) return m * p;
        p *= 10.0;
    }
}

/// The multiples of `step` in [lo, hi] (ends included with a relative tolerance of
/// 1e-9 steps), computed as k * step so that no rounding error accumulates; -0 is 0.
/// @throws config_error for lo > hi, non-finite ends or a step that is not positive,
///         or more than 10000 ticks.
inline std::vector<double> tick_values(double lo, double hi, double step) {
    if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi || !(step > 0.0) || !std::isfinite(step))
        throw config_error("tick_values: bad range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] or step " +
                           std::to_string(step));
    const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
    if (last - first > 10000.0) throw config_error("tick_values: more than 10000 ticks");
    std::vector<double> out;
    for (double k = first; k <= last; k += 1.0) {
        const double v = k * step;
        out.push_back(v == 0.0 ? 0.0 : v);
    }
    return out;
}

/// Decimals needed to write multiples of `step` exactly (0 for whole steps, 1 for
/// 0.5 or 0.2, 2 for 0.25 or 0.05, ...; at most 12).
inline int tick_decimals(double step) {
    for (int d = 0; d < 12; ++d) {
        const double scaled = std::abs(step) * std::pow(10.0, d);
        if (std::abs(scaled - std::round(scaled)) <= 1e-9 * std::max(1.0, scaled)) return d;
    }
    return 12;
}

/// `v` written with `decimals` digits after the point ("0.50"), locale-independent;
/// a value that rounds to zero is "0" with its decimals, never "-0".
inline std::string format_fixed(double v, int decimals) {
    if (!std::isfinite(v)) return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
    char buf[400];
    auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
    std::string s(buf, res.ptr);
    if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
    return s;
}

/// The label of tick value `v` on an axis with ticks every `step`: fixed-point with
/// `tick_decimals(step)` decimals; when that would need more than 6 decimals or the
/// value reaches 1e9, exponent form with the digits that tell ticks apart ("2.5e-07").
inline std::string format_tick(double v, double step) {
    const int d = tick_decimals(step);
    if (d <= 6 && std::abs(v) < 1e9) return format_fixed(v, d);
    if (v == 0.0 || !std::isfinite(v)) return format_fixed(v, 0);
    const double step_exp = std::floor(std::log10(std::abs(step)));
    const int digits = std::max(0, static_cast<int>(std::floor(std::log10(std::abs(v))) - step_exp)) +
                       tick_decimals(std::abs(step) / std::pow(10.0, step_exp));
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific, std::min(digits, 16));
    return std::string(buf, res.ptr);
}

}  // namespace typenet::report
