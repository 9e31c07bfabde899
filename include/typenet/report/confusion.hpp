/// @file report/confusion.hpp
/// The confusion matrix of a classifier: counts of (actual, predicted) class pairs,
/// accuracy, per-class precision, recall, F1 and support with their macro and
/// weighted averages; printed as text tables (the matrix, and a per-class report
/// laid out like scikit-learn's `classification_report`) and drawn as a heatmap PNG.
///
/// ```cpp
/// report::ConfusionMatrix cm(3);
/// for (std::size_t i = 0; i < labels.size(); ++i) cm.add(labels[i], predictions[i]);
/// std::cout << cm.to_string({"rock", "paper", "scissors"});
/// cm.save_png("confusion.png", {"rock", "paper", "scissors"});
/// ```
///
/// Rows are actual classes, columns predicted ones. Where a ratio has a zero
/// denominator (precision of a class never predicted, recall of a class with no
/// example, F1 when both are 0, accuracy of an empty matrix) it is 0, as
/// scikit-learn reports by default. Macro averages weigh every class equally
/// (classes without examples included); weighted averages weigh them by support.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/report/canvas.hpp"
#include "typenet/report/color.hpp"
#include "typenet/report/font.hpp"
#include "typenet/report/ticks.hpp"

namespace typenet::report {

/// Where the parts of a confusion-matrix heatmap lie (see `ConfusionMatrix::heatmap_layout`).
struct HeatmapLayout {
    int width = 0, height = 0;  ///< size of the picture
    int scale = 2;              ///< text scale (the title uses scale + 1)
    int cell = 0;               ///< side of a cell in pixels
    Rect grid;                  ///< all cells together
    Rect colorbar;              ///< the colour scale beside the grid
    bool vertical_names = false;  ///< column names turned (too wide for a cell)
    std::string colorbar_caption;  ///< what the colours mean, beside the colour scale
    std::vector<std::string> names;  ///< class names as drawn (long ones shortened)

    /// The cell of (actual, predicted).
    Rect cell_rect(std::size_t actual, std::size_t predicted) const noexcept {
        return {grid.x + static_cast<int>(predicted) * cell, grid.y + static_cast<int>(actual) * cell, cell, cell};
    }
};

/// A type that can hold a class index: any integer type but bool.
template <class T>
concept ClassIndex = std::integral<T> && !std::same_as<std::remove_cv_t<T>, bool>;

/// Counts of (actual, predicted) pairs and the metrics derived from them (see the file description).
class ConfusionMatrix {
public:
    /// Most classes accepted.
    static constexpr std::size_t max_classes = 4096;

    /// An all-zero matrix for classes 0 .. num_classes - 1.
    /// @throws config_error for 0 classes or more than `max_classes`.
    explicit ConfusionMatrix(std::size_t num_classes) : n_(num_classes) {
        if (num_classes == 0 || num_classes > max_classes)
            throw config_error("ConfusionMatrix: number of classes must be in 1.." + std::to_string(max_classes) +
                               ", got " + std::to_string(num_classes));
        counts_.assign(n_ * n_, 0);
    }

    /// Count one example of class `actual` predicted as `predicted`.
    /// @throws config_error when a class is negative or not below `num_classes()`.
    template <ClassIndex A, ClassIndex P>
    void add(A actual, P predicted) {
        const std::size_t a = checked(actual, "actual"), p = checked(predicted, "predicted");
        ++counts_[a * n_ + p];
    }

    /// Count every pair (actual[i], predicted[i]) of two ranges of class indices.
    /// @throws config_error when the ranges differ in length or hold a bad class;
    ///         then nothing is counted.
    template <std::ranges::input_range RA, std::ranges::input_range RP>
        requires ClassIndex<std::ranges::range_value_t<RA>> && ClassIndex<std::ranges::range_value_t<RP>>
    void add_all(const RA& actual, const RP& predicted) {
        std::vector<std::size_t> pairs;
        auto a = std::ranges::begin(actual);
        auto p = std::ranges::begin(predicted);
        for (; a != std::ranges::end(actual) && p != std::ranges::end(predicted); ++a, ++p)
            pairs.push_back(checked(*a, "actual") * n_ + checked(*p, "predicted"));
        if (a != std::ranges::end(actual) || p != std::ranges::end(predicted))
            throw config_error("ConfusionMatrix::add_all: the actual and predicted ranges differ in length");
        for (std::size_t k : pairs) ++counts_[k];
    }

