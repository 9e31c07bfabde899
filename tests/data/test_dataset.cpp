// Lazy datasets, shuffling, caching, batching, parallelism and prefetch
// (typenet/data/dataset.hpp), on small synthetic examples.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <string>
#include <thread>

#include "typenet/data/augment.hpp"
#include "typenet/data/dataset.hpp"
#include "typenet/data/transforms.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

// Example i: a 3x2x3 image filled with i, label i % 3, source "ex<i>".
Example make(std::size_t i) {
    Example e;
    e.image = Tensor<3>(Shape<3>{3, 2, 3});
    e.image.fill(static_cast<float>(i));
    e.label = static_cast<std::int32_t>(i % 3);
    e.source = "ex" + std::to_string(i);
    return e;
}

Dataset numbers(std::size_t n, std::atomic<int>* calls = nullptr) {
    return Dataset::from_generator(n, [calls](std::size_t i) {
        if (calls) ++*calls;
        return make(i);
    });
}

// The identity of each example of one epoch, by iterating.
std::vector<int> ids(const Dataset& ds) {
    std::vector<int> out;
    for (const Example& e : ds) out.push_back(static_cast<int>(e.image(0, 0, 0)));
    return out;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].images != b[i].images || a[i].targets != b[i].targets || a[i].labels != b[i].labels ||
            a[i].sources != b[i].sources)
            return false;
    }
    return true;
}

std::vector<Batch> collect(const BatchedDataset& bd) {
    std::vector<Batch> out;
    for (const Batch& b : bd) out.push_back(b);
    return out;
}

}  // namespace

TEST_CASE("take, skip, concatenate and size without computing anything") {
    std::atomic<int> calls{0};
    const Dataset a = numbers(10, &calls), b = numbers(4, &calls);
    const Dataset c = a.concatenate(b).skip(3).take(8);
    CHECK(c.size() == 8);
    CHECK(a.take(100).size() == 10);
    CHECK(a.skip(100).size() == 0);
    CHECK(calls == 0);
    CHECK(ids(c) == std::vector<int>{3, 4, 5, 6, 7, 8, 9, 0});
    CHECK(ids(Dataset()).empty());
    CHECK(c.get(7).source == "ex0");
    CHECK_THROWS_AS(c.get(8), config_error);
}

TEST_CASE("shuffle is a buffer shuffle and a permutation") {
    for (std::size_t buffer : {1, 2, 5, 50, 1000}) {
        Rng rng(3);
        const auto order = data::detail::buffer_shuffle_order(50, buffer, rng);
        std::vector<std::size_t> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        std::vector<std::size_t> all(50);
        std::iota(all.begin(), all.end(), std::size_t{0});
        CHECK(sorted == all);  // a permutation
        // Output k can only be an input that has entered the buffer: index < k + buffer.
        for (std::size_t k = 0; k < order.size(); ++k) CHECK(order[k] < k + buffer);
        if (buffer == 1) CHECK(order == all);
    }
    const Dataset ds = numbers(30);
    const Dataset re = ds.shuffle(30, 7);
    const std::vector<int> e0 = ids(re), e1 = ids(re);
    std::vector<int> s0 = e0;
    std::sort(s0.begin(), s0.end());
    CHECK(s0 == ids(ds));
    CHECK(e0 != ids(ds));
    CHECK(e0 != e1);  // reshuffled each epoch
    CHECK(ids(ds.shuffle(30, 7)) == e0);  // same seed, same first epoch
    const Dataset fixed = ds.shuffle(30, 7, false);
    CHECK(ids(fixed) == ids(fixed));
    CHECK(ids(fixed) != ids(ds.shuffle(30, 8, false)));
    CHECK_THROWS_AS(ds.shuffle(0), config_error);
}

TEST_CASE("the reference re-split is disjoint and reproducible") {
    const Dataset train = numbers(2520), test = Dataset::from_generator(372, [](std::size_t i) { return make(2520 + i); });
    auto split = [&](std::uint64_t seed) {
        const Dataset all = train.concatenate(test).shuffle(3000, seed, false);
        return std::array<Dataset, 3>{all.take(600), all.skip(600).take(400), all.skip(1000)};
    };
    const auto s = split(42);
    CHECK(s[0].size() == 600);
    CHECK(s[1].size() == 400);
    CHECK(s[2].size() == 1892);
    std::set<std::string> seen;
    for (const auto& d : s)
        for (const auto& src : d.sources()) CHECK(seen.insert(src).second);  // disjoint
    CHECK(seen.size() == 2892);
    // Every epoch the same, and the same for the same seed; another seed differs.
    CHECK(s[0].sources(0) == s[0].sources(5));
    CHECK(split(42)[1].sources() == s[1].sources());
    CHECK(split(43)[1].sources() != s[1].sources());
}

