// Reading, writing and converting images (typenet/data/image.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <csignal>
#include <string>

#include <sys/resource.h>

#include "data/helpers.hpp"
#include "typenet/core/random.hpp"
#include "typenet/data/image.hpp"

using namespace typenet;
using namespace typenet::data;
using data_test::Bytes;
using data_test::TempDir;

namespace {

Image noise_image(std::size_t w, std::size_t h, std::uint64_t seed) {
    Rng rng(seed);
    Image im = Image::filled(w, h);
    for (auto& p : im.pixels) p = static_cast<std::uint8_t>(rng.below(256));
    return im;
}

// Expected value of colour c with alpha a on white, computed in double.
std::uint8_t on_white(int c, int a) {
    return static_cast<std::uint8_t>(std::lround((c * a + 255.0 * (255 - a)) / 255.0));
}

Bytes stb_encode(int kind, int w, int h, int comp, const std::uint8_t* px) {
    Bytes out;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<Bytes*>(ctx);
        v->insert(v->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
    };
    namespace stb = typenet::detail::stb;
    if (kind == 0) stb::stbi_write_png_to_func(sink, &out, w, h, comp, px, w * comp);
    if (kind == 1) stb::stbi_write_bmp_to_func(sink, &out, w, h, comp, px);
    if (kind == 2) stb::stbi_write_jpg_to_func(sink, &out, w, h, comp, px, 100);
    return out;
}

// The exception thrown by `f`, which must be of type E and name `path`.
template <class E, class F>
std::string error_of(F&& f, const std::string& path) {
    try {
        f();
    } catch (const E& e) {
        CHECK(std::string(e.what()).find(path) != std::string::npos);
        CHECK(e.path() == path);
        return e.reason();
    } catch (const std::exception& e) {
        FAIL("wrong exception type: " << e.what());
        return {};
    }
    FAIL("no exception for " << path);
    return {};
}

}  // namespace

TEST_CASE("PNG write and read round trip is exact") {
    TempDir dir("png");
    for (auto [w, h] : {std::pair{1, 1}, {7, 3}, {64, 33}}) {
        const Image im = noise_image(static_cast<std::size_t>(w), static_cast<std::size_t>(h), 7);
        const auto path = dir / ("round" + std::to_string(w) + ".png");
        write_png(path, im);
        const Image back = read_image(path);
        CHECK(back.width == im.width);
        CHECK(back.height == im.height);
        CHECK(back.pixels == im.pixels);
    }
}

