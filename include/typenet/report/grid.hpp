/// @file report/grid.hpp
/// Image grids: tiles of images with caption lines under them, for the dataset
/// examples (image and label name) and the predictions (image, "actual: paper",
/// "predicted: rock 0.93" in red with a red frame when wrong).
///
/// ```cpp
/// report::ImageGrid grid(5);
/// grid.title("Test predictions");
/// grid.add(image, {{"actual: paper"}, {"predicted: rock 0.93", report::colors::red}}, report::colors::red);
/// grid.save_png("predictions.png");
/// ```
///
/// Layout (`GridLayout`, all in pixels, s = text scale, lh = 9 s the text line height):
/// every tile is `tile_width` x `tile_height`. `tile_width` is the image box plus a
/// frame on each side, `tile_size + 2 frame`, widened to the widest caption plus a
/// character's advance (6 s) on each side, but not beyond twice the image box
/// (longer captions are cut with ".."). `tile_height` is `frame + tile_size + frame`
/// plus, per caption line of the tile with the most, `2 s + lh`. Tile i sits in
/// column i % columns and row i / columns at x = padding + column (tile_width + gap),
/// y = top + row (tile_height + gap), where top = padding, plus the title's height
/// (9 (s + 1)) and a gap when there is a title; a title wider than the tiles widens
/// the picture (tiles stay on the left). The image is fitted into its square box
/// (aspect ratio kept, centred) at the top of the tile, horizontally centred; the
/// frame, if any, surrounds the fitted image (without one, a light gray hairline
/// does); caption lines are centred under the box.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/image.hpp"
#include "typenet/report/canvas.hpp"
#include "typenet/report/color.hpp"
#include "typenet/report/font.hpp"

namespace typenet::report {

/// One line of text under a tile, with its colour.
struct Caption {
    std::string text;
    Color color = colors::text;

    /// A caption line (implicit, so `{"rock"}` or `{"wrong", colors::red}` make one).
    Caption(std::string t, Color c = colors::text) : text(std::move(t)), color(c) {}
    /// A caption line from a C string.
    Caption(const char* t, Color c = colors::text) : text(t ? t : ""), color(c) {}
};

/// Sizes and colours of an `ImageGrid` (pixels).
struct GridStyle {
    int tile_size = 160;   ///< side of the square box each image is fitted into (8..4096)
    int text_scale = 2;    ///< scale of captions (1..8); the title uses text_scale + 1
    int padding = 12;      ///< margin around everything (0..1000)
    int gap = 12;          ///< space between tiles (0..1000)
    int frame = 4;         ///< width of a tile's frame, when it has one (0..100)
    Color background = colors::white;
};

/// Where the parts of an `ImageGrid` lie (see the file description).
struct GridLayout {
    int width = 0, height = 0;         ///< size of the picture
    int columns = 0, rows = 0;         ///< tiles across and down
    int tile_width = 0, tile_height = 0;
    int caption_lines = 0;             ///< caption lines of the tile with the most
    int top = 0;                       ///< y of the first row of tiles
    int padding = 0, gap = 0, frame = 0, tile_size = 0, scale = 1;

    /// The whole tile i (image box, frame and captions).
    Rect tile(std::size_t i) const noexcept {
        const int c = static_cast<int>(i % static_cast<std::size_t>(columns));
        const int r = static_cast<int>(i / static_cast<std::size_t>(columns));
        return {padding + c * (tile_width + gap), top + r * (tile_height + gap), tile_width, tile_height};
    }
    /// The square box image i is fitted into.
    Rect image_box(std::size_t i) const noexcept {
        const Rect t = tile(i);
        return {t.x + (tile_width - tile_size) / 2, t.y + frame, tile_size, tile_size};
    }
    /// The y of the top of caption line `line` of tile i (the line is centred on the tile).
    int caption_y(std::size_t i, std::size_t line) const noexcept {
        return tile(i).y + 2 * frame + tile_size + 2 * scale +
               static_cast<int>(line) * (font::line_height * scale + 2 * scale);
    }
};

/// A grid of captioned images (see the file description).
class ImageGrid {
public:
    /// A grid `columns` tiles wide.
    /// @throws config_error for 0 columns, more than 1000, or a style value out of its range.
    explicit ImageGrid(std::size_t columns, GridStyle style = {}) : columns_(columns), style_(style) {
        if (columns == 0 || columns > 1000)
            throw config_error("ImageGrid: columns must be in 1..1000, got " + std::to_string(columns));
        check("tile_size", style.tile_size, 8, 4096);
        check("text_scale", style.text_scale, 1, 8);
        check("padding", style.padding, 0, 1000);
        check("gap", style.gap, 0, 1000);
        check("frame", style.frame, 0, 100);
    }

    /// Set a title above the grid.
    ImageGrid& title(std::string t) {
        title_ = std::move(t);
        return *this;
    }

    /// Add a tile: `image` with caption lines under it and, if `frame` is given, a
    /// frame of that colour around it.
    /// @throws shape_error when `image.pixels` does not hold width x height x 3 bytes.
    ImageGrid& add(data::Image image, std::vector<Caption> captions = {}, std::optional<Color> frame = std::nullopt) {
        const auto side = static_cast<std::size_t>(Canvas::max_side);
        if (image.width == 0 || image.height == 0 || image.pixels.size() != image.width * image.height * 3 ||
            image.width > side || image.height > side)
            throw shape_error("ImageGrid::add: an image of " + std::to_string(image.width) + "x" +
                              std::to_string(image.height) + " pixels holding " + std::to_string(image.pixels.size()) +
                              " bytes (needs width x height x 3 bytes)");
        tiles_.push_back({std::move(image), std::move(captions), frame});
        return *this;
    }

