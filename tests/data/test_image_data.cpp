// Decoding the real shared images, compared with other decoders (libpng, libjpeg,
// a NumPy BMP reader): tools/image_reference.py printed the sums below.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>

#include "typenet/core/paths.hpp"
#include "typenet/data/image.hpp"

namespace {
struct Ref {
    const char* file;
    std::size_t height, width;
    std::array<std::int64_t, 3> sums;
};
// Output of: TYPENET_DATA=../shared /usr/bin/python3 tools/image_reference.py
const Ref refs[] = {
    {"data/rock_paper_scissors/test/rock/testrock01-00.png", 300, 300, {21259362, 19411524, 18487100}},
    {"data/rock_paper_scissors/test/scissors/testscissors01-10.png", 300, 300, {21211974, 19454041, 18652526}},
    {"data/rock_paper_scissors/train/rock/rock01-000.jpg", 300, 300, {21465275, 20783666, 20635607}},
    {"data/rock_paper_scissors/train/scissors/testscissors01-000.jpg", 300, 300, {20425601, 20034356, 19917456}},
    {"images/chelsea.png", 300, 451, {19980169, 15078438, 11743750}},
    {"images/grace_hopper.bmp", 600, 512, {25361402, 22254061, 26536255}},
};
}  // namespace

TEST_CASE("real images decode like libpng, libjpeg and a plain BMP reader") {
    for (const Ref& r : refs) {
        const std::string file = r.file;
        CAPTURE(file);
        const auto img = typenet::data::read_image(typenet::data_dir() / file);
        REQUIRE(img.height == r.height);
        REQUIRE(img.width == r.width);
        std::array<std::int64_t, 3> sums{};
        for (std::size_t i = 0; i < img.pixels.size(); ++i) sums[i % 3] += img.pixels[i];
        const bool jpeg = file.ends_with(".jpg");
        for (int c = 0; c < 3; ++c) {
            if (jpeg) {
                // JPEG decoders may differ by a level here and there (IDCT rounding):
                // the channel means must agree within 0.05 levels.
                const double mean_diff = double(sums[c] - r.sums[c]) / double(r.height * r.width);
                CHECK(std::abs(mean_diff) < 0.05);
            } else {
                CHECK(sums[c] == r.sums[c]);  // lossless: identical pixels
            }
        }
    }
}