    /// Set every count to 0.
    void reset() noexcept { std::fill(counts_.begin(), counts_.end(), 0); }

    /// Number of classes.
    std::size_t num_classes() const noexcept { return n_; }

    /// Examples of class `actual` predicted as `predicted`.
    /// @throws config_error for a class out of range.
    std::size_t count(std::size_t actual, std::size_t predicted) const {
        return counts_[checked(actual, "actual") * n_ + checked(predicted, "predicted")];
    }

    /// The counts as rows (actual) of columns (predicted).
    std::vector<std::vector<std::size_t>> rows() const {
        std::vector<std::vector<std::size_t>> out(n_);
        for (std::size_t a = 0; a < n_; ++a) out[a].assign(counts_.begin() + static_cast<std::ptrdiff_t>(a * n_),
                                                           counts_.begin() + static_cast<std::ptrdiff_t>((a + 1) * n_));
        return out;
    }

    /// All examples counted.
    std::size_t total() const noexcept {
        std::size_t t = 0;
        for (std::size_t v : counts_) t += v;
        return t;
    }
    /// Examples of class `c` (its row sum).
    std::size_t support(std::size_t c) const {
        checked(c, "class");
        std::size_t t = 0;
        for (std::size_t p = 0; p < n_; ++p) t += counts_[c * n_ + p];
        return t;
    }
    /// Examples predicted as class `c` (its column sum).
    std::size_t predicted_total(std::size_t c) const {
        checked(c, "class");
        std::size_t t = 0;
        for (std::size_t a = 0; a < n_; ++a) t += counts_[a * n_ + c];
        return t;
    }

    /// Fraction of examples predicted right (0 when empty).
    double accuracy() const noexcept {
        std::size_t right = 0;
        for (std::size_t c = 0; c < n_; ++c) right += counts_[c * n_ + c];
        return ratio(right, total());
    }
    /// Of the examples predicted as `c`, the fraction that are `c` (0 if none is).
    double precision(std::size_t c) const { return ratio(count(c, c), predicted_total(c)); }
    /// Of the examples of class `c`, the fraction predicted as `c` (0 if there is none).
    double recall(std::size_t c) const { return ratio(count(c, c), support(c)); }
    /// Harmonic mean of precision and recall of `c` (0 when both are 0).
    double f1(std::size_t c) const {
        const double p = precision(c), r = recall(c);
        return p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
    }

    /// Mean precision over all classes.
    double macro_precision() const { return macro(&ConfusionMatrix::precision); }
    /// Mean recall over all classes.
    double macro_recall() const { return macro(&ConfusionMatrix::recall); }
    /// Mean F1 over all classes.
    double macro_f1() const { return macro(&ConfusionMatrix::f1); }
    /// Precision averaged with each class weighted by its support.
    double weighted_precision() const { return weighted(&ConfusionMatrix::precision); }
    /// Recall averaged with each class weighted by its support (equals the accuracy).
    double weighted_recall() const { return weighted(&ConfusionMatrix::recall); }
    /// F1 averaged with each class weighted by its support.
    double weighted_f1() const { return weighted(&ConfusionMatrix::f1); }