TEST_CASE("every input kind comes out RGB") {
    const std::uint8_t gray[6] = {0, 40, 90, 128, 200, 255};
    SUBCASE("gray PNG: value replicated") {
        const Image im = decode_image(stb_encode(0, 3, 2, 1, gray), "g.png");
        REQUIRE(im.pixels.size() == 18);
        for (int i = 0; i < 6; ++i)
            for (int c = 0; c < 3; ++c) CHECK(im.pixels[3 * i + c] == gray[i]);
    }
    SUBCASE("gray+alpha PNG: composited on white") {
        const std::uint8_t ga[8] = {0, 0, 0, 128, 100, 255, 200, 7};
        const Image im = decode_image(stb_encode(0, 2, 2, 2, ga), "ga.png");
        for (int i = 0; i < 4; ++i)
            for (int c = 0; c < 3; ++c) CHECK(int(im.pixels[3 * i + c]) == int(on_white(ga[2 * i], ga[2 * i + 1])));
    }
    SUBCASE("RGBA PNG: composited on white") {
        const std::uint8_t rgba[8] = {255, 0, 0, 255, 10, 20, 30, 64};
        const Image im = decode_image(stb_encode(0, 2, 1, 4, rgba), "rgba.png");
        const std::vector<std::uint8_t> want = {255, 0, 0, on_white(10, 64), on_white(20, 64), on_white(30, 64)};
        CHECK(im.pixels == want);
    }
    SUBCASE("palette PNG with tRNS, 16-bit PNG") {
        const Bytes plte = {255, 0, 0, 0, 255, 0, 0, 0, 255};
        const Bytes trns = {255, 0};  // index 1 fully transparent
        const Image pal = decode_image(data_test::make_png(3, 1, 8, 3, {0, 1, 2}, 3, {{"PLTE", plte}, {"tRNS", trns}}), "p.png");
        CHECK(pal.pixels == std::vector<std::uint8_t>{255, 0, 0, 255, 255, 255, 0, 0, 255});
        // 16-bit RGB: the high byte is what matters.
        const Image deep = decode_image(data_test::make_png(1, 1, 16, 2, {0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF}, 6), "d.png");
        CHECK(deep.pixels == std::vector<std::uint8_t>{0x12, 0xAB, 0xFF});
    }
    SUBCASE("BMP 24-bit and 32-bit") {
        const std::uint8_t rgb[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252};
        const Image im = decode_image(stb_encode(1, 2, 2, 3, rgb), "x.bmp");
        CHECK(im.pixels == std::vector<std::uint8_t>(rgb, rgb + 12));
        const std::uint8_t rgba[8] = {10, 20, 30, 255, 40, 50, 60, 0};
        const Image im4 = decode_image(stb_encode(1, 2, 1, 4, rgba), "x4.bmp");
        CHECK(im4.pixels == std::vector<std::uint8_t>{10, 20, 30, 255, 255, 255});
    }
    SUBCASE("JPEG color and gray") {
        // A smooth image survives quality-100 JPEG within a few levels.
        std::vector<std::uint8_t> rgb(16 * 16 * 3);
        for (int y = 0; y < 16; ++y)
            for (int x = 0; x < 16; ++x)
                for (int c = 0; c < 3; ++c) rgb[(y * 16 + x) * 3 + c] = static_cast<std::uint8_t>(40 + 8 * x + 4 * y + 20 * c);
        const Image im = decode_image(stb_encode(2, 16, 16, 3, rgb.data()), "c.jpg");
        REQUIRE(im.pixels.size() == rgb.size());
        int worst = 0;
        for (std::size_t i = 0; i < rgb.size(); ++i) worst = std::max(worst, std::abs(int(im.pixels[i]) - int(rgb[i])));
        CHECK(worst <= 6);
        std::vector<std::uint8_t> g(16 * 16);
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<std::uint8_t>(i);
        const Image gi = decode_image(stb_encode(2, 16, 16, 1, g.data()), "g.jpg");
        REQUIRE(gi.pixels.size() == 16 * 16 * 3);
        for (std::size_t i = 0; i < g.size(); ++i) {
            CHECK(gi.pixels[3 * i] == gi.pixels[3 * i + 1]);
            CHECK(gi.pixels[3 * i] == gi.pixels[3 * i + 2]);
        }
    }
    SUBCASE("GIF: palette, transparency on white, first frame only") {
        const Bytes pal = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7};
        const Image im = decode_image(data_test::make_gif(2, 2, {0, 1, 2, 3}, pal), "a.gif");
        CHECK(im.pixels == std::vector<std::uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7});
        const Image tr = decode_image(data_test::make_gif(2, 1, {3, 1}, pal, 3), "t.gif");
        CHECK(tr.pixels == std::vector<std::uint8_t>{255, 255, 255, 0, 255, 0});
        const Image two = decode_image(data_test::make_gif(2, 1, {0, 2}, pal, -1, 1), "two.gif");
        CHECK(two.pixels == std::vector<std::uint8_t>{255, 0, 0, 0, 0, 255});
    }
}

