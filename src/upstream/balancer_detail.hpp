// Pieces shared by the balancer implementations (balancer.cpp, balancer_hash.cpp); not part of
// the upstream interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/xoshiro.hpp"
#include "upstream/balancer.hpp"
#include "upstream/upstream_group.hpp"

namespace sentinel::upstream::detail {

using sentinel::splitmix64;
// Per-balancer PRNG; each worker's balancer has its own, so nothing is shared between threads.
using rng = xoshiro256ss;

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
