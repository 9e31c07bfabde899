/// @file report/plot.hpp
/// Line plots (loss and accuracy against the training step, and the like) as PNG
/// and SVG pictures with the same content: title, axis labels, ticks at "nice"
/// values with labels, grid lines, one polyline per series, a legend.
///
/// ```cpp
/// report::LinePlot plot;
/// plot.title("Loss per batch").x_label("training step").y_label("loss").y_range(0, 2);
/// plot.add("loss", losses);            // y values against x = 0, 1, 2, ...
/// plot.save_png("loss.png");
/// plot.save_svg("loss.svg");
/// ```
///
/// Layout: the plotting area is a rectangle whose border is the frame; the lower end
/// of an axis range lies on the centre of the frame's first pixel, the upper end on
/// the centre of its last (`PlotLayout::px`, `PlotLayout::py`). A range is either
/// fixed (`x_range`, `y_range`) or automatic: the data's extent widened to whole tick
/// steps. Ticks are 1, 2 or 5 times a power of ten apart, spaced so their labels do
/// not collide (whole numbers only on an x axis of step indices).
///
/// Values outside a fixed range are cut at the frame, never drawn over labels: each
/// segment is clipped to the plotting area (lines through it keep their slope), and
/// drawing is limited to the area. NaN values leave a gap in the line; +-infinity
/// lies beyond the edge (the line runs off the area there). A value with no visible
/// neighbour (between gaps, or a one-value series) is drawn as a dot. The legend
/// (series with a name) goes in the corner of the area where it hides the fewest
/// line points, unless a corner is chosen or it is hidden.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/report/canvas.hpp"
#include "typenet/report/color.hpp"
#include "typenet/report/font.hpp"
#include "typenet/report/svg.hpp"
#include "typenet/report/ticks.hpp"

namespace typenet::report {

/// Where a plot's legend goes.
enum class Legend { best, upper_right, upper_left, lower_right, lower_left, hidden };

/// One line of a plot, for a colour or width of its own:
/// `Series s; s.name = "loss"; s.y = losses; s.color = colors::red; plot.add(s);`
struct Series {
    std::string name;            ///< shown in the legend (no legend entry when empty)
    std::vector<double> x;       ///< x values; empty means 0, 1, 2, ...
    std::vector<double> y;       ///< y values (NaN: gap)
    std::optional<Color> color;  ///< default: `palette(n)` for the plot's n-th series
    double width = 2.0;          ///< line thickness in pixels
};

/// Where everything of a plot lies, in pixels (what `LinePlot::layout` computes and
/// both renderings draw).
struct PlotLayout {
    int width = 0, height = 0;  ///< size of the picture
    int scale = 1;              ///< text scale of labels (the title uses scale + 1)
    Rect area;                  ///< plotting area, its border pixels are the frame
    double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;  ///< axis ranges
    double x_step = 1, y_step = 1;                  ///< tick spacing
    std::vector<double> x_ticks, y_ticks;           ///< tick values
    std::vector<std::string> x_tick_labels, y_tick_labels;
    Rect legend;                ///< legend box (empty when there is none)
    /// Per series, its visible pieces: polylines already clipped to the area.
    std::vector<std::vector<std::vector<Point>>> lines;

    /// Canvas x of data x: x_lo at the centre of the area's first column, x_hi at the last.
    double px(double x) const noexcept {
        return area.x + 0.5 + (x - x_lo) / (x_hi - x_lo) * (area.width - 1);
    }
    /// Canvas y of data y: y_lo at the centre of the area's last row, y_hi at the first.
    double py(double y) const noexcept {
        return area.bottom() - 0.5 - (y - y_lo) / (y_hi - y_lo) * (area.height - 1);
    }
};

/// A line plot of one or more series (see the file description).
class LinePlot {
public:
    /// A plot of `width` x `height` pixels (at least 120 x 90).
    /// @throws config_error for a smaller or too large size.
    explicit LinePlot(int width = 800, int height = 500) : width_(width), height_(height) {
        if (width < 120 || height < 90 || width > Canvas::max_side || height > Canvas::max_side)
            throw config_error("LinePlot: size " + std::to_string(width) + "x" + std::to_string(height) +
                               " is not between 120x90 and " + std::to_string(Canvas::max_side) + "x" +
                               std::to_string(Canvas::max_side));
    }

    /// Set the title (above the plot).
    LinePlot& title(std::string t) { title_ = std::move(t); return *this; }
    /// Set the x axis label.
    LinePlot& x_label(std::string t) { x_label_ = std::move(t); return *this; }
    /// Set the y axis label.
    LinePlot& y_label(std::string t) { y_label_ = std::move(t); return *this; }

