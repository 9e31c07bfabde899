/// @file report/canvas.hpp
/// An RGB raster canvas to draw report pictures on: pixels, rectangles, lines and
/// polylines (any thickness, optionally anti-aliased or dashed), text in the built-in
/// font (`report/font.hpp`), and images scaled into a box; saved as PNG.
///
/// Coordinates are in pixels, x to the right and y downwards, origin at the top-left
/// corner. Integer coordinates (pixels, rectangles, text) name pixels: pixel (x, y)
/// is the unit square [x, x+1) x [y, y+1). Line coordinates are continuous: a line
/// from (2, 5.5) to (10, 5.5) of width 1 covers exactly the pixels x = 2..9 of row 5;
/// one of width 2 at y = 5 covers rows 4 and 5.
///
/// A line's shape is the set of points within width/2 of it. Without anti-aliasing a
/// pixel is set when its centre is inside the shape (on the boundary counts as
/// inside); with anti-aliasing it is blended by the fraction of the pixel covered
/// (approximated from the distance of its centre). Polylines are drawn in one pass,
/// so their segments never blend twice where they meet; inner corners are round.
///
/// Everything drawn is limited to the clip rectangle (`set_clip`), by default the
/// whole canvas; drawing outside it is silently cut, never an error.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/image.hpp"
#include "typenet/data/image_format.hpp"
#include "typenet/data/resize.hpp"
#include "typenet/report/color.hpp"
#include "typenet/report/font.hpp"

namespace typenet::report {

/// A rectangle of whole pixels: columns x .. x+width-1, rows y .. y+height-1.
struct Rect {
    int x = 0, y = 0, width = 0, height = 0;

    /// One past the last column.
    constexpr int right() const noexcept { return x + width; }
    /// One past the last row.
    constexpr int bottom() const noexcept { return y + height; }
    /// True when it holds no pixel.
    constexpr bool empty() const noexcept { return width <= 0 || height <= 0; }
    /// True when pixel (px, py) lies inside.
    constexpr bool contains(int px, int py) const noexcept {
        return px >= x && px < right() && py >= y && py < bottom();
    }
    friend constexpr bool operator==(const Rect&, const Rect&) = default;
};

/// The pixels two rectangles share (empty when they do not overlap).
constexpr Rect intersect(Rect a, Rect b) noexcept {
    const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
    const int x1 = std::min(a.right(), b.right()), y1 = std::min(a.bottom(), b.bottom());
    return x1 > x0 && y1 > y0 ? Rect{x0, y0, x1 - x0, y1 - y0} : Rect{x0, y0, 0, 0};
}

/// A point in continuous canvas coordinates (pixel (i, j) has its centre at (i + 0.5, j + 0.5)).
struct Point {
    double x = 0.0, y = 0.0;
    friend constexpr bool operator==(const Point&, const Point&) = default;
};

/// How the two ends of a line (and of each dash) look.
enum class LineCap {
    butt,  ///< cut square at the end point
    round  ///< a half disc of radius width/2 beyond the end point
};

/// How a line or polyline is drawn.
struct Stroke {
    Color color = colors::black;
    double width = 1.0;          ///< thickness in pixels (> 0)
    bool antialias = false;      ///< blend edge pixels by coverage
    double dash = 0.0;           ///< dash length in pixels; 0 draws a solid line
    double gap = 0.0;            ///< gap between dashes in pixels (used when dash > 0)
    LineCap cap = LineCap::butt; ///< ends of the line and of each dash
};

/// Horizontal placement of a text relative to its anchor x.
enum class HAlign { left, center, right };

/// Vertical placement of a text relative to its anchor y.
enum class VAlign {
    top,       ///< y is the top of the text box
    middle,    ///< y is the middle of the capital letters (numbers look centred)
    baseline,  ///< y is the baseline (the row under the capitals)
    bottom     ///< y is one past the bottom of the box (descenders included)
};

/// How an image is scaled into a box.
enum class Fit {
    contain,  ///< as large as fits, aspect ratio kept, centred in the box
    stretch   ///< exactly the box, aspect ratio not kept
};

/// An RGB raster picture with drawing operations (see the file description for the
/// coordinate conventions and clipping).
class Canvas {
public:
    /// Largest width or height accepted.
    static constexpr int max_side = 32768;

