// A user who compiles stb's implementation in THIS translation unit, including stb
// before typenet: no redefinition, no ODR clash, and neither configuration leaks into
// the other (test_stb_user_after.cpp is the other order, in another translation unit).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "typenet/data/image.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "data/helpers.hpp"

// typenet's private configuration must not leak out...
#if defined(STBI_ONLY_PNG) || defined(STBI_NO_STDIO) || defined(STB_IMAGE_STATIC) || defined(STBI_WRITE_NO_STDIO)
#error "typenet's stb configuration leaked into the user's translation unit"
#endif
// ...and the user's macros must be back as they were.
#if !defined(STB_IMAGE_IMPLEMENTATION) || !defined(STBI_INCLUDE_STB_IMAGE_H) || !defined(INCLUDE_STB_IMAGE_WRITE_H)
#error "typenet's stb header lost the user's macros"
#endif

TEST_CASE("user's stb (implementation, included before typenet) and typenet's coexist") {
    data_test::TempDir dir("stb_before");
    const unsigned char px[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    // The user's global stb, with stdio (which typenet's private copy leaves out).
    const auto path = (dir / "user.png").string();
    REQUIRE(::stbi_write_png(path.c_str(), 2, 2, 3, px, 6) == 1);
    int w = 0, h = 0, c = 0;
    unsigned char* mine = ::stbi_load(path.c_str(), &w, &h, &c, 3);
    REQUIRE(mine != nullptr);
    const typenet::data::Image theirs = typenet::data::read_image(path);
    CHECK(theirs.width == std::size_t(w));
    CHECK(theirs.height == std::size_t(h));
    CHECK(std::equal(theirs.pixels.begin(), theirs.pixels.end(), mine));
    ::stbi_image_free(mine);
    // Two distinct functions: the user's is global, typenet's lives in its namespace.
    CHECK(reinterpret_cast<void*>(&::stbi_load_from_memory) !=
          reinterpret_cast<void*>(&typenet::detail::stb::typenet_stbi_load_from_memory));
}