    /// Fix the x axis to [lo, hi]. @throws config_error unless lo < hi, both finite.
    LinePlot& x_range(double lo, double hi) { x_fixed_ = checked_range("x_range", lo, hi); return *this; }
    /// Fix the y axis to [lo, hi]; values outside are clipped at the frame.
    /// @throws config_error unless lo < hi, both finite.
    LinePlot& y_range(double lo, double hi) { y_fixed_ = checked_range("y_range", lo, hi); return *this; }

    /// Place the legend (default: `Legend::best`).
    LinePlot& legend(Legend where) { legend_ = where; return *this; }

    /// Text scale of labels and ticks (the title is one larger); 0 (default) picks 2
    /// for plots at least 360 pixels in both directions, else 1.
    /// @throws config_error outside 0 .. 8.
    LinePlot& text_scale(int scale) {
        if (scale < 0 || scale > 8) throw config_error("LinePlot::text_scale: " + std::to_string(scale) + " is not in 0..8");
        scale_ = scale;
        return *this;
    }

    /// Add a series of y values against x = 0, 1, 2, ... (colour from `palette`).
    /// @throws config_error when `y` is empty.
    LinePlot& add(std::string name, std::vector<double> y) {
        Series s;
        s.name = std::move(name);
        s.y = std::move(y);
        return add(std::move(s));
    }

    /// Add a series of points (x[i], y[i]) (colour from `palette`).
    /// @throws config_error when `y` is empty, `x` and `y` differ in length, or an
    ///         x value is not finite.
    LinePlot& add(std::string name, std::vector<double> x, std::vector<double> y) {
        Series s;
        s.name = std::move(name);
        s.x = std::move(x);
        s.y = std::move(y);
        return add(std::move(s));
    }

    /// Add a series with its own colour or width.
    /// @throws config_error as the other `add`s, and for a width not in (0, 100].
    LinePlot& add(Series s) {
        const std::string what = "LinePlot::add: series \"" + s.name + "\"";
        if (s.y.empty()) throw config_error(what + " has no values");
        if (!s.x.empty() && s.x.size() != s.y.size())
            throw config_error(what + " has " + std::to_string(s.x.size()) + " x values but " +
                               std::to_string(s.y.size()) + " y values");
        for (double v : s.x)
            if (!std::isfinite(v)) throw config_error(what + " has a non-finite x value");
        if (!(s.width > 0.0 && s.width <= 100.0))
            throw config_error(what + " has line width " + std::to_string(s.width) + ", not in (0, 100]");
        if (!s.color) s.color = palette(series_.size());
        series_.push_back(std::move(s));
        return *this;
    }

    /// The series added so far.
    const std::vector<Series>& series() const noexcept { return series_; }

    /// Compute where everything goes (see `PlotLayout`).
    /// @throws config_error when there is no series, or the labels leave no room to plot.
    PlotLayout layout() const {
        if (series_.empty()) throw config_error("LinePlot: nothing to plot, add a series first");
        PlotLayout L;
        L.width = width_;
        L.height = height_;
        const int s = L.scale = scale_ > 0 ? scale_ : (std::min(width_, height_) >= 360 ? 2 : 1);
        const int pad = 6 * s, lh = font::line_height * s, tick = 3 * s;

        const int top = pad + (title_.empty() ? 0 : font::line_height * (s + 1) + pad);
        const int bottom = tick + 2 * s + lh + (x_label_.empty() ? 0 : pad / 2 + lh) + pad;
        const int area_h = height_ - top - bottom;
        if (area_h < 20) throw config_error("LinePlot: " + std::to_string(height_) + " pixels are too low for the labels");

        // y axis: ticks about every 25 * s pixels.
        const auto [ylo, yhi] = data_range(false);
        const double ytarget = std::max(1, area_h / (25 * s));
        set_axis(y_fixed_, ylo, yhi, ytarget, false, L.y_lo, L.y_hi, L.y_step);
        L.y_ticks = tick_values(L.y_lo, L.y_hi, L.y_step);
        int ylab_w = 0;
        for (double v : L.y_ticks) {
            L.y_tick_labels.push_back(format_tick(v, L.y_step));
            ylab_w = std::max(ylab_w, measure_text(L.y_tick_labels.back(), s).width);
        }
        const int left = pad + (y_label_.empty() ? 0 : lh + pad) + ylab_w + 2 * s + tick;

        // x axis: ticks at least 40 * s pixels apart, and far enough for their labels.
        const auto [xlo, xhi] = data_range(true);
        int right = pad;
        for (int pass = 0; pass < 2; ++pass) {
            const int area_w = width_ - left - right;
            if (area_w < 20)
                throw config_error("LinePlot: " + std::to_string(width_) + " pixels are too narrow for the labels");
            double target = std::max(1, area_w / (40 * s));
            for (int tries = 0; tries < 60; ++tries) {
                set_axis(x_fixed_, xlo, xhi, target, implicit_x(), L.x_lo, L.x_hi, L.x_step);
                L.x_ticks = tick_values(L.x_lo, L.x_hi, L.x_step);
                L.x_tick_labels.clear();
                int widest = 0;
                for (double v : L.x_ticks) {
                    L.x_tick_labels.push_back(format_tick(v, L.x_step));
                    widest = std::max(widest, measure_text(L.x_tick_labels.back(), s).width);
                }
                const double spacing = L.x_step / (L.x_hi - L.x_lo) * (area_w - 1);
                if (spacing >= widest + 4 * s || L.x_ticks.size() <= 2) break;
                target = std::max(1.0, target * 0.7);
            }
            // Room for half the last label beyond the frame.
            const int last_w = L.x_tick_labels.empty() ? 0 : measure_text(L.x_tick_labels.back(), s).width;
            right = std::max(pad, last_w / 2 + 2 * s);
        }
        L.area = {left, top, width_ - left - right, area_h};

        L.lines.reserve(series_.size());
        for (const Series& se : series_) L.lines.push_back(clipped_lines(se, L));
        L.legend = legend_box(L);
        return L;
    }