    /// A `width` x `height` canvas filled with `background`.
    /// @throws config_error when a side is not in 1 .. max_side or the picture is
    ///         larger than the PNG writer accepts.
    Canvas(int width, int height, Color background = colors::white) {
        if (width < 1 || height < 1 || width > max_side || height > max_side ||
            static_cast<std::size_t>(width) * static_cast<std::size_t>(height) > data::max_image_pixels)
            throw config_error("Canvas: size " + std::to_string(width) + "x" + std::to_string(height) +
                               " is not between 1x1 and " + std::to_string(max_side) + "x" +
                               std::to_string(max_side) + " (and at most " +
                               std::to_string(data::max_image_pixels) + " pixels)");
        image_ = data::Image::filled(static_cast<std::size_t>(width), static_cast<std::size_t>(height));
        clip_ = bounds();
        fill(background);
    }

    /// Width in pixels.
    int width() const noexcept { return static_cast<int>(image_.width); }
    /// Height in pixels.
    int height() const noexcept { return static_cast<int>(image_.height); }
    /// The whole canvas as a rectangle.
    Rect bounds() const noexcept { return {0, 0, width(), height()}; }

    /// Limit all drawing to `r` (intersected with the canvas).
    void set_clip(Rect r) noexcept { clip_ = intersect(r, bounds()); }
    /// Draw on the whole canvas again.
    void clear_clip() noexcept { clip_ = bounds(); }
    /// The current clip rectangle.
    Rect clip() const noexcept { return clip_; }

    /// The colour of pixel (x, y). @throws config_error when it is outside the canvas.
    Color pixel(int x, int y) const {
        if (!bounds().contains(x, y))
            throw config_error("Canvas::pixel: (" + std::to_string(x) + ", " + std::to_string(y) +
                               ") is outside the " + std::to_string(width()) + "x" + std::to_string(height()) +
                               " canvas");
        const std::uint8_t* p = image_.at(static_cast<std::size_t>(y), static_cast<std::size_t>(x));
        return {p[0], p[1], p[2]};
    }

    /// Set pixel (x, y) to `c` (ignored outside the clip rectangle).
    void set_pixel(int x, int y, Color c) noexcept {
        if (clip_.contains(x, y)) put(x, y, c);
    }

    /// Mix `c` into pixel (x, y) with weight `alpha` in [0, 1] (ignored outside the clip rectangle).
    void blend_pixel(int x, int y, Color c, double alpha) noexcept {
        if (!clip_.contains(x, y) || !(alpha > 0.0)) return;
        if (alpha >= 1.0) return put(x, y, c);
        std::uint8_t* p = at(x, y);
        const Color old{p[0], p[1], p[2]};
        put(x, y, mix(old, c, alpha));
    }

    /// Fill the clip rectangle with `c`.
    void fill(Color c) noexcept { fill_rect(clip_, c); }

    /// Fill the pixels of `r` with `c`.
    void fill_rect(Rect r, Color c) noexcept {
        r = intersect(r, clip_);
        for (int y = r.y; y < r.bottom(); ++y)
            for (int x = r.x; x < r.right(); ++x) put(x, y, c);
    }

    /// Outline `r` with `c`: a border `thickness` pixels wide lying inside `r`
    /// (the whole rectangle when it is thinner than twice the border).
    void draw_rect(Rect r, Color c, int thickness = 1) noexcept {
        if (r.empty() || thickness <= 0) return;
        const int t = std::min({thickness, (r.width + 1) / 2, (r.height + 1) / 2});
        fill_rect({r.x, r.y, r.width, t}, c);
        fill_rect({r.x, r.bottom() - t, r.width, t}, c);
        fill_rect({r.x, r.y + t, t, r.height - 2 * t}, c);
        fill_rect({r.right() - t, r.y + t, t, r.height - 2 * t}, c);
    }

    /// Draw the segment from `a` to `b` (see the file description; dashes and caps per `stroke`).
    /// @throws config_error for a non-finite point or a bad stroke.
    void draw_line(Point a, Point b, const Stroke& stroke) {
        const Point pts[2] = {a, b};
        draw_polyline(pts, stroke);
    }