    /// Add a tile from an HWC float tensor with values in [0, 1] (3 channels, or 1
    /// for gray); values slightly outside are clamped, NaN is black (`data::to_image`).
    /// @throws shape_error for another number of channels or an empty tensor;
    ///         config_error for a value above 2, which means the tensor is not in
    ///         [0, 1] (pixel values 0..255 must be divided by 255 first).
    ImageGrid& add(const Tensor<3>& image, std::vector<Caption> captions = {}, std::optional<Color> frame = std::nullopt) {
        data::Image im = data::to_image(image, 255.0f);
        const float* p = image.data();
        for (std::size_t i = 0; i < image.size(); ++i)
            if (p[i] > 2.0f)
                throw config_error("ImageGrid::add: the image tensor holds " + std::to_string(p[i]) +
                                   "; expected values in [0, 1] (divide 0..255 pixel values by 255)");
        return add(std::move(im), std::move(captions), frame);
    }

    /// Number of tiles.
    std::size_t size() const noexcept { return tiles_.size(); }

    /// Where everything goes (see `GridLayout`).
    /// @throws config_error when the grid has no tile or would be too large.
    GridLayout layout() const {
        if (tiles_.empty()) throw config_error("ImageGrid: no tile to draw, add an image first");
        GridLayout L;
        const int s = L.scale = style_.text_scale;
        L.padding = style_.padding, L.gap = style_.gap, L.frame = style_.frame, L.tile_size = style_.tile_size;
        L.columns = static_cast<int>(std::min(columns_, tiles_.size()));
        L.rows = static_cast<int>((tiles_.size() + columns_ - 1) / columns_);
        int widest = 0;
        for (const Tile& t : tiles_) {
            L.caption_lines = std::max(L.caption_lines, static_cast<int>(t.captions.size()));
            for (const Caption& c : t.captions) widest = std::max(widest, measure_text(c.text, s).width);
        }
        const int box_w = L.tile_size + 2 * L.frame;
        // Captions wider than the image keep a character's width of space on each side.
        const int caption_w = widest > 0 ? widest + 2 * font::advance * s : 0;
        L.tile_width = std::max(box_w, std::min(caption_w, 2 * L.tile_size));
        L.tile_height = box_w + L.caption_lines * (font::line_height * s + 2 * s);
        L.top = L.padding + (title_.empty() ? 0 : font::line_height * (s + 1) + L.gap);
        const long long tiles_w = static_cast<long long>(L.columns) * (L.tile_width + L.gap) - L.gap;
        const long long w = 2LL * L.padding + std::max<long long>(tiles_w, measure_text(title_, s + 1).width);
        const long long h = L.top + static_cast<long long>(L.rows) * (L.tile_height + L.gap) - L.gap + L.padding;
        if (w > Canvas::max_side || h > Canvas::max_side ||
            static_cast<unsigned long long>(w) * static_cast<unsigned long long>(h) > data::max_image_pixels)
            throw config_error("ImageGrid: " + std::to_string(tiles_.size()) + " tiles make a picture of " +
                               std::to_string(w) + "x" + std::to_string(h) +
                               " pixels, too large (use fewer tiles, more columns or smaller tiles)");
        L.width = static_cast<int>(w);
        L.height = static_cast<int>(h);
        return L;
    }

    /// The grid as a picture.
    /// @throws config_error as `layout`.
    Canvas render() const {
        const GridLayout L = layout();
        const int s = L.scale;
        Canvas c(L.width, L.height, style_.background);
        if (!title_.empty()) c.draw_text(L.width / 2, L.padding, title_, colors::text, s + 1, HAlign::center);
        for (std::size_t i = 0; i < tiles_.size(); ++i) {
            const Tile& t = tiles_[i];
            const Rect placed = c.blit_scaled(t.image, L.image_box(i), Fit::contain);
            if (t.frame && L.frame > 0)
                c.draw_rect({placed.x - L.frame, placed.y - L.frame, placed.width + 2 * L.frame,
                             placed.height + 2 * L.frame},
                            *t.frame, L.frame);
            else  // a hairline, so images on a white background keep their edges
                c.draw_rect({placed.x - 1, placed.y - 1, placed.width + 2, placed.height + 2}, colors::light_gray, 1);
            const Rect tile = L.tile(i);
            for (std::size_t k = 0; k < t.captions.size(); ++k) {
                const std::string shown = detail::fit_chars(detail::font_chars(t.captions[k].text), L.tile_width, s);
                c.draw_text(tile.x + tile.width / 2, L.caption_y(i, k), shown, t.captions[k].color, s, HAlign::center);
            }
        }
        return c;
    }

    /// Write the grid as a PNG file, atomically.
    /// @throws config_error as `layout`; io_error naming `path` when it cannot be written.
    void save_png(const std::filesystem::path& path) const { render().save_png(path); }

private:
    struct Tile {
        data::Image image;
        std::vector<Caption> captions;
        std::optional<Color> frame;
    };
    std::size_t columns_;
    GridStyle style_;
    std::string title_;
    std::vector<Tile> tiles_;

    static void check(const char* what, int v, int lo, int hi) {
        if (v < lo || v > hi)
            throw config_error(std::string("GridStyle::") + what + " must be in " + std::to_string(lo) + ".." +
                               std::to_string(hi) + ", got " + std::to_string(v));
    }
};

}  // namespace typenet::report
