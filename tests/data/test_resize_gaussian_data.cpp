// resize_gaussian against the NumPy implementation of tools/mobilenet_v2_reference.py:
// its uint8 inputs (tests/models/fixtures) are the three photos, centre-cropped and
// shrunk to 224 the scikit-image way, then rounded.
#include <doctest/doctest.h>

#include <cmath>

#include "typenet/core/paths.hpp"
#include "typenet/data/image.hpp"
#include "typenet/data/resize.hpp"
#include "typenet/io/npy.hpp"

using namespace typenet;

TEST_CASE("resize_gaussian reproduces the scikit-image-style resize of the reference script") {
    for (const char* photo : {"chelsea.png", "coffee.png", "grace_hopper.bmp"}) {
        const std::string stem = std::string(photo).substr(0, std::string(photo).find('.'));
        const io::NpyArray ref = io::read_npy(std::filesystem::path(TYPENET_SOURCE_DIR) / "tests" / "models" /
                                              "fixtures" / (stem + "_input.npy"));
        const Tensor<3> img = data::center_square_crop(data::to_tensor(data::read_image(data_dir() / "images" / photo)));
        const Tensor<3> out = data::resize_gaussian(img, 224, 224);
        REQUIRE(out.size() == ref.data.size());
        double worst = 0;
        std::size_t off_by_one = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            const double d = std::abs(std::nearbyint(std::clamp(out.data()[i], 0.0f, 255.0f)) - ref.data[i]);
            worst = std::max(worst, d);
            off_by_one += d > 0;
        }
        MESSAGE(photo << ": max difference " << worst << " grey level(s), " << off_by_one << " of " << out.size()
                      << " values differ (rounding at .5)");
        CHECK(worst <= 1.0);
        CHECK(off_by_one < out.size() / 100);
    }
}