    /// The matrix as an aligned text table (rows actual, columns predicted), then the
    /// per-class report: precision, recall, F1 and support per class, accuracy, macro
    /// and weighted averages, with `digits` decimals. `class_names` empty: "0", "1", ...
    /// @throws config_error when `class_names` is not empty and its size differs from
    ///         `num_classes()`, or `digits` is not in 0..10.
    std::string to_string(const std::vector<std::string>& class_names = {}, int digits = 4) const {
        if (digits < 0 || digits > 10) throw config_error("ConfusionMatrix::to_string: digits must be in 0..10");
        const std::vector<std::string> names = names_or_numbers(class_names);
        std::size_t max_count = 0;
        for (std::size_t v : counts_) max_count = std::max(max_count, v);

        // The matrix.
        const std::string corner = "actual \\ predicted";
        std::size_t name_w = corner.size();
        std::size_t col_w = std::to_string(max_count).size();
        for (const std::string& s : names) name_w = std::max(name_w, width_of(s)), col_w = std::max(col_w, width_of(s));
        std::string out = "Confusion matrix (rows: actual class, columns: predicted class)\n\n";
        out += pad_right(corner, name_w);
        for (const std::string& s : names) out += "  " + pad_left(s, col_w);
        out += '\n';
        for (std::size_t a = 0; a < n_; ++a) {
            out += pad_right(names[a], name_w);
            for (std::size_t p = 0; p < n_; ++p) out += "  " + pad_left(std::to_string(counts_[a * n_ + p]), col_w);
            out += '\n';
        }

        // The per-class report.
        std::size_t w0 = std::string("weighted avg").size();
        for (const std::string& s : names) w0 = std::max(w0, width_of(s));
        const std::size_t w = std::max<std::size_t>(9, static_cast<std::size_t>(digits) + 3);
        auto num = [&](double v) { return "  " + pad_left(format_fixed(v, digits), w); };
        auto cnt = [&](std::size_t v) { return "  " + pad_left(std::to_string(v), w); };
        const std::string blank = "  " + std::string(w, ' ');
        out += '\n' + std::string(w0, ' ') + "  " + pad_left("precision", w) + "  " + pad_left("recall", w) + "  " +
               pad_left("f1-score", w) + "  " + pad_left("support", w) + "\n\n";
        for (std::size_t c = 0; c < n_; ++c)
            out += pad_left(names[c], w0) + num(precision(c)) + num(recall(c)) + num(f1(c)) + cnt(support(c)) + '\n';
        out += '\n' + pad_left("accuracy", w0) + blank + blank + num(accuracy()) + cnt(total()) + '\n';
        out += pad_left("macro avg", w0) + num(macro_precision()) + num(macro_recall()) + num(macro_f1()) +
               cnt(total()) + '\n';
        out += pad_left("weighted avg", w0) + num(weighted_precision()) + num(weighted_recall()) + num(weighted_f1()) +
               cnt(total()) + '\n';
        return out;
    }

    /// Where the heatmap's parts go for these class names (see `render`).
    /// @throws config_error as `to_string`, or when the picture would be too large.
    HeatmapLayout heatmap_layout(const std::vector<std::string>& class_names = {}) const {
        HeatmapLayout L;
        const int s = L.scale = n_ > 16 ? 1 : 2;
        const int pad = 8 * s, lh = font::line_height * s;
        constexpr int max_name_chars = 24;
        for (const std::string& name : names_or_numbers(class_names))
            L.names.push_back(detail::fit_chars(detail::font_chars(name), detail::text_width(max_name_chars, s), s));

        std::size_t max_count = 0;
        for (std::size_t v : counts_) max_count = std::max(max_count, v);
        int name_w = 0;
        for (const std::string& nm : L.names) name_w = std::max(name_w, measure_text(nm, s).width);
        const int content_w = std::max(measure_text(std::to_string(max_count), s).width, measure_text("100.0%", s).width);
        L.cell = std::max(content_w + 6 * s, 24 * s);
        if (name_w + 2 * s > L.cell) {
            if (name_w + 2 * s <= L.cell * 3 / 2) L.cell = name_w + 2 * s;  // a little wider beats turned text
            else L.vertical_names = true;
        }
        const int n = static_cast<int>(n_);
        if (static_cast<long long>(L.cell) * n > Canvas::max_side / 2)
            throw config_error("ConfusionMatrix: " + std::to_string(n_) + " classes are too many to draw as a heatmap");

        const int top = pad + font::line_height * (s + 1) + 2 * s + lh + pad;
        const int left = pad + lh + pad + name_w + 3 * s;
        L.grid = {left, top, n * L.cell, n * L.cell};
        const int names_h = L.vertical_names ? name_w : lh;
        L.colorbar = {L.grid.right() + 2 * pad, top, 5 * s, L.grid.height};
        for (const char* caption : {"share of the actual class", "share of the row", "row %"}) {
            L.colorbar_caption = caption;
            if (measure_text(caption, s).width <= L.grid.height) break;
        }
        L.width = L.colorbar.right() + 4 * s + measure_text("100%", s).width + pad / 2 + lh + pad;
        L.height = L.grid.bottom() + 3 * s + names_h + pad / 2 + lh + pad;
        const int title_w = pad * 2 + std::max(measure_text(title_, s + 1).width, measure_text(subtitle(), s).width);
        L.width = std::max(L.width, title_w);
        return L;
    }