    /// Draw the connected segments through `points` in one pass (a single point with
    /// round caps is a dot; otherwise fewer than two points draw nothing).
    /// @throws config_error for a non-finite point, a width that is not positive and
    ///         finite, or a negative or non-finite dash or gap.
    void draw_polyline(std::span<const Point> points, const Stroke& stroke) {
        check_stroke(stroke);
        for (const Point& p : points)
            if (!std::isfinite(p.x) || !std::isfinite(p.y))
                throw config_error("Canvas::draw_polyline: point (" + std::to_string(p.x) + ", " +
                                   std::to_string(p.y) + ") is not finite");
        if (points.empty()) return;
        std::vector<std::vector<Point>> pieces;
        if (stroke.dash > 0.0 && stroke.gap > 0.0)
            pieces = dash_pieces(points, stroke.dash, stroke.gap);
        else
            pieces.emplace_back(points.begin(), points.end());
        rasterize(pieces, stroke);
    }

    /// Draw `text` (UTF-8, one line) in the built-in font, `scale` times enlarged,
    /// anchored at (x, y) as `h` and `v` say (default: (x, y) is the top-left corner
    /// of its box). Returns the text box (see `measure_text`); no pixel outside it changes.
    /// @throws config_error for a scale outside 1 .. font::max_scale.
    Rect draw_text(int x, int y, std::string_view text, Color c, int scale = 1, HAlign h = HAlign::left,
                   VAlign v = VAlign::top) {
        detail::check_scale(scale);
        const std::string chars = detail::font_chars(text);
        const Rect box = text_box(x, y, detail::text_width(chars.size(), scale), scale, h, v);
        for (std::size_t i = 0; i < chars.size(); ++i) {
            const auto& rows = detail::glyph(chars[i]);
            const int gx = box.x + static_cast<int>(i) * font::advance * scale;
            for (int row = 0; row < font::line_height; ++row)
                for (int col = 0; col < font::glyph_width; ++col)
                    if (rows[static_cast<std::size_t>(row)] & (0x10 >> col))
                        fill_rect({gx + col * scale, box.y + row * scale, scale, scale}, c);
        }
        return box;
    }

    /// Draw `text` turned 90 degrees anticlockwise (read from bottom to top), its box
    /// centred on (cx, cy). Returns the box it occupies (as wide as the text is high).
    /// @throws config_error for a scale outside 1 .. font::max_scale.
    Rect draw_text_vertical(int cx, int cy, std::string_view text, Color c, int scale = 1) {
        detail::check_scale(scale);
        const std::string chars = detail::font_chars(text);
        const int len = detail::text_width(chars.size(), scale), thick = font::line_height * scale;
        const Rect box{cx - thick / 2, cy - len / 2, thick, len};
        for (std::size_t i = 0; i < chars.size(); ++i) {
            const auto& rows = detail::glyph(chars[i]);
            const int gx = static_cast<int>(i) * font::advance * scale;  // along the text
            for (int row = 0; row < font::line_height; ++row)
                for (int col = 0; col < font::glyph_width; ++col)
                    if (rows[static_cast<std::size_t>(row)] & (0x10 >> col))
                        // text-space (u, v) = (gx + col*s, row*s) goes to (box.x + v, box.bottom() - 1 - u)
                        fill_rect({box.x + row * scale, box.bottom() - (gx + (col + 1) * scale), scale, scale}, c);
        }
        return box;
    }

    /// Copy `img` with its top-left corner at (x, y), unscaled.
    /// @throws shape_error when `img.pixels` does not hold width x height x 3 bytes.
    void blit(const data::Image& img, int x, int y) {
        check_image(img);
        const Rect r = intersect({x, y, static_cast<int>(img.width), static_cast<int>(img.height)}, clip_);
        for (int py = r.y; py < r.bottom(); ++py) {
            const std::uint8_t* src = img.at(static_cast<std::size_t>(py - y), static_cast<std::size_t>(r.x - x));
            std::copy(src, src + 3 * static_cast<std::size_t>(r.width), at(r.x, py));
        }
    }

