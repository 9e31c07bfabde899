// Shards of a dataset for data-parallel training (Dataset::shard,
// BatchedDataset::shard in typenet/data/dataset.hpp): which examples each rank gets,
// worked out by hand, and agreement with slices of the unsharded global batches.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "typenet/data/augment.hpp"
#include "typenet/data/dataset.hpp"

using namespace typenet;
using namespace typenet::data;

namespace {

// Example i: a 2x2x1 image filled with i, label i % 3, source "ex<i>".
Example make(std::size_t i) {
    Example e;
    e.image = Tensor<3>(Shape<3>{2, 2, 1});
    e.image.fill(static_cast<float>(i));
    e.label = static_cast<std::int32_t>(i % 3);
    e.source = "ex" + std::to_string(i);
    return e;
}

Dataset numbers(std::size_t n) { return Dataset::from_generator(n, make); }

// The example numbers of one epoch, from the image values.
std::vector<int> ids(const Dataset& ds, std::uint64_t epoch = 0) {
    std::vector<int> out;
    for (std::size_t i = 0; i < ds.size(); ++i) out.push_back(static_cast<int>(ds.get(i, epoch).image(0, 0, 0)));
    return out;
}

}  // namespace

TEST_CASE("shard: rank r gets elements r*b .. r*b+b-1 of each global batch (worked by hand)") {
    // 23 examples, global batch 8, 2 ranks (b = 4): global batches [0..7], [8..15] and
    // the partial [16..22] of 7.
    const Dataset d = numbers(23);
    // equal: 7 / 2 = 3 each; example 22 is left out.
    CHECK(ids(d.shard(8, 2, 0)) == std::vector<int>{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18});
    CHECK(ids(d.shard(8, 2, 1)) == std::vector<int>{4, 5, 6, 7, 12, 13, 14, 15, 19, 20, 21});
    // all: rank 0 gets the extra one.
    CHECK(ids(d.shard(8, 2, 0, ShardTail::all)) == std::vector<int>{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19});
    CHECK(ids(d.shard(8, 2, 1, ShardTail::all)) == std::vector<int>{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22});
    // 3 ranks, global batch 6 (b = 2): batches [0..5], [6..11], [12..17], tail [18..22] of 5.
    CHECK(ids(d.shard(6, 3, 2)) == std::vector<int>{4, 5, 10, 11, 16, 17, 20});  // 5 / 3 = 1 each: 18, 19, 20
    CHECK(ids(d.shard(6, 3, 0, ShardTail::all)) == std::vector<int>{0, 1, 6, 7, 12, 13, 18, 19});
    CHECK(ids(d.shard(6, 3, 1, ShardTail::all)) == std::vector<int>{2, 3, 8, 9, 14, 15, 20, 21});
    CHECK(ids(d.shard(6, 3, 2, ShardTail::all)) == std::vector<int>{4, 5, 10, 11, 16, 17, 22});
    // A tail smaller than the number of ranks: nobody gets any of it with `equal`.
    CHECK(ids(numbers(17).shard(8, 2, 1)) == std::vector<int>{4, 5, 6, 7, 12, 13, 14, 15});
    // Sources and labels follow, without decoding.
    CHECK(d.shard(8, 2, 1).sources(0)[8] == "ex19");
    CHECK(d.shard(8, 2, 1).labels(0)[8] == 19 % 3);
    // One rank: everything, in order.
    CHECK(ids(d.shard(8, 1, 0)) == ids(d));
}

TEST_CASE("shard: each epoch's slices of the global order (shuffled), with the global random streams") {
    // A random transform before the shard: an element's value depends on its global
    // position, so the shard's elements must equal the global ones.
    const Dataset global = numbers(40).shuffle(40, 7).map([](Example& e, Rng& rng) {
        e.image(0, 0, 0) += 1000.0f * static_cast<float>(rng.below(10));
    });
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
        const std::vector<int> all = ids(global, epoch);
        for (std::size_t r = 0; r < 2; ++r) {
            std::vector<int> expected;
            for (std::size_t k = 0; k < 40; ++k)
                if ((k % 16) / 8 == r && k < 32) expected.push_back(all[k]);  // batches of 16 = 2 x 8
            // tail of 8: 4 per rank
            for (std::size_t k = 32 + 4 * r; k < 36 + 4 * r; ++k) expected.push_back(all[k]);
            CHECK(ids(global.shard(16, 2, r), epoch) == expected);
        }
    }
}

TEST_CASE("BatchedDataset::shard: batch k of a rank is its slice of global batch k") {
    const BatchedDataset batches = numbers(23).shuffle(23, 3).batch(8);
    const BatchedDataset r0 = batches.shard(2, 0), r1 = batches.shard(2, 1);
    CHECK(r0.batch_size() == 4);
    CHECK(r0.size() == 3);  // 4, 4, 3
    CHECK(r1.num_examples() == 11);
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
        std::vector<std::vector<std::string>> global, a, b;
        for (auto it = batches.begin_epoch(epoch); it != batches.end(); ++it) global.push_back(it->sources);
        for (auto it = r0.begin_epoch(epoch); it != r0.end(); ++it) a.push_back(it->sources);
        for (auto it = r1.begin_epoch(epoch); it != r1.end(); ++it) b.push_back(it->sources);
        REQUIRE(a.size() == 3);
        REQUIRE(b.size() == 3);
        for (std::size_t k = 0; k < 3; ++k) {
            const std::size_t n = k < 2 ? 4 : 3;
            REQUIRE(a[k].size() == n);
            REQUIRE(b[k].size() == n);
            for (std::size_t i = 0; i < n; ++i) {
                CHECK(a[k][i] == global[k][i]);
                CHECK(b[k][i] == global[k][n + i]);
            }
        }
    }
    // drop_remainder carries over: only the full global batches.
    CHECK(numbers(23).batch(8, true).shard(2, 1).size() == 2);
    // The shard has its own epoch count, like prefetch().
    CHECK(r0.next_epoch() == 0);
    for (auto it = r0.begin(); it != r0.end(); ++it) {
    }
    CHECK(r0.next_epoch() == 1);
    CHECK(batches.next_epoch() == 0);
}

TEST_CASE("shard: wrong settings are refused") {
    const Dataset d = numbers(10);
    CHECK_THROWS_AS(d.shard(8, 2, 2), config_error);
    CHECK_THROWS_AS(d.shard(8, 0, 0), config_error);
    CHECK_THROWS_WITH_AS(d.shard(7, 2, 0), doctest::Contains("multiple of the number of ranks"), config_error);
    CHECK_THROWS_AS(d.shard(0, 2, 0), config_error);
    CHECK_THROWS_WITH_AS(d.batch(7).shard(2, 0), doctest::Contains("multiple of the number of ranks"), config_error);
    // For evaluation the batch need not split evenly: global batches of 8, 4 per rank.
    const BatchedDataset e = d.batch(7).shard(2, 1, ShardTail::all);
    CHECK(e.batch_size() == 4);
    CHECK(e.num_examples() == 5);  // 4..7, then 9 (the tail 8, 9: one each)
    CHECK(e.sources(0) == std::vector<std::string>{"ex4", "ex5", "ex6", "ex7", "ex9"});
}
