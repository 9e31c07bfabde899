// classify_image: the five most likely ImageNet classes of photos, with the
// pretrained MobileNetV2.
//
//     classify_image [--weights DIR] [--json] [--no-download] IMAGE...
//
// DIR is laid out like $TYPENET_DATA/weights (default): the TF-slim .npy backbone and
// the classifier dequantized from the PTQ .tflite. Each image is centre-cropped to a
// square and resized to 224x224 with an antialiased (Gaussian) filter, as the table
// in weights/README.md was made. An image that cannot be read gets a message naming
// it and the exit status 1, and the other images are still classified. Without weights
// in DIR, Google's quantized model and the labels are downloaded there (not with
// --no-download).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "typenet/data/image.hpp"
#include "typenet/data/resize.hpp"
#include "typenet/io/labels.hpp"
#include "typenet/io/mobilenet_v2_weights.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
            continue;
        }
        o += c;
    }
    return o;
}

int usage() {
    std::fprintf(stderr, "usage: classify_image [--weights DIR] [--json] [--no-download] IMAGE...\n");
    return 2;
}
}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path weights = data_dir() / "weights";
    bool json = false, download = true;
    std::vector<std::string> images;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--weights") {
            if (i + 1 >= argc) return usage();
            weights = argv[++i];
        } else if (a == "--json") {
            json = true;
        } else if (a == "--no-download") {
            download = false;
        } else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "classify_image: unknown option %s\n", a.c_str());
            return usage();
        } else {
            images.push_back(a);
        }
    }
    if (images.empty()) return usage();

    models::MobileNetV2<true, Softmax> model;
    std::vector<std::string> labels;
    try {
        model.build(224);
        // Missing weights: Google's quantized model and the labels, fetched once.
        if (download) io::download_mobilenet_v2_weights(weights);
        const auto t0 = std::chrono::steady_clock::now();
        io::load_mobilenet_v2_imagenet(model, weights);
        labels = io::read_labels(weights / "imagenet_labels.txt");
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (!json) std::printf("loaded MobileNetV2 ImageNet weights from %s in %.0f ms\n", weights.c_str(), ms);
        if (labels.size() != 1001)
            throw format_error((weights / "imagenet_labels.txt").string(),
                               "expected 1001 labels, found " + std::to_string(labels.size()));
    } catch (const error& e) {
        std::fprintf(stderr, "classify_image: %s\n", e.what());
        return 1;
    }

    int status = 0;
    bool first = true;
    if (json) std::printf("[");
    for (const std::string& path : images) {
        Tensor<4> x({1, 224, 224, 3});
        try {
            const Tensor<3> img = data::resize_gaussian(data::center_square_crop(data::to_tensor(data::read_image(path))), 224, 224);
            for (std::size_t i = 0; i < img.size(); ++i) x.data()[i] = img.data()[i] / 255.0f;
        } catch (const error& e) {
            std::fprintf(stderr, "classify_image: %s\n", e.what());
            status = 1;
            continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        const Tensor<2>& p = model.forward(x);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::vector<std::size_t> idx(p.shape()[1]);
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(), [&](auto a, auto b) { return p(0, a) > p(0, b); });
        if (json) {
            std::printf("%s\n  {\"image\": \"%s\", \"top5\": [", first ? "" : ",", json_escape(path).c_str());
            for (int k = 0; k < 5; ++k)
                std::printf("%s{\"class\": %zu, \"label\": \"%s\", \"probability\": %.6f}", k ? ", " : "", idx[k],
                            json_escape(labels[idx[k]]).c_str(), p(0, idx[k]));
            std::printf("]}");
        } else {
            std::printf("%s (%.1f ms)\n", path.c_str(), ms);
            for (int k = 0; k < 5; ++k)
                std::printf("  %4zu %-40s %.3f\n", idx[k], labels[idx[k]].c_str(), p(0, idx[k]));
        }
        first = false;
    }
    if (json) std::printf("%s]\n", first ? "" : "\n");
    return status;
}