    /// Set the heatmap's title (default "Confusion matrix").
    ConfusionMatrix& title(std::string t) {
        title_ = std::move(t);
        return *this;
    }

    /// The heatmap: one cell per (actual row, predicted column) coloured by its count's
    /// share of the row (white 0% to dark blue 100%), with the count and that share
    /// written in a colour readable on the cell; class names on both axes, axis titles
    /// "actual" and "predicted", the title, the number of examples and the accuracy
    /// under it, and a colour scale.
    /// @throws config_error as `heatmap_layout`.
    Canvas render(const std::vector<std::string>& class_names = {}) const {
        const HeatmapLayout L = heatmap_layout(class_names);
        const int s = L.scale, pad = 8 * s, lh = font::line_height * s;
        Canvas c(L.width, L.height, colors::white);
        const Color ink = colors::text;

        c.draw_text(L.width / 2, pad, title_, ink, s + 1, HAlign::center);
        c.draw_text(L.width / 2, pad + font::line_height * (s + 1) + 2 * s, subtitle(), colors::gray, s, HAlign::center);

        for (std::size_t a = 0; a < n_; ++a) {
            const std::size_t row_total = support(a);
            for (std::size_t p = 0; p < n_; ++p) {
                const Rect r = L.cell_rect(a, p);
                const std::size_t v = counts_[a * n_ + p];
                const double share = ratio(v, row_total);
                const Color bg = blues(share);
                c.fill_rect(r, bg);
                const Color fg = readable_on(bg);
                const int cx = r.x + r.width / 2, cy = r.y + r.height / 2;
                const std::string pct = row_total ? format_fixed(100.0 * share, 1) + "%" : "";
                if (pct.empty() || r.height < 2 * lh + 4 * s) {
                    c.draw_text(cx, cy, std::to_string(v), fg, s, HAlign::center, VAlign::middle);
                } else {
                    c.draw_text(cx, cy - s, std::to_string(v), fg, s, HAlign::center, VAlign::bottom);
                    c.draw_text(cx, cy + s, pct, fg, s, HAlign::center, VAlign::top);
                }
            }
        }
        // Cell borders and the frame.
        for (int k = 1; k < static_cast<int>(n_); ++k) {
            c.fill_rect({L.grid.x + k * L.cell, L.grid.y, 1, L.grid.height}, colors::light_gray);
            c.fill_rect({L.grid.x, L.grid.y + k * L.cell, L.grid.width, 1}, colors::light_gray);
        }
        c.draw_rect({L.grid.x - 1, L.grid.y - 1, L.grid.width + 2, L.grid.height + 2}, colors::gray, 1);

        // Class names: rows on the left, columns under the grid.
        for (std::size_t k = 0; k < n_; ++k) {
            const Rect row = L.cell_rect(k, 0), col = L.cell_rect(n_ - 1, k);
            c.draw_text(L.grid.x - 3 * s, row.y + row.height / 2, L.names[k], ink, s, HAlign::right, VAlign::middle);
            if (L.vertical_names) {
                const int len = measure_text(L.names[k], s).width;
                c.draw_text_vertical(col.x + col.width / 2, L.grid.bottom() + 3 * s + len / 2, L.names[k], ink, s);
            } else {
                c.draw_text(col.x + col.width / 2, L.grid.bottom() + 3 * s, L.names[k], ink, s, HAlign::center);
            }
        }
        // Axis titles.
        c.draw_text(L.grid.x + L.grid.width / 2, L.height - pad - lh, "predicted", ink, s, HAlign::center);
        c.draw_text_vertical(pad + lh / 2, L.grid.y + L.grid.height / 2, "actual", ink, s);

        // Colour scale: share of the row, 0% at the bottom.
        const Rect& b = L.colorbar;
        for (int y = 0; y < b.height; ++y)
            c.fill_rect({b.x, b.y + y, b.width, 1}, blues(1.0 - static_cast<double>(y) / std::max(1, b.height - 1)));
        c.draw_rect({b.x - 1, b.y - 1, b.width + 2, b.height + 2}, colors::gray, 1);
        const char* labels[3] = {"100%", "50%", "0%"};
        for (int k = 0; k < 3; ++k) {
            const int y = b.y + (b.height - 1) * k / 2;
            c.fill_rect({b.right() + 1, y, 2 * s, 1}, colors::gray);
            c.draw_text(b.right() + 1 + 2 * s + 2 * s, y, labels[k], ink, s, HAlign::left, VAlign::middle);
        }
        c.draw_text_vertical(L.width - pad - lh / 2, b.y + b.height / 2, L.colorbar_caption, ink, s);
        return c;
    }

