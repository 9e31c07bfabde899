// Inputs that fuzzing (scripts/fuzz.sh, target `image`) found to crash, hang or fool the image
// reader, kept in tests/fuzz/regressions/image/: each must now give the typed error below.
#include <doctest/doctest.h>

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>

#include "typenet/data/image.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {

const fs::path regressions = fs::path(TYPENET_SOURCE_DIR) / "tests" / "fuzz" / "regressions" / "image";

struct Case {
    const char* file;
    const char* reason;  // a part of image_error::reason()
};

// bmp_compression_negative.bmp (136 bytes): a V4 BMP header whose compression field is
// 0xFF000003; stb_image reads it as a negative int and decoded 2 x 8388609 pixels made up
// past the end of the file, because typenet's size check skipped "compressed" BMPs.
constexpr Case cases[] = {
    {"bmp_compression_negative.bmp", "unsupported BMP: compression type 4278190083"},
};

}  // namespace

TEST_CASE("fuzz regressions: every image input gives its image_error") {
    for (const Case& c : cases) {
        CAPTURE(c.file);
        const fs::path p = regressions / c.file;
        REQUIRE(fs::exists(p));
        CHECK_THROWS_WITH_AS(data::read_image(p), doctest::Contains(c.reason), image_error);
        CHECK_THROWS_WITH_AS(data::read_image_header(p), doctest::Contains(c.reason), image_error);
    }
}

TEST_CASE("fuzz regressions: every image input in the folder has a case here") {
    std::set<std::string> listed;
    for (const Case& c : cases) listed.insert(c.file);
    for (const auto& e : fs::directory_iterator(regressions)) {
        CAPTURE(e.path().filename().string());
        CHECK(listed.count(e.path().filename().string()) == 1);
    }
}
