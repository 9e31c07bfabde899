// io/npy.hpp on the real MobileNetV2 weights of the shared data folder.
#include <doctest/doctest.h>

#include <filesystem>
#include <numeric>
#include <vector>

#include "typenet/core/paths.hpp"
#include "typenet/io/npy.hpp"

namespace fs = std::filesystem;
using namespace typenet;

namespace {
const fs::path weights = data_dir() / "weights" / "mobilenet_v2_1.0_224";
}

// Reference values printed by NumPy 1.24 (Debian python3-numpy), from the weights folder:
//   /usr/bin/python3 -c "import numpy as np; w = np.load('Conv_weights.npy'); print(w.shape,
//       repr(w[0,0,0,0]), repr(w[2,1,0,31]), repr(w[1,2,2,5]), float(w.astype(np.float64).sum()))"
// and likewise for the other files below.
TEST_CASE("read_npy: MobileNetV2 Conv_weights") {
    const auto w = io::read_npy(weights / "Conv_weights.npy");
    CHECK(w.dtype == "<f4");
    REQUIRE(w.shape == std::vector<std::size_t>{3, 3, 3, 32});
    auto at = [&](std::size_t h, std::size_t x, std::size_t i, std::size_t o) {
        return w.data[((h * 3 + x) * 3 + i) * 32 + o];
    };
    CHECK(at(0, 0, 0, 0) == -0.17023328f);
    CHECK(at(2, 1, 0, 31) == -0.002937615f);
    CHECK(at(1, 2, 2, 5) == 0.012756824f);
    CHECK(std::accumulate(w.data.begin(), w.data.end(), 0.0) == doctest::Approx(-4.411272927502068).epsilon(1e-9));
}

TEST_CASE("read_npy: depthwise, batch norm, 1x1 and classifier bias tensors") {
    const auto d = io::read_npy(weights / "expanded_conv_depthwise_depthwise_weights.npy");
    REQUIRE(d.shape == std::vector<std::size_t>{3, 3, 32, 1});
    CHECK(d.data[(1 * 3 + 1) * 32 + 7] == 1.3959385f);  // d[1,1,7,0]
    const auto v = io::read_npy(weights / "expanded_conv_16_project_BatchNorm_moving_variance.npy");
    REQUIRE(v.shape == std::vector<std::size_t>{320});
    CHECK(v.data.front() == 0.54193574f);
    CHECK(v.data.back() == 0.24427514f);
    const auto c = io::read_npy(weights / "Conv_1_weights.npy");
    REQUIRE(c.shape == std::vector<std::size_t>{1, 1, 320, 1280});
    CHECK(c.data.back() == -0.0009381141f);  // c[0,0,319,1279]
    const auto b = io::read_npy(weights / "Logits_Conv2d_1c_1x1_biases.npy");
    REQUIRE(b.shape == std::vector<std::size_t>{1001});
    CHECK(b.data[0] == -0.28278166f);
    CHECK(b.data[1000] == -0.17174028f);
    CHECK(std::accumulate(b.data.begin(), b.data.end(), 0.0) == doctest::Approx(-0.03759832201467361).epsilon(1e-9));
}

// NumPy: 261 files, 2258985 values in all, 52 of rank 4 and 209 of rank 1.
TEST_CASE("read_npy reads all 261 weight files") {
    std::size_t files = 0, values = 0, rank4 = 0, rank1 = 0;
    for (const auto& e : fs::directory_iterator(weights)) {
        if (e.path().extension() != ".npy") continue;
        CAPTURE(e.path().string());
        const auto a = io::read_npy(e.path());
        CHECK(a.dtype == "<f4");
        ++files;
        values += a.size();
        rank4 += a.shape.size() == 4;
        rank1 += a.shape.size() == 1;
    }
    CHECK(files == 261);
    CHECK(values == 2258985);
    CHECK(rank4 == 52);
    CHECK(rank1 == 209);
}
