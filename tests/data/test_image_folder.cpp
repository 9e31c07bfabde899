// Class folders, splits and the catalogue's search (typenet/data/image_folder.hpp,
// catalog.hpp) on small folders written by the test.
#include <doctest/doctest.h>

#include <set>
#include <sstream>
#include <string>

#include "data/helpers.hpp"
#include "typenet/data/catalog.hpp"
#include "typenet/data/image_folder.hpp"
#include "typenet/data/transforms.hpp"

using namespace typenet;
using namespace typenet::data;
using data_test::Bytes;
using data_test::TempDir;

namespace {

// A 2x2 image whose red value identifies it.
void put_image(const std::filesystem::path& p, std::uint8_t id) {
    std::filesystem::create_directories(p.parent_path());
    Image im = Image::filled(2, 2, 0);
    im.pixels[0] = id;
    write_png(p, im);
}

// root/{b_cls: 3 images, a_cls: 2 images (one in a sub-folder, one .PNG), c_cls: 1}
void make_tree(const std::filesystem::path& root) {
    put_image(root / "b_cls" / "1.png", 10);
    put_image(root / "b_cls" / "0.png", 11);
    put_image(root / "b_cls" / "a_cls_lookalike.png", 12);  // the name says a_cls: the folder wins
    put_image(root / "a_cls" / "x.PNG", 20);
    put_image(root / "a_cls" / "deeper" / "y.png", 21);
    put_image(root / "c_cls" / "z.png", 30);
    data_test::write_bytes(root / "a_cls" / "notes.txt", Bytes{'h', 'i'});
    data_test::write_bytes(root / "a_cls" / ".hidden.png", Bytes{'x'});
    std::filesystem::create_directories(root / ".git");
}

std::string filename(const std::string& path) { return std::filesystem::path(path).filename().string(); }

template <class E, class F>
std::string error_of(F&& f, const std::string& path) {
    try {
        f();
    } catch (const E& e) {
        CHECK(std::string(e.what()).find(path) != std::string::npos);
        return e.what();
    } catch (const std::exception& e) {
        FAIL("wrong exception type: " << e.what());
        return {};
    }
    FAIL("no exception for " << path);
    return {};
}

}  // namespace

TEST_CASE("classes, labels from folders, sorted files, extensions") {
    TempDir dir("folder");
    make_tree(dir.path);
    const ImageFolder f(dir.path);
    CHECK(f.class_names() == std::vector<std::string>{"a_cls", "b_cls", "c_cls"});
    CHECK(f.size() == 6);
    CHECK(f.class_counts() == std::vector<std::size_t>{2, 3, 1});
    REQUIRE(f.ignored().size() == 1);
    CHECK(f.ignored()[0].filename() == "notes.txt");
    std::vector<std::string> names;
    for (const auto& p : f.files()) names.push_back(p.filename().string());
    CHECK(names == std::vector<std::string>{"y.png", "x.PNG", "0.png", "1.png", "a_cls_lookalike.png", "z.png"});
    CHECK(f.labels() == std::vector<std::int32_t>{0, 0, 1, 1, 1, 2});
    // Decoded examples carry the folder's label.
    const Example e = f.dataset().get(4);
    CHECK(e.label == 1);
    CHECK(e.image(0, 0, 0) == 12.0f);

    ImageFolderOptions o;
    o.class_names = {"c_cls", "a_cls"};
    const ImageFolder g(dir.path, o);
    CHECK(g.labels() == std::vector<std::int32_t>{0, 1, 1});
    o.class_names = {"a_cls", "a_cls"};
    CHECK_THROWS_AS(ImageFolder(dir.path, o), config_error);
}

