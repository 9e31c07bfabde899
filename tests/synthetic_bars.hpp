// A tiny generated image dataset shared by the training tests: 3 classes of 8x8 RGB
// images (a bright horizontal bar, a vertical bar, or the diagonal), with noise. Example
// i is a pure function of i (label i % 3), so every test and every MPI rank sees the
// same data.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "typenet/core/random.hpp"
#include "typenet/data/dataset.hpp"

namespace typenet::test {

/// Example `i` of the bars dataset.
inline Example bars_example(std::size_t i) {
    Rng rng = Rng::derive(77, i);
    Example e;
    e.label = static_cast<std::int32_t>(i % 3);
    e.image = Tensor<3>(Shape<3>{8, 8, 3});
    for (std::size_t y = 0; y < 8; ++y)
        for (std::size_t x = 0; x < 8; ++x) {
            const bool on = e.label == 0 ? y == 4 : e.label == 1 ? x == 3 : x == y;
            for (std::size_t c = 0; c < 3; ++c) e.image(y, x, c) = (on ? 0.9f : 0.1f) + 0.1f * rng.uniform(-1, 1);
        }
    e.source = "generated/" + std::to_string(i);
    return e;
}

/// `n` examples of the bars dataset; each one computed increments `*reads` when given.
inline data::Dataset synthetic_bars(std::size_t n, std::atomic<int>* reads = nullptr) {
    data::Dataset d = data::Dataset::from_generator(n, bars_example);
    if (!reads) return d;
    return d.map([reads](Example&, Rng&) { ++*reads; });
}

}  // namespace typenet::test