    /// Draw `img` scaled into `box` (`fit`: keep the aspect ratio and centre, or
    /// stretch), resampled with TensorFlow's antialiased bilinear filter
    /// (`data::resize_antialiased`: an area-weighted mean when shrinking, bilinear
    /// when enlarging). Returns the rectangle the image covers.
    /// @throws shape_error for an inconsistent image; config_error for an empty box.
    Rect blit_scaled(const data::Image& img, Rect box, Fit fit = Fit::contain) {
        check_image(img);
        if (box.empty())
            throw config_error("Canvas::blit_scaled: the target box " + std::to_string(box.width) + "x" +
                               std::to_string(box.height) + " is empty");
        Rect dst = box;
        if (fit == Fit::contain) {
            const double s = std::min(static_cast<double>(box.width) / static_cast<double>(img.width),
                                      static_cast<double>(box.height) / static_cast<double>(img.height));
            dst.width = std::clamp(static_cast<int>(std::lround(static_cast<double>(img.width) * s)), 1, box.width);
            dst.height = std::clamp(static_cast<int>(std::lround(static_cast<double>(img.height) * s)), 1, box.height);
            dst.x = box.x + (box.width - dst.width) / 2;
            dst.y = box.y + (box.height - dst.height) / 2;
        }
        if (static_cast<std::size_t>(dst.width) == img.width && static_cast<std::size_t>(dst.height) == img.height) {
            blit(img, dst.x, dst.y);
        } else {
            const Tensor<3> resized = data::resize_antialiased(data::to_tensor(img), static_cast<std::size_t>(dst.height),
                                                               static_cast<std::size_t>(dst.width));
            blit(data::to_image(resized), dst.x, dst.y);
        }
        return dst;
    }

    /// The picture drawn so far.
    const data::Image& image() const noexcept { return image_; }
    /// A copy of the picture drawn so far.
    data::Image to_image() const { return image_; }

    /// Write the picture as a PNG file, atomically (`data::write_png`).
    /// @throws io_error naming `path` when it cannot be written.
    void save_png(const std::filesystem::path& path) const { data::write_png(path, image_); }

    /// The box of a text `text_width` pixels wide at `scale` anchored at (x, y) as
    /// `h` and `v` say (see `draw_text`).
    static Rect text_box(int x, int y, int text_width, int scale, HAlign h = HAlign::left, VAlign v = VAlign::top) {
        const int bx = h == HAlign::left ? x : h == HAlign::center ? x - text_width / 2 : x - text_width;
        const int by = v == VAlign::top        ? y
                       : v == VAlign::middle   ? y - (font::cap_height * scale) / 2
                       : v == VAlign::baseline ? y - font::cap_height * scale
                                               : y - font::line_height * scale;
        return {bx, by, text_width, font::line_height * scale};
    }

private:
    data::Image image_;
    Rect clip_;

    std::uint8_t* at(int x, int y) noexcept { return image_.at(static_cast<std::size_t>(y), static_cast<std::size_t>(x)); }
    void put(int x, int y, Color c) noexcept {
        std::uint8_t* p = at(x, y);
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }

    static void check_image(const data::Image& img) {
        if (img.width == 0 || img.height == 0 || img.pixels.size() != img.width * img.height * 3 ||
            img.width > static_cast<std::size_t>(max_side) || img.height > static_cast<std::size_t>(max_side))
            throw shape_error("Canvas: an image of " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                              " pixels holding " + std::to_string(img.pixels.size()) +
                              " bytes cannot be drawn (needs width x height x 3 bytes, sides 1.." +
                              std::to_string(max_side) + ")");
    }

    static void check_stroke(const Stroke& s) {
        if (!(s.width > 0.0) || !std::isfinite(s.width))
            throw config_error("Stroke: width must be positive and finite, got " + std::to_string(s.width));
        if (!(s.dash >= 0.0) || !std::isfinite(s.dash) || !(s.gap >= 0.0) || !std::isfinite(s.gap))
            throw config_error("Stroke: dash and gap must be finite and not negative, got " + std::to_string(s.dash) +
                               " and " + std::to_string(s.gap));
    }

    /// The dashes of a polyline as separate polylines (the pattern runs on across corners).
    static std::vector<std::vector<Point>> dash_pieces(std::span<const Point> pts, double dash, double gap) {
        std::vector<std::vector<Point>> out;
        bool on = true;
        double left = dash;  // length remaining in the current dash or gap
        std::vector<Point> cur{pts[0]};
        for (std::size_t i = 1; i < pts.size(); ++i) {
            Point a = pts[i - 1];
            const Point b = pts[i];
            double len = std::hypot(b.x - a.x, b.y - a.y);
            while (len > 0.0) {
                const double step = std::min(left, len);
                const double f = step / len;
                const Point m{a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f};
                if (on) cur.push_back(m);
                a = m;
                len -= step;
                left -= step;
                if (left <= 0.0) {
                    if (on) {
                        out.push_back(std::move(cur));
                        cur.clear();
                    } else {
                        cur = {a};
                    }
                    on = !on;
                    left = on ? dash : gap;
                }
            }
        }
        if (on && cur.size() >= 2) out.push_back(std::move(cur));
        return out;
    }