TEST_CASE("bad image files throw typed errors naming the path") {
    TempDir dir("bad");
    const std::uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    auto read = [](const std::filesystem::path& p) { return [p] { (void)read_image(p); }; };
    auto file = [&](const std::string& name, const Bytes& b) {
        const auto p = dir / name;
        data_test::write_bytes(p, b);
        return p;
    };
    auto cut = [](Bytes b, std::size_t keep) {
        b.resize(keep);
        return b;
    };

    SUBCASE("missing file: io_error, not image_error") {
        const auto p = dir / "nope.png";
        try {
            (void)read_image(p);
            FAIL("no exception");
        } catch (const image_error&) {
            FAIL("a missing file is an io_error, not an image_error");
        } catch (const io_error& e) {
            CHECK(e.path() == p.string());
            CHECK(e.reason().find("No such file") != std::string::npos);
        }
        CHECK(error_of<io_error>(read(dir.path), dir.path.string()).find("directory") != std::string::npos);
    }
    SUBCASE("empty file") {
        const auto p = file("empty.png", {});
        CHECK(error_of<image_error>(read(p), p.string()).find("empty") != std::string::npos);
    }
    SUBCASE("not an image") {
        const std::string text = "<!DOCTYPE html> this is a web page saved as .jpg";
        const auto p = file("page.jpg", Bytes(text.begin(), text.end()));
        CHECK(error_of<image_error>(read(p), p.string()).find("not a PNG, JPEG, BMP or GIF") != std::string::npos);
    }
    SUBCASE("truncated files of every format") {
        const Bytes png = stb_encode(0, 2, 2, 3, px), bmp = stb_encode(1, 2, 2, 3, px), jpg = stb_encode(2, 2, 2, 3, px);
        const Bytes gif = data_test::make_gif(2, 2, {0, 1, 2, 3}, Bytes(12, 100));
        for (auto [name, b] : {std::pair{"t.png", png}, {"t.bmp", bmp}, {"t.jpg", jpg}, {"t.gif", gif}}) {
            for (std::size_t keep : {b.size() / 2, b.size() - 2}) {
                CAPTURE(name);
                CAPTURE(keep);
                const auto p = file(name, cut(b, keep));
                const std::string why = error_of<image_error>(read(p), p.string());
                CHECK(why.find("truncated") != std::string::npos);
            }
        }
    }
    SUBCASE("corrupt data") {
        Bytes png = stb_encode(0, 2, 2, 3, px);
        png[png.size() - 20] ^= 0x55;  // inside IDAT: its CRC no longer matches
        const auto p = file("crc.png", png);
        CHECK(error_of<image_error>(read(p), p.string()).find("CRC") != std::string::npos);

        // A JPEG whose Huffman tables are destroyed: the decoder itself refuses it.
        Bytes jpg = stb_encode(2, 8, 8, 3, Bytes(8 * 8 * 3, 77).data());
        for (std::size_t i = 2; i + 4 < jpg.size(); ++i)
            if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4)
                for (std::size_t k = i + 5; k < i + 21; ++k) jpg[k] = 0xFF;
        const auto q = file("huff.jpg", jpg);
        CHECK(error_of<image_error>(read(q), q.string()).find("JPEG") != std::string::npos);
    }
    SUBCASE("zero and absurd sizes in the header") {
        const auto z = file("zero.png", data_test::make_png(0, 5, 8, 2, {}, 0));
        CHECK(error_of<image_error>(read(z), z.string()).find("nonzero") != std::string::npos);
        // 10000 x 10000 = 1e8 pixels > 2^26: refused before anything is decoded.
        const auto big = file("big.png", data_test::make_png(10000, 10000, 8, 2, Bytes(30, 0), 30));
        CHECK(error_of<image_error>(read(big), big.string()).find("more than") != std::string::npos);
        const auto bigj = dir / "big.gif";
        Bytes g = data_test::make_gif(2, 2, {0, 1, 2, 3}, Bytes(12, 0));
        g[6] = g[7] = g[8] = g[9] = 0xFF;  // 65535 x 65535
        data_test::write_bytes(bigj, g);
        CHECK(error_of<image_error>(read(bigj), bigj.string()).find("more than") != std::string::npos);
    }
}

TEST_CASE("damaged bytes never crash the decoder: an image or an image_error") {
    // Random flips, overwrites, cuts and insertions in small files of every format; PNG
    // CRCs are often recomputed so that damage reaches the decoder itself. Run under
    // -fsanitize=address,undefined this is a small fuzzer (it found stb_image 2.27's
    // Huffman table overflow, now refused by inspect_image).
    Rng rng(2024);
    std::vector<Bytes> seeds;
    auto random_pixels = [&](std::size_t n) {
        std::vector<std::uint8_t> v(n);
        for (auto& p : v) p = static_cast<std::uint8_t>(rng.below(256));
        return v;
    };
    for (int comp : {1, 2, 3, 4}) seeds.push_back(stb_encode(0, 5 + comp, 4, comp, random_pixels(std::size_t(5 + comp) * 4 * comp).data()));
    seeds.push_back(stb_encode(1, 7, 3, 3, random_pixels(63).data()));
    seeds.push_back(stb_encode(1, 5, 2, 4, random_pixels(40).data()));
    seeds.push_back(stb_encode(2, 17, 9, 3, random_pixels(17 * 9 * 3).data()));
    seeds.push_back(stb_encode(2, 9, 17, 1, random_pixels(9 * 17).data()));
    seeds.push_back(data_test::make_gif(3, 2, {0, 1, 2, 3, 0, 1}, Bytes(12, 80), 2, 1));
    auto fix_crcs = [](Bytes& b) {
        std::size_t pos = 8;
        while (pos + 12 <= b.size()) {
            const std::uint32_t len = (std::uint32_t(b[pos]) << 24) | (std::uint32_t(b[pos + 1]) << 16) |
                                      (std::uint32_t(b[pos + 2]) << 8) | b[pos + 3];
            if (len > b.size() || pos + 12 + len > b.size()) return;
            const auto c = static_cast<std::uint32_t>(crc32(0L, b.data() + pos + 4, len + 4));
            for (int k = 0; k < 4; ++k) b[pos + 8 + len + std::size_t(k)] = static_cast<std::uint8_t>(c >> (24 - 8 * k));
            pos += 12 + len;
        }
    };
    std::size_t decoded = 0, refused = 0;
    for (int it = 0; it < 3000; ++it) {
        Bytes b = seeds[rng.below(seeds.size())];
        const auto edits = 1 + rng.below(6);
        for (std::uint64_t k = 0; k < edits; ++k) {
            const auto at = static_cast<std::size_t>(rng.below(b.size()));
            switch (rng.below(4)) {
                case 0: b[at] ^= static_cast<std::uint8_t>(1u << rng.below(8)); break;
                case 1: b[at] = static_cast<std::uint8_t>(rng.below(256)); break;
                case 2: b.resize(std::max<std::size_t>(at, 1)); break;
                default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng.below(256)));
            }
        }
        if (b.size() > 8 && b[1] == 'P' && rng.below(4) != 0) fix_crcs(b);
        try {
            const Image im = decode_image(b, "fuzz.bin");
            CHECK(im.pixels.size() == im.width * im.height * 3);
            ++decoded;
        } catch (const image_error& e) {
            CHECK(e.path() == "fuzz.bin");
            ++refused;
        }
    }
    CHECK(decoded + refused == 3000);
    CHECK(refused > 1000);

    // The stb_image 2.27 overflow: a JPEG Huffman table announcing more than 256 codes.
    Bytes jpg = stb_encode(2, 8, 8, 3, random_pixels(192).data());
    for (std::size_t i = 2; i + 21 < jpg.size(); ++i)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) {
            for (std::size_t k = i + 5; k < i + 21; ++k) jpg[k] = 0xFF;
            break;
        }
    try {
        (void)decode_image(jpg, "huff.jpg");
        FAIL("accepted");
    } catch (const image_error& e) {
        CHECK(e.reason().find("Huffman") != std::string::npos);
    }
}