TEST_CASE("seeded splits: disjoint, complete, reproducible") {
    TempDir dir("split");
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 10; ++i)
            put_image(dir / (std::string("k") += std::to_string(c)) / (std::to_string(i) + ".png"), static_cast<std::uint8_t>(c * 10 + i));
    const ImageFolder f(dir.path);
    const Splits s = f.split(Fractions{0.6, 0.2, 0.2}, 1);
    CHECK(s.train.size() == 18);
    CHECK(s.validation.size() == 6);
    CHECK(s.test.size() == 6);
    std::set<std::string> all;
    for (const Dataset* d : {&s.train, &s.validation, &s.test})
        for (const auto& src : d->sources()) CHECK(all.insert(src).second);
    CHECK(all.size() == 30);
    CHECK(f.split(Fractions{0.6, 0.2, 0.2}, 1).test.sources() == s.test.sources());
    CHECK(f.split(Fractions{0.6, 0.2, 0.2}, 2).test.sources() != s.test.sources());
    // Labels still follow the folders.
    const auto src = s.validation.sources();
    const auto lab = s.validation.labels();
    for (std::size_t i = 0; i < src.size(); ++i)
        CHECK(std::filesystem::path(src[i]).parent_path().filename().string() == "k" + std::to_string(lab[i]));

    const Splits c = f.split(Counts{5, 4, 3}, 9);
    CHECK(c.train.size() == 5);
    CHECK(c.validation.size() == 4);
    CHECK(c.test.size() == 3);
    CHECK_THROWS_AS(f.split(Counts{20, 10, 1}), config_error);
    CHECK_THROWS_AS(f.split(Fractions{0.5, 0.2, 0.2}), config_error);
}

TEST_CASE("bad folders and files: typed errors naming the path") {
    TempDir dir("badfolder");
    SUBCASE("missing root, root is a file") {
        const auto missing = dir / "nope";
        CHECK(error_of<io_error>([&] { ImageFolder f(missing); }, missing.string()).find("no such folder") !=
              std::string::npos);
        data_test::write_bytes(dir / "file", Bytes{1});
        error_of<io_error>([&] { ImageFolder f(dir / "file"); }, (dir / "file").string());
    }
    SUBCASE("no class folder, empty class folder, missing named class") {
        error_of<format_error>([&] { ImageFolder f(dir.path); }, dir.path.string());
        put_image(dir / "full" / "a.png", 1);
        std::filesystem::create_directories(dir / "empty");
        data_test::write_bytes(dir / "empty" / "readme.txt", Bytes{'x'});
        const std::string what = error_of<format_error>([&] { ImageFolder f(dir.path); }, (dir / "empty").string());
        CHECK(what.find("no image files") != std::string::npos);
        ImageFolderOptions o;
        o.class_names = {"full", "absent"};
        error_of<io_error>([&] { ImageFolder f(dir.path, o); }, (dir / "absent").string());
    }
    SUBCASE("bad images: found by the check, or when decoded") {
        put_image(dir / "ok" / "good.png", 1);
        Bytes png = data_test::read_bytes(dir / "ok" / "good.png");
        const auto truncated = dir / "ok" / "truncated.png";
        data_test::write_bytes(truncated, Bytes(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2)));
        ImageFolderOptions o;
        o.check = Check::header;
        error_of<image_error>([&] { ImageFolder f(dir.path, o); }, truncated.string());
        // Without a check, the folder lists it and decoding it names it, also from the prefetch thread.
        const ImageFolder lazy(dir.path);
        CHECK(lazy.size() == 2);
        error_of<image_error>(
            [&] {
                for (const Batch& b : lazy.dataset().batch(2).prefetch(1)) (void)b;
            },
            truncated.string());
    }
    SUBCASE("not an image, empty, zero and absurd sizes") {
        put_image(dir / "k" / "good.png", 1);
        const auto text = dir / "k" / "page.jpg";
        data_test::write_bytes(text, Bytes{'<', 'h', 't', 'm', 'l', '>'});
        ImageFolderOptions o;
        o.check = Check::decode;
        error_of<image_error>([&] { ImageFolder f(dir.path, o); }, text.string());
        std::filesystem::remove(text);
        const auto empty = dir / "k" / "empty.gif";
        data_test::write_bytes(empty, {});
        error_of<image_error>([&] { ImageFolder f(dir.path, o); }, empty.string());
        std::filesystem::remove(empty);
        const auto zero = dir / "k" / "zero.png";
        data_test::write_bytes(zero, data_test::make_png(0, 3, 8, 2, {}, 0));
        error_of<image_error>([&] { ImageFolder f(dir.path, o); }, zero.string());
        std::filesystem::remove(zero);
        const auto huge = dir / "k" / "huge.png";
        data_test::write_bytes(huge, data_test::make_png(20000, 20000, 8, 0, Bytes(20, 0), 20));
        error_of<image_error>([&] { ImageFolder f(dir.path, o); }, huge.string());
    }
}

