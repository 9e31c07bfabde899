// io/download.hpp: download_file through curl on file:// URLs (no network needed),
// extract_zip on archives written by tests/io/zip_writer.hpp, and the weights download's
// refusal of a file that is not a model.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "io/helpers.hpp"
#include "io/zip_writer.hpp"
#include "typenet/io/download.hpp"

using namespace typenet;
using io_test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void put(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}
std::size_t count_files(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) ++n;
    return n;
}
std::string file_url(const fs::path& p) { return "file://" + fs::absolute(p).string(); }
std::string message_of(const auto& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

}  // namespace

TEST_CASE("download_file: a file:// URL lands complete under its name, with no temporary left") {
    TempDir srv("dl_srv"), dst("dl_dst");
    std::string payload(300000, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 251);
    put(srv / "blob.bin", payload);
    std::ostringstream log;
    io::DownloadOptions o;
    o.log = &log;
    io::download_file(file_url(srv / "blob.bin"), dst / "sub/blob.bin", o);
    CHECK(slurp(dst / "sub/blob.bin") == payload);
    CHECK(count_files(dst.path) == 1);
    CHECK(log.str().find("downloading file://") != std::string::npos);
}

TEST_CASE("download_file: a failure names the URL and curl's reason and keeps the previous file") {
    TempDir dst("dl_fail");
    put(dst / "kept.txt", "previous version");
    io::DownloadOptions o;
    o.log = nullptr;
    const std::string url = file_url(dst / "no_such_file");
    const std::string msg = message_of([&] { io::download_file(url, dst / "kept.txt", o); });
    CHECK(msg.find(url) != std::string::npos);
    CHECK(msg.find("could not read the file") != std::string::npos);
    CHECK_THROWS_AS(io::download_file(url, dst / "kept.txt", o), io_error);
    CHECK(slurp(dst / "kept.txt") == "previous version");
    CHECK(count_files(dst.path) == 1);  // no .part, no captured error output
}

TEST_CASE("extract_zip: folders and files as in the archive") {
    TempDir t("dl_zip");
    io_test::write_stored_zip(t / "a.zip", {{"rps/", ""}, {"rps/rock/r1.txt", "rock one"}, {"rps/paper/p1.txt", "paper"},
                                            {"top.txt", std::string(70000, 'x')}});
    io::extract_zip(t / "a.zip", t / "out");
    CHECK(slurp(t / "out/rps/rock/r1.txt") == "rock one");
    CHECK(slurp(t / "out/rps/paper/p1.txt") == "paper");
    CHECK(slurp(t / "out/top.txt") == std::string(70000, 'x'));
    CHECK(count_files(t / "out") == 3);
}

TEST_CASE("extract_zip refuses entries outside its folder and damaged archives, writing nothing") {
    TempDir t("dl_zip_bad");
    for (const char* evil : {"../evil.txt", "ok/../../evil.txt", "/tmp/typenet_evil_abs.txt"}) {
        CAPTURE(evil);
        io_test::write_stored_zip(t / "evil.zip", {{"fine.txt", "fine"}, {evil, "evil"}});
        const std::string msg = message_of([&] { io::extract_zip(t / "evil.zip", t / "out"); });
        CHECK(msg.find("outside the folder") != std::string::npos);
        CHECK(msg.find(evil) != std::string::npos);
        CHECK_FALSE(fs::exists(t / "out"));
        CHECK_FALSE(fs::exists(t / "evil.txt"));
    }
    CHECK_FALSE(fs::exists("/tmp/typenet_evil_abs.txt"));
    // One byte of an entry's data changed: its CRC no longer matches.
    io_test::write_stored_zip(t / "crc.zip", {{"a.txt", "some contents"}});
    std::string bytes = slurp(t / "crc.zip");
    bytes[30 + 5 + 3] ^= 0x20;  // inside "some contents", after the 30-byte header and "a.txt"
    std::ofstream(t / "crc.zip", std::ios::binary) << bytes;
    CHECK_THROWS_AS(io::extract_zip(t / "crc.zip", t / "out"), format_error);
    CHECK_FALSE(fs::exists(t / "out"));
}

TEST_CASE("download_mobilenet_v2_weights: fetches the model and labels once, refuses a page") {
    TempDir srv("dl_wsrv"), bad("dl_wbad"), dst("dl_wdst"), dst2("dl_wdst2");
    std::string model(1100000, '\0');
    model.replace(4, 4, "TFL3");
    put(srv / "tf2_mobilenet_v2_1.0_224_ptq.tflite", model);
    std::string labels = "background\n";
    for (int i = 0; i < 1000; ++i) labels += "class " + std::to_string(i) + "\n";
    put(srv / "imagenet_labels.txt", labels);
    io::DownloadOptions o;
    o.log = nullptr;
    CHECK(io::download_mobilenet_v2_weights(dst.path, o, file_url(srv.path)));
    CHECK(slurp(dst / "tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite") == model);
    CHECK(slurp(dst / "imagenet_labels.txt") == labels);
    CHECK(count_files(dst.path) == 2);
    // There now: nothing fetched (the server is not even asked).
    CHECK_FALSE(io::download_mobilenet_v2_weights(dst.path, o, "file:///nowhere"));

    put(bad / "tf2_mobilenet_v2_1.0_224_ptq.tflite", "<html>proxy login</html>\n");
    const std::string msg = message_of([&] { io::download_mobilenet_v2_weights(dst2.path, o, file_url(bad.path)); });
    CHECK(msg.find("did not give a tflite file (no TFLite identifier") != std::string::npos);
    CHECK(msg.find("tf2_mobilenet_v2_1.0_224_ptq.tflite") != std::string::npos);
    CHECK(count_files(dst2.path) == 0);
}
