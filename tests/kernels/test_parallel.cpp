// Work splitting between threads (kernels/parallel.hpp): the static split and the unit
// queue that hands units to whichever thread is free.
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <vector>

#include "typenet/kernels/parallel.hpp"

using typenet::kernels::Range;
using typenet::kernels::run_parallel;
using typenet::kernels::split_range;
using typenet::kernels::UnitQueue;

TEST_CASE("split_range: contiguous parts covering [0, n), sizes differing by at most one") {
    for (std::size_t n : {0u, 1u, 7u, 64u, 1001u})
        for (std::size_t parts : {1u, 2u, 3u, 8u}) {
            std::size_t next = 0, smallest = n, largest = 0;
            for (std::size_t i = 0; i < parts; ++i) {
                const Range r = split_range(n, parts, i);
                CHECK(r.begin == next);
                CHECK(r.end >= r.begin);
                next = r.end;
                smallest = std::min(smallest, r.end - r.begin);
                largest = std::max(largest, r.end - r.begin);
            }
            CHECK(next == n);
            CHECK(largest - smallest <= 1);
        }
}

TEST_CASE("UnitQueue: every unit handed out exactly once, across threads") {
    for (std::size_t n : {0u, 1u, 5u, 1000u})
        for (int threads : {1, 2, 4}) {
            std::vector<std::atomic<int>> taken(n);
            for (auto& t : taken) t = 0;
            std::atomic<std::size_t> handed{0};
            UnitQueue queue(n);
            run_parallel(threads, [&](int, int) {
                std::size_t u;
                while (queue.next(u)) {
                    REQUIRE(u < n);
                    ++taken[u];
                    ++handed;
                }
            });
            CHECK(handed == n);
            std::size_t once = 0;
            for (auto& t : taken) once += t == 1 ? 1 : 0;
            CHECK(once == n);
            // Drained: no unit is left, however often it is asked again.
            std::size_t u = 0;
            CHECK_FALSE(queue.next(u));
            CHECK_FALSE(queue.next(u));
        }
}

TEST_CASE("UnitQueue: one thread gets the units in increasing order") {
    UnitQueue queue(6);
    std::vector<std::size_t> got;
    std::size_t u;
    while (queue.next(u)) got.push_back(u);
    CHECK(got == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
}
