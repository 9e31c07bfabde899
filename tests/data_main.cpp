// The main() of the test programs that need the shared data (tests/*/*_data.cpp).
// These tests compare against facts of the shared kit's files (the float .npy weights,
// both .tflite models, the original dataset layout, the three photos). Where any of
// them is missing, the program names the first missing path and exits with 77, which
// CTest and meson report as "skipped", never as passed: a partial folder (what
// scripts/download_*.sh give: the quantized model only, the rps/ layout) is skipped
// with the reason, not failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "typenet/core/paths.hpp"

int main(int argc, char** argv) {
    const std::filesystem::path dir = typenet::data_dir();
    std::error_code ec;
    const char* needed[] = {
        "data/rock_paper_scissors/train",
        "data/rock_paper_scissors/test",
        "weights/mobilenet_v2_1.0_224/Conv_weights.npy",
        "weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite",
        "weights/tflite/mobilenet_v2_1.0_224_quant.tflite",
        "weights/imagenet_labels.txt",
        "images/chelsea.png",
        "images/coffee.png",
        "images/grace_hopper.bmp",
    };
    for (const char* sub : needed) {
        if (!std::filesystem::exists(dir / sub, ec)) {
            std::printf("SKIPPED: %s not found: these tests need the whole shared data folder (set TYPENET_DATA to "
                        "the folder holding data/, weights/ and images/)\n",
                        (dir / sub).string().c_str());
            return 77;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