TEST_CASE("map is lazy, per-example seeded, and cache computes once") {
    std::atomic<int> calls{0};
    const Dataset ds = numbers(6, &calls).map([](Example& e, Rng& rng) { e.image += rng.uniform(); });
    CHECK(calls == 0);
    const Example a = ds.get(2, 0), b = ds.get(2, 0), c = ds.get(2, 1);
    CHECK(a.image == b.image);  // same element, same epoch: same stream
    CHECK(a.image != c.image);  // another epoch: another draw

    calls = 0;
    const Dataset cached = numbers(6, &calls).map(Scale<2>{}).cache();
    const std::vector<int> first = ids(cached), second = ids(cached);
    CHECK(first == second);
    CHECK(calls == 6);
    CHECK(cached.labels() == std::vector<std::int32_t>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("batches: shapes, targets, labels, sources, remainder") {
    const BatchedDataset bd = numbers(10).batch(4);
    CHECK(bd.size() == 3);
    const std::vector<Batch> all = collect(bd);
    REQUIRE(all.size() == 3);
    CHECK(all[0].images.shape()[0] == 4);
    CHECK(all[0].images.shape()[1] == 3);
    CHECK(all[2].size() == 2);
    CHECK(all[1].images(1, 2, 1, 0) == 5.0f);
    CHECK(all[1].targets.shape()[1] == 1);
    CHECK(all[1].targets(1, 0) == 2.0f);  // label 5 % 3 as float
    CHECK(all[2].sources == std::vector<std::string>{"ex8", "ex9"});
    CHECK(numbers(10).batch(4, true).size() == 2);
    CHECK(collect(numbers(10).batch(4, true)).size() == 2);

    const std::vector<Batch> hot = collect(numbers(5).map(OneHot<3>{}).batch(5));
    REQUIRE(hot[0].targets.shape()[1] == 3);
    CHECK(hot[0].targets(4, 1) == 1.0f);
    CHECK(hot[0].targets(4, 0) == 0.0f);
    CHECK(hot[0].labels == std::vector<std::int32_t>{0, 1, 2, 0, 1});
    CHECK_THROWS_AS(numbers(3).batch(0), config_error);
}

TEST_CASE("a batch of images of different shapes names the files") {
    const Dataset mixed = Dataset::from_generator(4, [](std::size_t i) {
        Example e = make(i);
        if (i == 2) e.image = Tensor<3>(Shape<3>{5, 5, 3});
        return e;
    });
    try {
        for (const Batch& b : mixed.batch(4)) (void)b;
        FAIL("no error");
    } catch (const shape_error& e) {
        const std::string what = e.what();
        CHECK(what.find("ex0") != std::string::npos);
        CHECK(what.find("ex2") != std::string::npos);
    }
}

TEST_CASE("threads and prefetch never change the batches") {
    using Aug = Compose<RandomFlipLeftRight, RandomRotation, RandomBrightness>;
    const Dataset ds = Dataset::from_generator(37, [](std::size_t i) {
                           Example e;
                           e.image = Tensor<3>(Shape<3>{6, 5, 3});
                           for (std::size_t k = 0; k < e.image.size(); ++k)
                               e.image.data()[k] = static_cast<float>((k * 13 + i * 7) % 256);
                           e.label = static_cast<std::int32_t>(i % 3);
                           e.source = "g" + std::to_string(i);
                           return e;
                       })
                           .shuffle(16, 5)
                           .map(Aug{})
                           .map(OneHot<3>{});
    const BatchedDataset base = ds.batch(8);
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
        std::vector<Batch> one, two, pre, pre2;
        for (auto it = base.parallel(1).begin_epoch(epoch); it != std::default_sentinel; ++it) one.push_back(*it);
        for (auto it = base.parallel(2).begin_epoch(epoch); it != std::default_sentinel; ++it) two.push_back(*it);
        for (auto it = base.prefetch(2).begin_epoch(epoch); it != std::default_sentinel; ++it) pre.push_back(*it);
        for (auto it = base.parallel(2).prefetch(1).begin_epoch(epoch); it != std::default_sentinel; ++it)
            pre2.push_back(*it);
        CHECK(one.size() == 5);
        CHECK(same_batches(one, two));
        CHECK(same_batches(one, pre));
        CHECK(same_batches(one, pre2));
    }
    // Successive iterations are successive epochs, in every configuration.
    const BatchedDataset p = base.prefetch(3);
    const std::vector<Batch> e0 = collect(p), e1 = collect(p);
    std::vector<Batch> want0, want1;
    for (auto it = base.begin_epoch(0); it != std::default_sentinel; ++it) want0.push_back(*it);
    for (auto it = base.begin_epoch(1); it != std::default_sentinel; ++it) want1.push_back(*it);
    CHECK(same_batches(e0, want0));
    CHECK(same_batches(e1, want1));
    CHECK(!same_batches(e0, e1));
}

TEST_CASE("an error in the prefetch thread reaches the consumer, with the path") {
    const Dataset bad = Dataset::from_generator(20, [](std::size_t i) {
        if (i == 13) throw image_error("/data/broken-13.png", "truncated PNG");
        return make(i);
    });
    for (std::size_t depth : {0, 1, 4}) {
        CAPTURE(depth);
        std::size_t delivered = 0;
        try {
            for (const Batch& b : bad.batch(4).prefetch(depth)) {
                (void)b;
                ++delivered;
            }
            FAIL("no error");
        } catch (const image_error& e) {
            CHECK(e.path() == "/data/broken-13.png");
        }
        CHECK(delivered == 3);  // batches 0, 1, 2 arrive before the one holding example 13
    }
}

TEST_CASE("destroying a half-consumed prefetching iterator stops its thread") {
    std::atomic<int> calls{0};
    const Dataset slow = Dataset::from_generator(400, [&calls](std::size_t i) {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return make(i);
    });
    const auto start = std::chrono::steady_clock::now();
    {
        const BatchedDataset bd = slow.batch(10).prefetch(2);
        auto it = bd.begin();
        CHECK(it->size() == 10);
        ++it;
        CHECK(it->size() == 10);
    }  // the iterator (and its thread) is gone here
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int after = calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(calls == after);  // nothing runs any more
    CHECK(after <= 10 * (2 + 2 + 1));  // at most the consumed batches, the prefetched ones and one in flight
    CHECK(seconds < 2.0);
}
