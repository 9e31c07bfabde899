// Input pipeline throughput on the real rock-paper-scissors images: decode (PNG/JPEG),
// scale to [0, 1], resize to 224x224 (bilinear), batch by 64, over all 2,892 images, on
// 1 and 2 threads. Prints one JSON object.
//
//   cmake -S . -B /tmp/b -G Ninja -DTYPENET_BUILD_BENCHMARKS=ON && cmake --build /tmp/b --target bench_data
//   TYPENET_DATA=../shared /tmp/b/benchmarks/bench_data [repeats]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "typenet/data/catalog.hpp"
#include "typenet/data/transforms.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of `repeats` epochs of `bd`: seconds, and a checksum so nothing is optimised away.
double best_epoch(const BatchedDataset& bd, int repeats, double& checksum) {
    double best = 1e300;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        double sum = 0.0;
        std::size_t n = 0;
        for (const Batch& b : bd) {
            sum += b.images(0, 112, 112, 1);
            n += b.size();
        }
        best = std::min(best, seconds_since(t0));
        checksum = sum + static_cast<double>(n);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
    LoadedDataset rps;
    try {
        rps = load("rock_paper_scissors");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_data: %s\n", e.what());
        return 1;
    }
    const Dataset all = rps["train"].concatenate(rps["test"]);
    const std::size_t images = all.size();

    // Warm the page cache (read every file once), so that the timings measure decoding.
    for (const auto& path : all.sources()) (void)io::read_file(path);

    // Decoding alone, one thread.
    double decode_s = 0.0;
    {
        const auto t0 = std::chrono::steady_clock::now();
        std::size_t px = 0;
        for (const auto& path : all.sources()) px += read_image(path).pixels.size();
        decode_s = seconds_since(t0);
        if (px == 0) return 1;
    }

    const BatchedDataset pipeline = all.map(Compose<Scale<255>, Resize<224, 224>>{}).batch(64);
    std::string results;
    double checksum = 0.0;
    for (int threads : {1, 2}) {
        const double s = best_epoch(pipeline.parallel(threads), repeats, checksum);
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s\n    {\"threads\": %d, \"seconds\": %.3f, \"images_per_second\": %.1f}",
                      results.empty() ? "" : ",", threads, s, static_cast<double>(images) / s);
        results += buf;
    }
    std::printf(
        "{\n  \"benchmark\": \"data_pipeline\",\n  \"what\": \"decode + Scale<255> + Resize<224, 224> + batch(64), one epoch, "
        "best of %d\",\n  \"images\": %zu,\n  \"batch\": 64,\n  \"decode_only_1_thread_images_per_second\": %.1f,\n"
        "  \"results\": [%s\n  ],\n  \"checksum\": %.3f\n}\n",
        repeats, images, static_cast<double>(images) / decode_s, results.c_str(), checksum);
    return 0;
}