    /// Write the heatmap (`render`) as a PNG file, atomically.
    /// @throws config_error as `render`; io_error naming `path` when it cannot be written.
    void save_png(const std::filesystem::path& path, const std::vector<std::string>& class_names = {}) const {
        render(class_names).save_png(path);
    }

private:
    std::size_t n_;
    std::vector<std::size_t> counts_;
    std::string title_ = "Confusion matrix";

    template <ClassIndex I>
    std::size_t checked(I v, const char* what) const {
        if constexpr (std::is_signed_v<I>) {
            if (v < 0)
                throw config_error(std::string("ConfusionMatrix: ") + what + " class " + std::to_string(v) +
                                   " is negative (classes are 0.." + std::to_string(n_ - 1) + ")");
        }
        if (static_cast<std::make_unsigned_t<I>>(v) >= n_)
            throw config_error(std::string("ConfusionMatrix: ") + what + " class " + std::to_string(v) +
                               " is out of range (classes are 0.." + std::to_string(n_ - 1) + ")");
        return static_cast<std::size_t>(v);
    }

    static double ratio(std::size_t num, std::size_t den) noexcept {
        return den ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
    }
    double macro(double (ConfusionMatrix::*metric)(std::size_t) const) const {
        double sum = 0.0;
        for (std::size_t c = 0; c < n_; ++c) sum += (this->*metric)(c);
        return sum / static_cast<double>(n_);
    }
    double weighted(double (ConfusionMatrix::*metric)(std::size_t) const) const {
        const std::size_t t = total();
        if (!t) return 0.0;
        double sum = 0.0;
        for (std::size_t c = 0; c < n_; ++c) sum += (this->*metric)(c) * static_cast<double>(support(c));
        return sum / static_cast<double>(t);
    }

    std::vector<std::string> names_or_numbers(const std::vector<std::string>& names) const {
        if (names.empty()) {
            std::vector<std::string> out;
            for (std::size_t c = 0; c < n_; ++c) out.push_back(std::to_string(c));
            return out;
        }
        if (names.size() != n_)
            throw config_error("ConfusionMatrix: " + std::to_string(names.size()) + " class names for " +
                               std::to_string(n_) + " classes");
        return names;
    }

    std::string subtitle() const {
        return std::to_string(total()) + " examples, accuracy " + format_fixed(100.0 * accuracy(), 2) + "%";
    }

    /// Number of code points (the width of a name in a monospaced table).
    static std::size_t width_of(std::string_view s) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < s.size(); ++n) i += detail::next_code_point(s, i).length;
        return n;
    }
    static std::string pad_left(const std::string& s, std::size_t w) {
        const std::size_t n = width_of(s);
        return n >= w ? s : std::string(w - n, ' ') + s;
    }
    static std::string pad_right(const std::string& s, std::size_t w) {
        const std::size_t n = width_of(s);
        return n >= w ? s : s + std::string(w - n, ' ');
    }
};

}  // namespace typenet::report