TEST_CASE("write_png is atomic: a failed write leaves the old file intact") {
    TempDir dir("atomic");
    const auto path = dir / "plot.png";
    const Image old = noise_image(4, 4, 1);
    write_png(path, old);
    const Bytes before = data_test::read_bytes(path);

    // Make every write beyond 1 KiB fail (EFBIG), as a full disk would.
    const Image big = noise_image(128, 128, 2);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit saved{};
    getrlimit(RLIMIT_FSIZE, &saved);
    rlimit small = saved;
    small.rlim_cur = 1024;
    setrlimit(RLIMIT_FSIZE, &small);
    std::string reason;
    try {
        write_png(path, big);
    } catch (const io_error& e) {
        reason = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);

    CHECK(reason.find(path.string()) != std::string::npos);
    CHECK(data_test::read_bytes(path) == before);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
    CHECK(files == 1);  // no temporary file left behind

    const auto nowhere = dir / "no_such_folder" / "x.png";
    try {
        write_png(nowhere, old);
        FAIL("no error");
    } catch (const io_error& e) {
        CHECK(e.path() == nowhere.string());
    }
    Image broken = old;
    broken.pixels.resize(broken.pixels.size() - 1);
    CHECK_THROWS_AS(write_png(path, broken), shape_error);
    CHECK(data_test::read_bytes(path) == before);
}

TEST_CASE("tensor conversions") {
    const Image im = noise_image(5, 3, 3);
    const Tensor<3> t = to_tensor(im);
    REQUIRE(t.shape()[0] == 3);
    REQUIRE(t.shape()[1] == 5);
    REQUIRE(t.shape()[2] == 3);
    CHECK(t(2, 4, 1) == float(im.pixels[(2 * 5 + 4) * 3 + 1]));
    CHECK(to_image(t) == im);

    Tensor<3> unit = t / 255.0f;
    CHECK(to_image(unit, 255.0f) == im);

    Tensor<3> odd(Shape<3>{1, 4, 3});
    const float vals[12] = {-3.0f, 0.49f, 0.5f, 254.5f, 300.0f, NAN, 1.5f, 2.5f, 127.4f, 127.6f, 255.0f, 0.0f};
    std::copy(vals, vals + 12, odd.data());
    const Image r = to_image(odd);
    CHECK(r.pixels == std::vector<std::uint8_t>{0, 0, 1, 255, 255, 0, 2, 3, 127, 128, 255, 0});

    Tensor<3> gray(Shape<3>{1, 2, 1});
    gray(0, 0, 0) = 10.0f;
    gray(0, 1, 0) = 20.0f;
    CHECK(to_image(gray).pixels == std::vector<std::uint8_t>{10, 10, 10, 20, 20, 20});
    CHECK_THROWS_AS(to_image(Tensor<3>(Shape<3>{2, 2, 4})), shape_error);
}
