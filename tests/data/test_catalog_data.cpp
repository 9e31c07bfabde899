// The real rock-paper-scissors data: counts, labels, the reference re-split and the
// preprocessing of steps 1-5 of docs/reference-workflow (decoding only a few images).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>

#include "typenet/core/paths.hpp"
#include "typenet/data/catalog.hpp"
#include "typenet/data/transforms.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

const LoadedDataset& rps() {
    static const LoadedDataset d = load("rock_paper_scissors");
    return d;
}

std::string folder_of(const std::string& path) { return std::filesystem::path(path).parent_path().filename().string(); }

}  // namespace

TEST_CASE("840 images per class in train, 124 in test, labels from folders") {
    const auto& d = rps();
    CHECK(d.info.split_size("train") == 2520);
    CHECK(d.info.split_size("test") == 372);
    for (const char* split : {"train", "test"}) {
        const std::size_t per = std::string(split) == "train" ? 840 : 124;
        const std::vector<std::int32_t> labels = d[split].labels();
        const std::vector<std::string> sources = d[split].sources();
        std::size_t count[3] = {0, 0, 0};
        for (std::size_t i = 0; i < labels.size(); ++i) {
            REQUIRE((labels[i] >= 0 && labels[i] < 3));
            ++count[labels[i]];
            CHECK(folder_of(sources[i]) == d.info.label_names[static_cast<std::size_t>(labels[i])]);
        }
        CHECK(count[0] == per);
        CHECK(count[1] == per);
        CHECK(count[2] == per);
    }
    // The 360 training scissors named "testscissors..." are scissors (2), whatever their name says.
    std::size_t named_test = 0;
    const auto labels = d["train"].labels();
    const auto sources = d["train"].sources();
    for (std::size_t i = 0; i < sources.size(); ++i)
        if (std::filesystem::path(sources[i]).filename().string().rfind("testscissors", 0) == 0) {
            ++named_test;
            CHECK(labels[i] == 2);
        }
    CHECK(named_test == 360);

    std::ostringstream os;
    os << d.info;
    CHECK(os.str().find("'train': <SplitInfo num_examples=2520>") != std::string::npos);
    CHECK(os.str().find("Laurence Moroney") != std::string::npos);
}

TEST_CASE("the reference re-split: 600 / 400 / 1892, disjoint, reproducible") {
    auto split = [](std::uint64_t seed) {
        const Dataset all = rps()["train"].concatenate(rps()["test"]).shuffle(3000, seed, false);
        return std::array<Dataset, 3>{all.take(600), all.skip(600).take(400), all.skip(1000)};
    };
    const auto s = split(42);
    CHECK(s[0].size() == 600);
    CHECK(s[1].size() == 400);
    CHECK(s[2].size() == 1892);
    std::set<std::string> seen;
    for (const auto& d : s)
        for (const auto& src : d.sources()) CHECK(seen.insert(src).second);
    CHECK(seen.size() == 2892);
    CHECK(split(42)[1].sources() == s[1].sources());
    CHECK(s[1].sources(0) == s[1].sources(3));  // the same every epoch
    CHECK(split(7)[1].sources() != s[1].sources());
}

TEST_CASE("preprocessing and batching a few real images") {
    using Preprocess = Compose<Scale<255>, Resize<224, 224>, OneHot<3>>;
    const Dataset few = rps()["test"].shuffle(372, 1, false).take(5).map(Preprocess{});
    std::size_t n = 0;
    for (const Batch& b : few.batch(4).prefetch(1)) {
        CHECK(b.images.shape()[1] == 224);
        CHECK(b.images.shape()[2] == 224);
        CHECK(b.images.shape()[3] == 3);
        CHECK(b.targets.shape()[1] == 3);
        const auto [lo, hi] = std::minmax_element(b.images.begin(), b.images.end());
        CHECK(*lo >= 0.0f);
        CHECK(*hi <= 1.0f);
        CHECK(*hi > 0.5f);  // not a black image
        for (std::size_t i = 0; i < b.size(); ++i) CHECK(b.targets(i, static_cast<std::size_t>(b.labels[i])) == 1.0f);
        n += b.size();
    }
    CHECK(n == 5);
}
