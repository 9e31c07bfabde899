/// @file report/svg.hpp
/// A standalone SVG 1.1 document built with the same drawing calls as `Canvas`
/// (`fill_rect`, `draw_rect`, `draw_line`, `draw_polyline`, `draw_text`,
/// `draw_text_vertical`, `set_clip`), so one drawing routine, written as a template
/// over its surface, produces the PNG and the SVG of a picture.
///
/// Text uses a monospace font of size 10 x scale, which matches the advance (6 x scale)
/// and the capital height (about 7 x scale) of the built-in font; its position is
/// the same box as on the canvas. Text is escaped for XML (`xml_escape`). Numbers are
/// written independently of the C locale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "typenet/core/error.hpp"
#include "typenet/io/file.hpp"
#include "typenet/report/canvas.hpp"
#include "typenet/report/color.hpp"
#include "typenet/report/font.hpp"
#include "typenet/report/ticks.hpp"

namespace typenet::report {

/// `text` (UTF-8) made safe as XML character data or attribute value: `& < > " '`
/// become entities; bytes that are not well-formed UTF-8, and characters XML 1.0
/// forbids (control characters other than tab, line feed and carriage return,
/// U+FFFE, U+FFFF), become '?'.
inline std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    for (std::size_t i = 0; i < text.size();) {
        const detail::CodePoint cp = detail::next_code_point(text, i);
        const long v = cp.value;
        if (v == '&') out += "&amp;";
        else if (v == '<') out += "&lt;";
        else if (v == '>') out += "&gt;";
        else if (v == '"') out += "&quot;";
        else if (v == '\'') out += "&apos;";
        else if (v < 0 || (v < 0x20 && v != '\t' && v != '\n' && v != '\r') || v == 0xFFFE || v == 0xFFFF) out += '?';
        else out.append(text.substr(i, cp.length));
        i += cp.length;
    }
    return out;
}

/// An SVG 1.1 document drawn with `Canvas`'s calls (see the file description).
class SvgDocument {
public:
    /// A `width` x `height` document (pixels) with a `background` rectangle.
    /// @throws config_error for a side outside 1 .. Canvas::max_side.
    SvgDocument(int width, int height, Color background = colors::white) : width_(width), height_(height) {
        if (width < 1 || height < 1 || width > Canvas::max_side || height > Canvas::max_side)
            throw config_error("SvgDocument: size " + std::to_string(width) + "x" + std::to_string(height) +
                               " is not between 1x1 and " + std::to_string(Canvas::max_side) + "x" +
                               std::to_string(Canvas::max_side));
        fill_rect({0, 0, width, height}, background);
    }

    /// Width in pixels.
    int width() const noexcept { return width_; }
    /// Height in pixels.
    int height() const noexcept { return height_; }

    /// Clip what follows to `r` (until `clear_clip` or the next `set_clip`).
    void set_clip(Rect r) {
        clear_clip();
        const std::string id = "clip" + std::to_string(++clips_);
        defs_ += "<clipPath id=\"" + id + "\"><rect" + rect_attrs(r) + "/></clipPath>\n";
        body_ += "<g clip-path=\"url(#" + id + ")\">\n";
        in_clip_ = true;
    }
    /// Stop clipping.
    void clear_clip() {
        if (in_clip_) body_ += "</g>\n";
        in_clip_ = false;
    }

    /// A filled rectangle.
    void fill_rect(Rect r, Color c) {
        if (r.empty()) return;
        body_ += "<rect" + rect_attrs(r) + " fill=\"" + c.hex() + "\"/>\n";
    }

    /// A rectangle outline `thickness` pixels wide inside `r`, as `Canvas::draw_rect`.
    void draw_rect(Rect r, Color c, int thickness = 1) {
        if (r.empty() || thickness <= 0) return;
        const double t = std::min({static_cast<double>(thickness), r.width / 2.0, r.height / 2.0});
        body_ += "<rect x=\"" + num(r.x + t / 2) + "\" y=\"" + num(r.y + t / 2) + "\" width=\"" + num(r.width - t) +
                 "\" height=\"" + num(r.height - t) + "\" fill=\"none\" stroke=\"" + c.hex() + "\" stroke-width=\"" +
                 num(t) + "\"/>\n";
    }

    /// A segment, as `Canvas::draw_line`.
    void draw_line(Point a, Point b, const Stroke& stroke) {
        const Point pts[2] = {a, b};
        draw_polyline(pts, stroke);
    }