    /// The plot as a picture.
    /// @throws config_error as `layout`.
    Canvas render() const {
        const PlotLayout L = layout();
        Canvas c(width_, height_, colors::white);
        draw(c, L);
        return c;
    }

    /// The plot as a standalone SVG 1.1 document with the same content as `render`.
    /// @throws config_error as `layout`.
    std::string to_svg() const {
        const PlotLayout L = layout();
        SvgDocument d(width_, height_, colors::white);
        draw(d, L);
        return d.str();
    }

    /// Write the plot as a PNG file, atomically.
    /// @throws config_error as `layout`; io_error naming `path` when it cannot be written.
    void save_png(const std::filesystem::path& path) const { render().save_png(path); }

    /// Write the plot as an SVG file, atomically.
    /// @throws config_error as `layout`; io_error naming `path` when it cannot be written.
    void save_svg(const std::filesystem::path& path) const {
        const PlotLayout L = layout();
        SvgDocument d(width_, height_, colors::white);
        draw(d, L);
        d.save(path);
    }

private:
    int width_, height_;
    int scale_ = 0;
    std::string title_, x_label_, y_label_;
    std::optional<std::pair<double, double>> x_fixed_, y_fixed_;
    Legend legend_ = Legend::best;
    std::vector<Series> series_;