    /// Coverage of a pixel centre by each piece (max over pieces), then one blend.
    void rasterize(const std::vector<std::vector<Point>>& pieces, const Stroke& s) {
        const double r = s.width / 2.0;
        // Union of the pieces' bounding boxes, widened by the half width, within the clip.
        double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
        for (const auto& piece : pieces)
            for (const Point& p : piece) {
                x0 = std::min(x0, p.x), y0 = std::min(y0, p.y);
                x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
            }
        if (!(x0 <= x1)) return;
        const Rect area = intersect(pixel_span(x0 - r - 1, y0 - r - 1, x1 + r + 1, y1 + r + 1), clip_);
        if (area.empty()) return;
        std::vector<float> cov(static_cast<std::size_t>(area.width) * static_cast<std::size_t>(area.height), 0.0f);
        auto mark = [&](int px, int py, double c) {
            float& slot = cov[static_cast<std::size_t>(py - area.y) * static_cast<std::size_t>(area.width) +
                              static_cast<std::size_t>(px - area.x)];
            slot = std::max(slot, static_cast<float>(c));
        };
        // Fraction covered from a signed margin m (distance inside the edge, in pixels).
        auto edge = [&](double m) { return s.antialias ? std::clamp(m + 0.5, 0.0, 1.0) : (m >= 0.0 ? 1.0 : 0.0); };

        auto disc = [&](Point c) {
            const Rect box = intersect(pixel_span(c.x - r - 1, c.y - r - 1, c.x + r + 1, c.y + r + 1), area);
            for (int py = box.y; py < box.bottom(); ++py)
                for (int px = box.x; px < box.right(); ++px) {
                    const double d = std::hypot(px + 0.5 - c.x, py + 0.5 - c.y);
                    if (const double c2 = edge(r - d); c2 > 0.0) mark(px, py, c2);
                }
        };
        auto segment = [&](Point a, Point b) {
            const double dx = b.x - a.x, dy = b.y - a.y, len = std::hypot(dx, dy);
            if (len <= 0.0) return;
            const double ux = dx / len, uy = dy / len;
            const Rect box = intersect(pixel_span(std::min(a.x, b.x) - r - 1, std::min(a.y, b.y) - r - 1,
                                                  std::max(a.x, b.x) + r + 1, std::max(a.y, b.y) + r + 1),
                                       area);
            for (int py = box.y; py < box.bottom(); ++py)
                for (int px = box.x; px < box.right(); ++px) {
                    const double qx = px + 0.5 - a.x, qy = py + 0.5 - a.y;
                    const double along = qx * ux + qy * uy, across = std::abs(qx * uy - qy * ux);
                    const double c_across = edge(r - across);
                    if (c_across <= 0.0) continue;
                    // Overlap of the pixel's extent along the line with [0, len].
                    double c_along = std::min(along + 0.5, len) - std::max(along - 0.5, 0.0);
                    c_along = s.antialias ? std::clamp(c_along, 0.0, 1.0) : (c_along >= 0.5 ? 1.0 : 0.0);
                    if (c_along > 0.0) mark(px, py, c_across * c_along);
                }
        };

        for (const auto& piece : pieces) {
            for (std::size_t i = 1; i < piece.size(); ++i) segment(piece[i - 1], piece[i]);
            for (std::size_t i = 1; i + 1 < piece.size(); ++i) disc(piece[i]);  // round inner corners
            if (s.cap == LineCap::round && !piece.empty()) {
                disc(piece.front());
                disc(piece.back());
            }
        }
        for (int py = area.y; py < area.bottom(); ++py)
            for (int px = area.x; px < area.right(); ++px) {
                const float c = cov[static_cast<std::size_t>(py - area.y) * static_cast<std::size_t>(area.width) +
                                    static_cast<std::size_t>(px - area.x)];
                if (c > 0.0f) blend_pixel(px, py, s.color, c);
            }
    }

    /// The pixels whose centres may lie in [x0, x1] x [y0, y1], clamped to the canvas.
    Rect pixel_span(double x0, double y0, double x1, double y1) const noexcept {
        auto lo = [](double v, int hi) {
            return static_cast<int>(std::clamp(std::floor(v), 0.0, static_cast<double>(hi)));
        };
        const int ax = lo(x0, width()), ay = lo(y0, height()), bx = lo(x1 + 1.0, width()), by = lo(y1 + 1.0, height());
        return {ax, ay, bx - ax, by - ay};
    }
};

}  // namespace typenet::report
