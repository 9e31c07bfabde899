/// @file data/transforms.hpp
/// Deterministic transforms: rescaling, resizing, cropping, normalising, one-hot labels.
///
/// | transform                   | effect on the example                                         |
/// |-----------------------------|---------------------------------------------------------------|
/// | `Scale<D>`                  | image /= D (`Scale<255>`: 0..255 to [0, 1]); D int or float   |
/// | `Resize<H, W>`              | bilinear resize, TensorFlow's `tf.image.resize` (`resize_bilinear`) |
/// | `ResizeAntialiased<H, W>`   | antialiased resize, `tf.image.resize(antialias=True)`         |
/// | `CenterCrop<H, W>`          | the central H x W pixels (`center_crop`)                      |
/// | `CenterSquareCrop`          | the largest central square (`center_square_crop`)             |
/// | `Normalize`                 | (image - mean[c]) / std[c] per channel, runtime values        |
/// | `OneHot<C>`                 | target = one-hot vector of the label over C classes           |
///
/// Random augmentations are in `data/augment.hpp`; the concept in `data/transform.hpp`.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/example.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/resize.hpp"
#include "typenet/data/transform.hpp"

namespace typenet::data {

/// Divide every pixel by `Divisor` (an integer or floating-point constant, not 0):
/// `Scale<255>` maps 0..255 to [0, 1] as Keras's `x / 255.0`.
template <auto Divisor>
struct Scale {
    static_assert(std::is_arithmetic_v<decltype(Divisor)>, "typenet: Scale<D> needs a number D");
    static_assert(Divisor != 0, "typenet: Scale<0> would divide by zero");
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        const float d = static_cast<float>(Divisor);
        float* p = e.image.data();
        const std::size_t n = e.image.size();
        for (std::size_t i = 0; i < n; ++i) p[i] /= d;
    }
};

/// Resize the image to H x W with TensorFlow's bilinear resize (`resize_bilinear`).
template <std::size_t H, std::size_t W>
struct Resize {
    static_assert(H > 0 && W > 0, "typenet: Resize<H, W> needs a nonzero size");
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        if (e.image.shape()[0] == H && e.image.shape()[1] == W) return;  // already that size: identity
        e.image = resize_bilinear(e.image, H, W);
    }
};

/// Resize the image to H x W with the antialiased filter (`resize_antialiased`).
template <std::size_t H, std::size_t W>
struct ResizeAntialiased {
    static_assert(H > 0 && W > 0, "typenet: ResizeAntialiased<H, W> needs a nonzero size");
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        if (e.image.shape()[0] == H && e.image.shape()[1] == W) return;
        e.image = resize_antialiased(e.image, H, W);
    }
};

/// Keep the central H x W pixels (`center_crop`); shape_error if the image is smaller.
template <std::size_t H, std::size_t W>
struct CenterCrop {
    static_assert(H > 0 && W > 0, "typenet: CenterCrop<H, W> needs a nonzero size");
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        if (e.image.shape()[0] < H || e.image.shape()[1] < W)
            throw shape_error(e.source + ": CenterCrop<" + std::to_string(H) + ", " + std::to_string(W) +
                              "> needs an image at least that large, got " + shape_to_string(shape_of(e.image)));
        e.image = center_crop(e.image, H, W);
    }
};

/// Keep the largest central square (`center_square_crop`).
struct CenterSquareCrop {
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        if (e.image.shape()[0] != e.image.shape()[1]) e.image = center_square_crop(e.image);
    }
};

/// Per-channel standardisation: image[..., c] = (image[..., c] - mean[c]) / std[c].
/// With one mean and one std, every channel uses them.
struct Normalize {
    std::vector<float> mean, stddev;

    /// @throws config_error when the sizes differ, are empty, or a std is not positive.
    Normalize(std::vector<float> mean_, std::vector<float> std_) : mean(std::move(mean_)), stddev(std::move(std_)) {
        if (mean.empty() || mean.size() != stddev.size())
            throw config_error("Normalize: mean and std need the same, nonzero number of values (got " +
                               std::to_string(mean.size()) + " and " + std::to_string(stddev.size()) + ")");
        for (float s : stddev)
            if (!(s > 0.0f)) throw config_error("Normalize: every std must be positive");
    }
    /// Apply to one example; shape_error if the channels do not match the values given.
    void operator()(Example& e, Rng&) const {
        const std::size_t c = e.image.shape()[2];
        if (mean.size() != 1 && mean.size() != c)
            throw shape_error(e.source + ": Normalize has " + std::to_string(mean.size()) + " channel values, the image " +
                              std::to_string(c) + " channels");
        float* p = e.image.data();
        const std::size_t pixels = e.image.size() / (c ? c : 1);
        for (std::size_t i = 0; i < pixels; ++i)
            for (std::size_t k = 0; k < c; ++k) {
                const std::size_t j = mean.size() == 1 ? 0 : k;
                p[i * c + k] = (p[i * c + k] - mean[j]) / stddev[j];
            }
    }
};

/// Fill `target` with the one-hot encoding of `label` over `Classes` classes.
/// @throws config_error naming the example's source when the label is outside 0..Classes-1.
template <std::size_t Classes>
struct OneHot {
    static_assert(Classes > 0, "typenet: OneHot<0> has no class");
    /// Apply to one example.
    void operator()(Example& e, Rng&) const {
        if (e.label < 0 || static_cast<std::size_t>(e.label) >= Classes)
            throw config_error(e.source + ": label " + std::to_string(e.label) + " is outside 0.." +
                               std::to_string(Classes - 1) + " of OneHot<" + std::to_string(Classes) + ">");
        e.target = zeros<1>({Classes});
        e.target(static_cast<std::size_t>(e.label)) = 1.0f;
    }
};

}  // namespace typenet::data
