// data::load(..., {.download = true}) (typenet/data/catalog.hpp): the public zips'
// layout fetched from a local file:// "server" (curl; no network needed), unpacked
// in place with nothing left behind, and the failures that must not leave a
// half-unpacked split.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data/helpers.hpp"
#include "io/zip_writer.hpp"
#include "typenet/data/catalog.hpp"
#include "typenet/data/image.hpp"

using namespace typenet;
using namespace typenet::data;
using data_test::TempDir;
namespace fs = std::filesystem;

namespace {

// A 2x2 PNG whose red value identifies it, as bytes.
std::string png_bytes(const fs::path& scratch, std::uint8_t id) {
    Image im = Image::filled(2, 2, 0);
    im.pixels[0] = id;
    write_png(scratch, im);
    std::ifstream in(scratch, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// srv/{rps.zip, rps-test-set.zip} with `per_class` images per class in each.
void make_server(const TempDir& srv, int per_class_train, int per_class_test) {
    std::uint8_t id = 0;
    for (auto [folder, n] : {std::pair{"rps", per_class_train}, std::pair{"rps-test-set", per_class_test}}) {
        std::vector<std::pair<std::string, std::string>> entries = {{std::string(folder) + "/", ""}};
        for (const char* cls : {"rock", "paper", "scissors"})
            for (int i = 0; i < n; ++i)
                entries.emplace_back(std::string(folder) + "/" + cls + "/" + cls + std::to_string(i) + ".png",
                                     png_bytes(srv / "scratch.png", id++));
        io_test::write_stored_zip(srv / (std::string(folder) + ".zip"), entries);
    }
    fs::remove(srv / "scratch.png");
}

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("load with download: fetched, unpacked, loaded; nothing else left; not fetched again") {
    TempDir srv("dl_catalog_srv"), dir("dl_catalog");
    make_server(srv, 2, 1);
    std::ostringstream log;
    LoadOptions opt;
    opt.dir = dir / "data";  // created by the download
    opt.log = &log;
    opt.download = true;
    opt.download_url = "file://" + srv.path.string();
    const LoadedDataset rps = load("rock_paper_scissors", opt);
    CHECK(rps.info.split_size("train") == 6);
    CHECK(rps.info.split_size("test") == 3);
    CHECK(rps["train"].labels() == std::vector<std::int32_t>{0, 0, 1, 1, 2, 2});
    CHECK(to_image(rps["test"].get(1).image).pixels[0] == 7);  // paper0 of the test zip: ids 6, 7, 8
    CHECK(names_in(dir / "data") == std::vector<std::string>{"rps", "rps-test-set"});
    CHECK(log.str().find("unpacking") != std::string::npos);

    // Present now: the server is not asked again.
    opt.download_url = "file:///nowhere";
    CHECK(load("rock_paper_scissors", opt).info.split_size("train") == 6);
}

TEST_CASE("load with download: a missing or damaged zip fails naming it, leaving no partial split") {
    TempDir srv("dl_catalog_srv2"), dir("dl_catalog2");
    make_server(srv, 1, 1);
    fs::remove(srv / "rps-test-set.zip");
    LoadOptions opt;
    opt.dir = dir.path;
    opt.log = nullptr;
    opt.download = true;
    opt.download_url = "file://" + srv.path.string();
    std::string what;
    try {
        (void)load("rock_paper_scissors", opt);
    } catch (const io_error& e) {
        what = e.what();
    }
    CHECK(what.find("rps-test-set.zip") != std::string::npos);
    CHECK(what.find("download failed") != std::string::npos);
    // The train split, complete, stays; nothing else (no zip, no temporary).
    CHECK(names_in(dir.path) == std::vector<std::string>{"rps"});

    // A test zip that is not a zip: format_error naming it, the zip removed, no folder.
    std::ofstream(srv / "rps-test-set.zip") << "<html>proxy login</html>\n";
    CHECK_THROWS_AS((void)load("rock_paper_scissors", opt), format_error);
    CHECK(names_in(dir.path) == std::vector<std::string>{"rps"});

    // Without download: the message says how to get it.
    opt.download = false;
    try {
        (void)load("rock_paper_scissors", opt);
        FAIL("no error");
    } catch (const io_error& e) {
        CHECK(std::string(e.what()).find("LoadOptions::download") != std::string::npos);
    }
}
