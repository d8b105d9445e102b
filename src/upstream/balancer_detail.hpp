// Pieces shared by the balancer implementations (balancer.cpp, balancer_hash.cpp); not part of
// the upstream interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "upstream/balancer.hpp"
#include "upstream/upstream_group.hpp"

namespace sentinel::upstream::detail {

// splitmix64 step: turns a weak seed (worker index 0, 1, 2...) into well-spread bits.
inline std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// xoshiro256**: fast, small state, good enough statistics for load spreading. Not shared
// between threads (each worker's balancer has its own).
class rng {
public:
    explicit rng(std::uint64_t seed) {
        for (auto& word : s_) word = splitmix64(seed);
    }

    std::uint64_t next() {
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

    // Uniform in [0, bound) by multiply-shift (Lemire): the bias is below bound / 2^64, far
    // under anything a load test could see, and it avoids a division per pick.
    std::uint64_t below(std::uint64_t bound) {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

// Whether endpoint `i` may take this try: not tried by the request yet (only the first 64
// endpoints are tracked) and available per its shared state. A missing state counts as
// available so a group built without live state (tools, tests) still balances.
inline bool usable(const endpoint& e, std::size_t i, const pick_context& ctx) {
    if (i < 64 && ((ctx.tried >> i) & 1U) != 0) return false;
    return e.state == nullptr || e.state->available(ctx.now);
}

// Weights clamped to at least 1: the schema rejects 0, and the clamp keeps every division
// and comparison below well defined whatever the model holds.
inline std::uint64_t weight_of(const endpoint& e) { return e.weight == 0 ? 1 : e.weight; }

inline std::int64_t in_flight_of(const endpoint& e) {
    if (e.state == nullptr) return 0;
    const auto n = e.state->in_flight.load(std::memory_order_relaxed);
    return n < 0 ? 0 : n;  // a transiently negative counter must not look attractive
}

// Weighted random choice among usable endpoints, shared by random, power-of-two-choices,
// peak-EWMA and consistent-hash without a key. Built once per factory (read-only).
class weighted_sampler {
public:
    explicit weighted_sampler(std::span<const endpoint> endpoints);

    // A usable endpoint with probability proportional to its weight among the usable ones,
    // excluding `exclude` (-1 = none); -1 when there is none.
    int sample(rng& r, const pick_context& ctx, int exclude = -1) const;

    std::span<const endpoint> endpoints() const { return endpoints_; }

private:
    std::span<const endpoint> endpoints_;
    std::vector<std::uint64_t> cumulative_;  // cumulative_[i] = sum of weights 0..i
    bool equal_weights_ = true;
};

// XXH64-style hash with an explicit seed (hash_bytes() is seed 0); the Maglev table needs two
// independent hashes of each endpoint key.
std::uint64_t hash_bytes_seeded(std::string_view data, std::uint64_t seed);

std::unique_ptr<balancer_factory> make_consistent_hash_factory(std::span<const endpoint> endpoints);

}  // namespace sentinel::upstream::detail