TEST_CASE("on_error = skip: one warning per file, a count, no bad file in any batch") {
    TempDir dir("skip");
    for (int i = 0; i < 5; ++i) put_image(dir / "a" / (std::to_string(i) + ".png"), static_cast<std::uint8_t>(i));
    put_image(dir / "b" / "0.png", 50);
    data_test::write_bytes(dir / "a" / "bad1.png", Bytes{'n', 'o'});
    data_test::write_bytes(dir / "b" / "bad2.jpg", {});
    std::filesystem::create_directories(dir / "c");
    std::ostringstream log;
    ImageFolderOptions o;
    o.on_error = OnError::skip;
    o.log = &log;
    const ImageFolder f(dir.path, o);
    CHECK(f.size() == 6);
    CHECK(f.skipped().size() == 2);
    CHECK(f.class_counts() == std::vector<std::size_t>{5, 1, 0});
    const std::string text = log.str();
    CHECK(text.find("bad1.png") != std::string::npos);
    CHECK(text.find("bad2.jpg") != std::string::npos);
    CHECK(text.find("skipped 2 of 8 files") != std::string::npos);
    CHECK(text.find((dir / "c").string()) != std::string::npos);  // the empty class is reported
    std::size_t seen = 0;
    for (const Batch& b : f.dataset().batch(4, true)) {
        CHECK(b.size() == 4);
        for (const auto& s : b.sources) CHECK(s.find("bad") == std::string::npos);
        seen += b.size();
    }
    CHECK(seen == 4);
}

TEST_CASE("catalogue: unknown name, missing data, zip layout") {
    CHECK_THROWS_AS(load("mnist"), config_error);
    TempDir dir("catalog");
    LoadOptions opt;
    opt.dir = dir.path;
    const std::string what = error_of<io_error>([&] { (void)load("rock_paper_scissors", opt); }, dir.path.string());
    CHECK(what.find("download_data.sh") != std::string::npos);
    CHECK(what.find("rps-test-set") != std::string::npos);

    // The public zips' layout; label order rock, paper, scissors (not alphabetical).
    std::uint8_t id = 0;
    for (const char* split : {"rps", "rps-test-set"})
        for (const char* cls : {"paper", "rock", "scissors"}) put_image(dir / split / cls / "a.png", id++);
    const LoadedDataset rps = load("rock_paper_scissors", opt);
    CHECK(rps.info.split_size("train") == 3);
    CHECK(rps.info.split_size("test") == 3);
    CHECK(rps["train"].labels() == std::vector<std::int32_t>{0, 1, 2});
    CHECK(filename(rps["train"].sources()[0]) == "a.png");
    CHECK(std::filesystem::path(rps["train"].sources()[0]).parent_path().filename() == "rock");
    CHECK_THROWS_AS(rps["validation"], config_error);
    std::ostringstream os;
    os << rps.info;
    const std::string info = os.str();
    for (const char* want : {"name='rock_paper_scissors'", "full_name='rock_paper_scissors/3.0.0'",
                             "Image(shape=(300, 300, 3), dtype=uint8)", "num_classes=3",
                             "label_names=['rock', 'paper', 'scissors']", "'test': <SplitInfo num_examples=3>",
                             "Laurence Moroney", "license='CC BY 2.0'", "homepage="})
        CHECK_MESSAGE(info.find(want) != std::string::npos, want);
}
