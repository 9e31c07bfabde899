// A user who includes stb AFTER typenet and compiles its implementation here too
// (as a static copy, since test_stb_user_before.cpp already exports the global one in
// this program): no redefinition, and stb is configured as the user asks, not as
// typenet configured its private copy.
#include "typenet/data/image.hpp"

#define STB_IMAGE_STATIC
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_ONLY_TGA  // a decoder typenet does not compile: must work for the user
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <doctest/doctest.h>

#include <vector>

#if defined(STBI_ONLY_PNG) || defined(STBI_NO_STDIO)
#error "typenet's stb configuration leaked into the user's translation unit"
#endif

TEST_CASE("user's stb (implementation, included after typenet) and typenet's coexist") {
    const unsigned char px[6] = {1, 2, 3, 4, 5, 6};
    std::vector<unsigned char> tga;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<unsigned char>*>(ctx);
        v->insert(v->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    REQUIRE(stbi_write_tga_to_func(sink, &tga, 2, 1, 3, px) == 1);
    int w = 0, h = 0, c = 0;
    unsigned char* back = stbi_load_from_memory(tga.data(), int(tga.size()), &w, &h, &c, 3);
    REQUIRE(back != nullptr);
    CHECK(std::equal(px, px + 6, back));
    stbi_image_free(back);
    // typenet decodes PNG, JPEG, BMP and GIF only, and says so for a TGA.
    CHECK_THROWS_AS((void)typenet::data::decode_image(tga, "x.tga"), typenet::image_error);
}
