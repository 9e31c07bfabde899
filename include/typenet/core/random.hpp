/// @file core/random.hpp
/// A small, fast, seedable random number generator with portable results.
///
/// `std::uniform_real_distribution` and `std::shuffle` may give different numbers on
/// different standard libraries; typenet's own distributions do not, so a seed
/// reproduces the same splits, initial weights and dropout masks everywhere.
/// The engine is xoshiro256** seeded through splitmix64.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace typenet {

/// splitmix64 step: a good 64-bit mix, used for seeding and for deriving streams.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// Seeded random number generator (xoshiro256**). Copyable; equal seeds give equal streams.
class Rng {
public:
    using result_type = std::uint64_t;

    explicit Rng(std::uint64_t seed = 42) noexcept { reseed(seed); }

    /// Restart the stream from `seed`.
    void reseed(std::uint64_t seed) noexcept {
        std::uint64_t sm = seed;
        for (auto& w : s_) w = splitmix64(sm);
    }

    /// A generator for sub-stream `stream` of `seed`, independent of the others
    /// (used to give each example or thread its own reproducible stream).
    static Rng derive(std::uint64_t seed, std::uint64_t stream) noexcept {
        std::uint64_t sm = seed ^ (0xA0761D6478BD642Full * (stream + 1));
        return Rng(splitmix64(sm));
    }

    static constexpr result_type min() noexcept { return 0; }
    static constexpr result_type max() noexcept { return ~result_type(0); }

    /// Next 64 random bits.
    result_type operator()() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform float in [0, 1).
    float uniform() noexcept { return static_cast<float>((*this)() >> 40) * 0x1.0p-24f; }

    /// Uniform float in [lo, hi).
    float uniform(float lo, float hi) noexcept { return lo + (hi - lo) * uniform(); }

    /// Uniform integer in [0, n) without modulo bias (n > 0).
    std::uint64_t below(std::uint64_t n) noexcept {
        // Lemire's nearly divisionless method.
        unsigned __int128 m = static_cast<unsigned __int128>((*this)()) * n;
        auto low = static_cast<std::uint64_t>(m);
        if (low < n) {
            const std::uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<unsigned __int128>((*this)()) * n;
                low = static_cast<std::uint64_t>(m);
            }
        }
        return static_cast<std::uint64_t>(m >> 64);
    }

    /// true with probability p.
    bool bernoulli(float p) noexcept { return uniform() < p; }

    /// Standard normal variate (Box-Muller, one value per call).
    float normal() noexcept {
        double u1 = ((*this)() >> 11) * 0x1.0p-53;
        const double u2 = ((*this)() >> 11) * 0x1.0p-53;
        if (u1 < 1e-300) u1 = 1e-300;
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }

    /// Fisher-Yates shuffle of a random-access range.
    template <class It>
    void shuffle(It first, It last) noexcept {
        const auto n = static_cast<std::uint64_t>(last - first);
        for (std::uint64_t i = n; i > 1; --i) {
            const std::uint64_t j = below(i);
            using std::swap;
            swap(first[i - 1], first[j]);
        }
    }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
};

}  // namespace typenet