    static std::pair<double, double> checked_range(const char* what, double lo, double hi) {
        if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi) || !std::isfinite(hi - lo))
            throw config_error(std::string("LinePlot::") + what + ": needs finite lo < hi, got [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "]");
        return {lo, hi};
    }

    bool implicit_x() const noexcept {
        return std::all_of(series_.begin(), series_.end(), [](const Series& s) { return s.x.empty(); });
    }

    /// Smallest and largest finite value over all series on one axis (NaN, NaN if none).
    std::pair<double, double> data_range(bool x_axis) const {
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (const Series& s : series_)
            for (std::size_t i = 0; i < s.y.size(); ++i) {
                const double v = x_axis ? (s.x.empty() ? static_cast<double>(i) : s.x[i]) : s.y[i];
                if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
            }
        if (lo > hi) return {std::nan(""), std::nan("")};
        return {lo, hi};
    }

    /// The range and tick step of an axis: the fixed range, or the data range widened
    /// to whole steps; about `target` steps; whole steps when `whole`.
    static void set_axis(const std::optional<std::pair<double, double>>& fixed, double dlo, double dhi, double target,
                         bool whole, double& lo, double& hi, double& step) {
        if (fixed) {
            lo = fixed->first, hi = fixed->second;
        } else if (std::isnan(dlo)) {
            lo = 0.0, hi = 1.0;
        } else if (dlo == dhi) {
            const double d = dlo == 0.0 ? 1.0 : std::abs(dlo) * 0.1;
            lo = dlo - d, hi = dhi + d;
        } else {
            lo = dlo, hi = dhi;
        }
        if (!std::isfinite(hi - lo))
            throw config_error("LinePlot: the data span [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "] is too wide to plot; fix the axis range");
        step = nice_step((hi - lo) / target);
        if (whole) step = std::max(step, 1.0);
        if (!fixed) {
            lo = std::floor(lo / step + 1e-9) * step;
            hi = std::ceil(hi / step - 1e-9) * step;
            if (!(lo < hi)) hi = lo + step;
        }
    }

    /// A series mapped to canvas coordinates and cut to the plotting area (widened by
    /// the line's half width), as a list of polylines.
    static std::vector<std::vector<Point>> clipped_lines(const Series& s, const PlotLayout& L) {
        const double xspan = L.x_hi - L.x_lo, yspan = L.y_hi - L.y_lo;
        const double m = s.width / 2.0 + 1.0;
        const double cx0 = L.area.x - m, cx1 = L.area.right() + m, cy0 = L.area.y - m, cy1 = L.area.bottom() + m;
        auto map = [&](std::size_t i, Point& p) {
            const double x = s.x.empty() ? static_cast<double>(i) : s.x[i], y = s.y[i];
            if (std::isnan(y)) return false;
            // Far beyond the range is as good as infinitely far, and keeps numbers finite.
            p = {L.px(std::clamp(x, L.x_lo - 1e4 * xspan, L.x_hi + 1e4 * xspan)),
                 L.py(std::clamp(y, L.y_lo - 1e4 * yspan, L.y_hi + 1e4 * yspan))};
            return true;
        };
        auto inside = [&](Point p) { return p.x >= cx0 && p.x <= cx1 && p.y >= cy0 && p.y <= cy1; };

        std::vector<std::vector<Point>> out;
        std::vector<Point> run;
        auto flush = [&] {
            if (!run.empty()) out.push_back(std::move(run));
            run.clear();
        };
        Point prev{};
        bool have_prev = false;
        for (std::size_t i = 0; i < s.y.size(); ++i) {
            Point p;
            if (!map(i, p)) {
                flush();
                have_prev = false;
                continue;
            }
            if (!have_prev) {
                if (inside(p)) run.push_back(p);
            } else {
                // Liang-Barsky: the part of prev -> p inside the clip box.
                const double dx = p.x - prev.x, dy = p.y - prev.y;
                double t0 = 0.0, t1 = 1.0;
                bool visible = true;
                const double pq[4][2] = {{-dx, prev.x - cx0}, {dx, cx1 - prev.x}, {-dy, prev.y - cy0}, {dy, cy1 - prev.y}};
                for (const auto& [pp, q] : pq) {
                    if (pp == 0.0) {
                        if (q < 0.0) visible = false;
                    } else {
                        const double t = q / pp;
                        if (pp < 0.0) t0 = std::max(t0, t);
                        else t1 = std::min(t1, t);
                    }
                }
                if (!visible || t0 > t1) {
                    flush();
                } else {
                    const Point a = t0 == 0.0 ? prev : Point{prev.x + t0 * dx, prev.y + t0 * dy};
                    const Point b = t1 == 1.0 ? p : Point{prev.x + t1 * dx, prev.y + t1 * dy};
                    if (run.empty() || !(run.back() == a)) {
                        flush();
                        run.push_back(a);
                    }
                    run.push_back(b);
                    if (t1 < 1.0) flush();
                }
            }
            prev = p;
            have_prev = true;
        }
        flush();
        return out;
    }

    /// Size of the legend box and where it goes; empty when there is no legend.
    Rect legend_box(const PlotLayout& L) const {
        const int s = L.scale;
        int entries = 0, widest = 0;
        for (const Series& se : series_)
            if (!se.name.empty()) ++entries, widest = std::max(widest, measure_text(se.name, s).width);
        if (legend_ == Legend::hidden || entries == 0) return {};
        const int w = 4 * s + 12 * s + 3 * s + widest + 4 * s;
        const int h = 3 * s + entries * (font::line_height * s + 2 * s) - 2 * s + 3 * s;
        const int inset = 4 * s;
        const Rect a = L.area;
        const Rect corners[4] = {{a.right() - inset - w, a.y + inset, w, h},
                                 {a.x + inset, a.y + inset, w, h},
                                 {a.right() - inset - w, a.bottom() - inset - h, w, h},
                                 {a.x + inset, a.bottom() - inset - h, w, h}};
        if (legend_ != Legend::best) return corners[static_cast<int>(legend_) - 1];
        // The corner hiding the fewest points of the lines (sampled every pixel or so).
        long best_score = -1;
        Rect best = corners[0];
        for (const Rect& r : corners) {
            long score = 0;
            for (const auto& pieces : L.lines)
                for (const auto& run : pieces)
                    for (std::size_t i = 0; i < run.size(); ++i) {
                        const Point b = run[i], a0 = i ? run[i - 1] : b;
                        const int n = 1 + static_cast<int>(std::min(4096.0, std::hypot(b.x - a0.x, b.y - a0.y)));
                        for (int k = (i ? 1 : 0); k <= n; ++k) {
                            const double t = static_cast<double>(k) / n;
                            const Point q{a0.x + (b.x - a0.x) * t, a0.y + (b.y - a0.y) * t};
                            if (q.x >= r.x - 2 && q.x < r.right() + 2 && q.y >= r.y - 2 && q.y < r.bottom() + 2) ++score;
                        }
                    }
            if (best_score < 0 || score < best_score) best_score = score, best = r;
        }
        return best;
    }

    /// Draw the plot on a Canvas or an SvgDocument.
    template <class Surface>
    void draw(Surface& out, const PlotLayout& L) const {
        const int s = L.scale, pad = 6 * s, lh = font::line_height * s, tick = 3 * s;
        const Rect a = L.area;
        const Color ink = colors::text;
        auto col = [&](double v) { return std::clamp(static_cast<int>(std::floor(L.px(v))), a.x, a.right() - 1); };
        auto row = [&](double v) { return std::clamp(static_cast<int>(std::floor(L.py(v))), a.y, a.bottom() - 1); };

        // Grid, frame, ticks and their labels.
        for (double v : L.x_ticks)
            if (const int c = col(v); c != a.x && c != a.right() - 1)
                out.fill_rect({c, a.y + 1, 1, a.height - 2}, colors::light_gray);
        for (double v : L.y_ticks)
            if (const int r = row(v); r != a.y && r != a.bottom() - 1)
                out.fill_rect({a.x + 1, r, a.width - 2, 1}, colors::light_gray);
        out.draw_rect(a, ink, 1);
        for (std::size_t i = 0; i < L.x_ticks.size(); ++i) {
            const int c = col(L.x_ticks[i]);
            out.fill_rect({c, a.bottom(), 1, tick}, ink);
            out.draw_text(c, a.bottom() + tick + 2 * s, L.x_tick_labels[i], ink, s, HAlign::center, VAlign::top);
        }
        for (std::size_t i = 0; i < L.y_ticks.size(); ++i) {
            const int r = row(L.y_ticks[i]);
            out.fill_rect({a.x - tick, r, tick, 1}, ink);
            out.draw_text(a.x - tick - 2 * s, r, L.y_tick_labels[i], ink, s, HAlign::right, VAlign::middle);
        }

        // The lines, cut at the frame.
        out.set_clip(a);
        for (std::size_t k = 0; k < series_.size(); ++k) {
            const Stroke st{*series_[k].color, series_[k].width, true, 0.0, 0.0, LineCap::round};
            Stroke dot = st;  // a point without neighbours is shown as a dot, wider than the line
            dot.width = std::max(2.5 * st.width, 5.0);
            for (const auto& run : L.lines[k]) out.draw_polyline(run, run.size() == 1 ? dot : st);
        }
        out.clear_clip();

        // Legend: a line sample and the name of each named series.
        if (!L.legend.empty()) {
            out.fill_rect(L.legend, colors::white);
            out.draw_rect(L.legend, colors::gray, 1);
            int y = L.legend.y + 3 * s;
            for (const Series& se : series_) {
                if (se.name.empty()) continue;
                const double mid = y + font::cap_height * s / 2.0;
                const double x0 = L.legend.x + 4 * s;
                const Stroke sample{*se.color, std::max(se.width, 2.0), true, 0, 0, LineCap::butt};
                out.draw_line({x0, mid}, {x0 + 12 * s, mid}, sample);
                out.draw_text(L.legend.x + 4 * s + 12 * s + 3 * s, y, se.name, ink, s);
                y += lh + 2 * s;
            }
        }

        // Title and axis labels.
        if (!title_.empty()) {
            const int tw = measure_text(title_, s + 1).width;
            const int cx = tw <= a.width ? a.x + a.width / 2 : L.width / 2;
            out.draw_text(cx, pad, title_, ink, s + 1, HAlign::center, VAlign::top);
        }
        if (!x_label_.empty())
            out.draw_text(a.x + a.width / 2, L.height - pad - lh, x_label_, ink, s, HAlign::center, VAlign::top);
        if (!y_label_.empty()) out.draw_text_vertical(pad + lh / 2, a.y + a.height / 2, y_label_, ink, s);
    }
};

}  // namespace typenet::report
