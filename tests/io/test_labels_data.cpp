// io/labels.hpp on the real ImageNet label file of the shared data folder.
#include <doctest/doctest.h>

#include "typenet/core/paths.hpp"
#include "typenet/io/labels.hpp"

using namespace typenet;

// Expected values read with `sed -n '1p;284p;969p;1001p' imagenet_labels.txt` and `wc -l`.
TEST_CASE("read_labels: imagenet_labels.txt") {
    const auto labels = io::read_labels(data_dir() / "weights" / "imagenet_labels.txt");
    REQUIRE(labels.size() == 1001);
    CHECK(labels[0] == "background");
    CHECK(labels[1] == "tench, Tinca tinca");
    CHECK(labels[283] == "tiger cat");
    CHECK(labels[968] == "espresso");
    CHECK(labels[1000] == "toilet tissue, toilet paper, bathroom tissue");
}