    /// A `<polyline>` through `points` (a single point is written twice, so a round
    /// cap shows it as a dot), as `Canvas::draw_polyline`.
    /// @throws config_error for a non-finite point.
    void draw_polyline(std::span<const Point> points, const Stroke& stroke) {
        if (points.empty()) return;
        std::string pts;
        for (const Point& p : points) {
            if (!std::isfinite(p.x) || !std::isfinite(p.y))
                throw config_error("SvgDocument::draw_polyline: point (" + std::to_string(p.x) + ", " +
                                   std::to_string(p.y) + ") is not finite");
            if (!pts.empty()) pts += ' ';
            pts += num(p.x) + "," + num(p.y);
        }
        if (points.size() == 1) pts += " " + pts;
        body_ += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + stroke.color.hex() +
                 "\" stroke-width=\"" + num(stroke.width) + "\" stroke-linecap=\"" +
                 (stroke.cap == LineCap::round ? "round" : "butt") + "\" stroke-linejoin=\"round\"";
        if (stroke.dash > 0.0 && stroke.gap > 0.0)
            body_ += " stroke-dasharray=\"" + num(stroke.dash) + "," + num(stroke.gap) + "\"";
        if (!stroke.antialias) body_ += " shape-rendering=\"crispEdges\"";
        body_ += "/>\n";
    }

    /// A `<text>` occupying the box `Canvas::draw_text` would; returns that box.
    /// @throws config_error for a scale outside 1 .. font::max_scale.
    Rect draw_text(int x, int y, std::string_view text, Color c, int scale = 1, HAlign h = HAlign::left,
                   VAlign v = VAlign::top) {
        const Rect box = Canvas::text_box(x, y, measure_text(text, scale).width, scale, h, v);
        if (text.empty()) return box;
        const double ax = h == HAlign::left ? box.x : h == HAlign::center ? box.x + box.width / 2.0 : box.right();
        const char* anchor = h == HAlign::left ? "start" : h == HAlign::center ? "middle" : "end";
        body_ += "<text x=\"" + num(ax) + "\" y=\"" + num(box.y + font::cap_height * scale) + "\"" + text_attrs(c, scale) +
                 " text-anchor=\"" + anchor + "\">" + xml_escape(text) + "</text>\n";
        return box;
    }

    /// A `<text>` turned 90 degrees anticlockwise, centred on (cx, cy), as
    /// `Canvas::draw_text_vertical`; returns its box.
    Rect draw_text_vertical(int cx, int cy, std::string_view text, Color c, int scale = 1) {
        const TextSize size = measure_text(text, scale);
        const Rect box{cx - size.height / 2, cy - size.width / 2, size.height, size.width};
        if (text.empty()) return box;
        // Baseline at cap height from the box's left edge, text centred along it.
        const double bx = box.x + font::cap_height * scale, by = box.y + box.height / 2.0;
        body_ += "<text x=\"" + num(bx) + "\" y=\"" + num(by) + "\" transform=\"rotate(-90 " + num(bx) + " " + num(by) +
                 ")\"" + text_attrs(c, scale) + " text-anchor=\"middle\">" + xml_escape(text) + "</text>\n";
        return box;
    }

    /// The complete document.
    std::string str() const {
        std::string out =
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
            "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
            std::to_string(width_) + "\" height=\"" + std::to_string(height_) + "\" viewBox=\"0 0 " +
            std::to_string(width_) + " " + std::to_string(height_) + "\">\n";
        if (!defs_.empty()) out += "<defs>\n" + defs_ + "</defs>\n";
        out += body_;
        if (in_clip_) out += "</g>\n";
        out += "</svg>\n";
        return out;
    }

    /// Write the document to `path` atomically (`io::write_file_atomic`).
    /// @throws io_error naming `path` when it cannot be written.
    void save(const std::filesystem::path& path) const {
        const std::string s = str();
        io::write_file_atomic(path, std::as_bytes(std::span<const char>(s.data(), s.size())));
    }

private:
    int width_, height_;
    std::string defs_, body_;
    int clips_ = 0;
    bool in_clip_ = false;

    /// A coordinate with at most two decimals, trailing zeros dropped.
    static std::string num(double v) {
        std::string s = format_fixed(v, 2);
        if (s.find('.') != std::string::npos) {
            while (s.back() == '0') s.pop_back();
            if (s.back() == '.') s.pop_back();
        }
        return s == "-0" ? "0" : s;
    }
    static std::string rect_attrs(Rect r) {
        return " x=\"" + std::to_string(r.x) + "\" y=\"" + std::to_string(r.y) + "\" width=\"" +
               std::to_string(std::max(r.width, 0)) + "\" height=\"" + std::to_string(std::max(r.height, 0)) + "\"";
    }
    static std::string text_attrs(Color c, int scale) {
        return " font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"" +
               std::to_string(10 * scale) + "\" fill=\"" + c.hex() + "\"";
    }
};

}  // namespace typenet::report
