// The main() of the test programs that need the shared data (tests/*/*_data.cpp).
// Where the data folder is missing, the program says which path it looked for and
// exits with 77, which CTest and meson report as "skipped", never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "typenet/core/paths.hpp"

int main(int argc, char** argv) {
    const std::filesystem::path dir = typenet::data_dir();
    std::error_code ec;
    for (const char* sub : {"data", "weights", "images"}) {
        if (!std::filesystem::is_directory(dir / sub, ec)) {
            std::printf("SKIPPED: shared data folder %s not found (set TYPENET_DATA to the folder holding data/, weights/ and images/)\n",
                        (dir / sub).string().c_str());
            return 77;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
