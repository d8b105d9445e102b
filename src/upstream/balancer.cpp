// The load balancers that need no request key: round-robin, smooth weighted round-robin,
// least-connections, random, power-of-two-choices and peak-EWMA, plus the factory dispatch.
// Consistent hashing (Maglev) and the request hash live in balancer_hash.cpp.
//
// Balancer state (counters, RNG, smooth-WRR current weights) belongs to one worker, so it is
// plain memory; only the endpoint_state figures are shared, and they are read relaxed.
#include "upstream/balancer.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "upstream/balancer_detail.hpp"

namespace sentinel::upstream {

namespace detail {

weighted_sampler::weighted_sampler(std::span<const endpoint> endpoints) : endpoints_(endpoints) {
    cumulative_.reserve(endpoints.size());
    std::uint64_t sum = 0;
    for (const auto& e : endpoints) {
        sum += weight_of(e);
        cumulative_.push_back(sum);
        if (weight_of(e) != weight_of(endpoints.front())) equal_weights_ = false;
    }
}

int weighted_sampler::sample(rng& r, const pick_context& ctx, int exclude) const {
    const std::size_t n = endpoints_.size();
    if (n == 0) return -1;
    // Rejection sampling over the whole set first: with most endpoints usable (the normal
    // case) one draw suffices and costs O(1) or O(log n). Each accepted draw is exactly
    // weight-proportional among the usable endpoints, so mixing it with the exact scan below
    // keeps the distribution exact.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::size_t i;
        if (equal_weights_) {
            i = static_cast<std::size_t>(r.below(n));
        } else {
            const std::uint64_t x = r.below(cumulative_.back());
            i = static_cast<std::size_t>(
                std::upper_bound(cumulative_.begin(), cumulative_.end(), x) - cumulative_.begin());
        }
        if (static_cast<int>(i) != exclude && usable(endpoints_[i], i, ctx)) return static_cast<int>(i);
    }
    // Many endpoints down or tried: scan once for the usable weight, draw, scan again.
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (static_cast<int>(i) != exclude && usable(endpoints_[i], i, ctx)) total += weight_of(endpoints_[i]);
    }
    if (total == 0) return -1;
    std::uint64_t x = r.below(total);
    for (std::size_t i = 0; i < n; ++i) {
        // Availability is re-read here and may have changed since the first scan; the last
        // usable endpoint absorbs any shortfall so the draw always lands somewhere sensible.
        if (static_cast<int>(i) == exclude || !usable(endpoints_[i], i, ctx)) continue;
        const std::uint64_t w = weight_of(endpoints_[i]);
        if (x < w) return static_cast<int>(i);
        x -= w;
    }
    for (std::size_t i = n; i-- > 0;) {
        if (static_cast<int>(i) != exclude && usable(endpoints_[i], i, ctx)) return static_cast<int>(i);
    }
    return -1;
}

}  // namespace detail

namespace {

using detail::in_flight_of;
using detail::rng;
using detail::usable;
using detail::weight_of;
using detail::weighted_sampler;

// ---------------------------------------------------------------------------- round-robin

class round_robin_balancer final : public balancer {
public:
    round_robin_balancer(std::span<const endpoint> endpoints, std::uint64_t seed)
        : endpoints_(endpoints) {
        // Each worker starts at its own offset: with N workers all starting at endpoint 0, the
        // first request of every worker (e.g. right after a reload) would land on one endpoint.
        if (!endpoints_.empty()) next_ = detail::splitmix64(seed) % endpoints_.size();
    }

    int pick(const pick_context& ctx) override {
        const std::size_t n = endpoints_.size();
        for (std::size_t k = 0; k < n; ++k) {
            std::size_t i = next_ + k;
            if (i >= n) i -= n;
            if (usable(endpoints_[i], i, ctx)) {
                // A retry's pick does not move the rotation: otherwise, with a failing
                // endpoint just before a healthy one, the failing one would be every
                // request's first try.
                if (ctx.tried == 0) next_ = i + 1 == n ? 0 : i + 1;
                return static_cast<int>(i);
            }
        }
        return -1;
    }

private:
    std::span<const endpoint> endpoints_;
    std::size_t next_ = 0;
};

// ------------------------------------------------------------------- weighted round-robin

// nginx's smooth weighted round-robin: every usable endpoint's current weight grows by its
// weight, the largest wins and pays back the round's total. Over sum(weights) picks each
// endpoint is chosen exactly weight times, interleaved rather than in bursts.
class smooth_wrr_balancer final : public balancer {
public:
    smooth_wrr_balancer(std::span<const endpoint> endpoints, std::uint64_t seed)
        : endpoints_(endpoints), current_(endpoints.size(), 0) {
        // The sequence is periodic with period sum(weights); starting each worker at a
        // different phase keeps workers from all sending their first requests to the
        // heaviest endpoint. The warm-up is bounded so huge weights cost no startup time.
        std::uint64_t total = 0;
        for (const auto& e : endpoints_) total += weight_of(e);
        if (total == 0) return;
        const std::uint64_t steps = detail::splitmix64(seed) % std::min<std::uint64_t>(total, 1024);
        const pick_context all_usable{.now = 0, .hash = std::nullopt, .tried = 0};
        for (std::uint64_t s = 0; s < steps; ++s) step(all_usable, /*check=*/false);
    }

    int pick(const pick_context& ctx) override { return step(ctx, /*check=*/true); }

private:
    int step(const pick_context& ctx, bool check) {
        std::int64_t total = 0;
        int best = -1;
        for (std::size_t i = 0; i < endpoints_.size(); ++i) {
            // Skipped endpoints neither gain nor count towards the total this round, so the
            // remaining ones share the picks by their weights.
            if (check && !usable(endpoints_[i], i, ctx)) continue;
            const auto w = static_cast<std::int64_t>(weight_of(endpoints_[i]));
            current_[i] += w;
            total += w;
            if (best < 0 || current_[i] > current_[static_cast<std::size_t>(best)]) best = static_cast<int>(i);
        }
        if (best >= 0) current_[static_cast<std::size_t>(best)] -= total;
        return best;
    }

    std::span<const endpoint> endpoints_;
    std::vector<std::int64_t> current_;
};

// ---------------------------------------------------------------------- least-connections

// (in_flight + 1) / weight compared without division: a < b  ⇔  (fa+1)·wb < (fb+1)·wa.
// The +1 makes weight matter when both are idle (the heavier endpoint takes the request).
int compare_load(std::int64_t in_flight_a, std::uint64_t weight_a, std::int64_t in_flight_b,
                 std::uint64_t weight_b) {
    const auto lhs = static_cast<unsigned __int128>(in_flight_a + 1) * weight_b;
    const auto rhs = static_cast<unsigned __int128>(in_flight_b + 1) * weight_a;
    return lhs < rhs ? -1 : (lhs > rhs ? 1 : 0);
}

class least_connections_balancer final : public balancer {
public:
    least_connections_balancer(std::span<const endpoint> endpoints, std::uint64_t seed)
        : endpoints_(endpoints), rng_(seed) {}

    int pick(const pick_context& ctx) override {
        int best = -1;
        std::int64_t best_load = 0;
        std::uint64_t ties = 0;
        for (std::size_t i = 0; i < endpoints_.size(); ++i) {
            if (!usable(endpoints_[i], i, ctx)) continue;
            const std::int64_t load = in_flight_of(endpoints_[i]);
            const int cmp = best < 0 ? -1
                                     : compare_load(load, weight_of(endpoints_[i]), best_load,
                                                    weight_of(endpoints_[static_cast<std::size_t>(best)]));
            if (cmp < 0) {
                best = static_cast<int>(i);
                best_load = load;
                ties = 1;
            } else if (cmp == 0) {
                // Reservoir choice among equals: at low load every endpoint ties, and always
                // taking the first would send all of a quiet period's traffic to endpoint 0.
                ++ties;
                if (rng_.below(ties) == 0) {
                    best = static_cast<int>(i);
                    best_load = load;
                }
            }
        }
        return best;
    }

private:
    std::span<const endpoint> endpoints_;
    rng rng_;
};

// ------------------------------------------------------------ random, two-choices, peak-EWMA

// The balancers that draw from the shared weighted sampler with a per-worker RNG.
class sampling_balancer : public balancer {
public:
    sampling_balancer(std::shared_ptr<const weighted_sampler> sampler, std::uint64_t seed)
        : sampler_(std::move(sampler)), rng_(seed) {}

protected:
    // Two distinct usable endpoints, by weight: {a, b}; b < 0 when only a is usable, a < 0
    // when none is.
    std::pair<int, int> draw_two(const pick_context& ctx) {
        const int a = sampler_->sample(rng_, ctx);
        return {a, a < 0 ? -1 : sampler_->sample(rng_, ctx, a)};
    }
    const endpoint& at(int i) const { return sampler_->endpoints()[static_cast<std::size_t>(i)]; }

    std::shared_ptr<const weighted_sampler> sampler_;
    rng rng_;
};

class random_balancer final : public sampling_balancer {
public:
    using sampling_balancer::sampling_balancer;
    int pick(const pick_context& ctx) override { return sampler_->sample(rng_, ctx); }
};

class p2c_balancer final : public sampling_balancer {
public:
    using sampling_balancer::sampling_balancer;

    int pick(const pick_context& ctx) override {
        const auto [a, b] = draw_two(ctx);
        if (b < 0) return a;
        // Plain in_flight / weight, without least-connections' +1: the draws are already
        // weighted, so idle endpoints need no nudge towards the heavy ones, and the +1 would
        // bias the steady state against light endpoints (they'd carry fewer than their share).
        // Ties go to the first draw, which is itself random.
        const auto lhs = static_cast<unsigned __int128>(in_flight_of(at(b))) * weight_of(at(a));
        const auto rhs = static_cast<unsigned __int128>(in_flight_of(at(a))) * weight_of(at(b));
        return lhs < rhs ? b : a;
    }
};

// Power of two choices on the peak-EWMA cost (latency × load). The cost is divided by the
// weight, as least-connections divides load by it: a weight says "this endpoint has that
// much more capacity", so it may carry proportionally more cost before it stops being chosen.
class peak_ewma_balancer final : public sampling_balancer {
public:
    using sampling_balancer::sampling_balancer;

    int pick(const pick_context& ctx) override {
        const auto [a, b] = draw_two(ctx);
        if (b < 0) return a;
        const double ca = cost(at(a), ctx.now);
        const double cb = cost(at(b), ctx.now);
        // Equal costs (typically two endpoints without samples yet) go to the lower index so
        // the outcome does not depend on draw order.
        if (ca != cb) return ca < cb ? a : b;
        return std::min(a, b);
    }

private:
    static double cost(const endpoint& e, std::int64_t now) {
        const double c = e.state == nullptr ? 0.0 : e.state->peak_ewma_cost(now);
        return c / static_cast<double>(weight_of(e));
    }
};

// ------------------------------------------------------------------------------ factories

template <class Balancer>
class plain_factory final : public balancer_factory {
public:
    explicit plain_factory(std::span<const endpoint> endpoints) : endpoints_(endpoints) {}
    std::unique_ptr<balancer> make(std::uint64_t seed) const override {
        return std::make_unique<Balancer>(endpoints_, seed);
    }

private:
    std::span<const endpoint> endpoints_;
};

// Balancers that draw weighted samples share the factory's cumulative weights (read-only);
// shared ownership so a balancer never depends on the order its owner destroys things in.
template <class Balancer>
class sampling_factory final : public balancer_factory {
public:
    explicit sampling_factory(std::span<const endpoint> endpoints)
        : sampler_(std::make_shared<const weighted_sampler>(endpoints)) {}
    std::unique_ptr<balancer> make(std::uint64_t seed) const override {
        return std::make_unique<Balancer>(sampler_, seed);
    }

private:
    std::shared_ptr<const weighted_sampler> sampler_;
};

}  // namespace

std::unique_ptr<balancer_factory> balancer_factory::create(config::load_balancing kind,
                                                           std::span<const endpoint> endpoints) {
    using config::load_balancing;
    switch (kind) {
        case load_balancing::round_robin:
            return std::make_unique<plain_factory<round_robin_balancer>>(endpoints);
        case load_balancing::weighted_round_robin:
            return std::make_unique<plain_factory<smooth_wrr_balancer>>(endpoints);
        case load_balancing::least_connections:
            return std::make_unique<plain_factory<least_connections_balancer>>(endpoints);
        case load_balancing::random:
            return std::make_unique<sampling_factory<random_balancer>>(endpoints);
        case load_balancing::power_of_two_choices:
            return std::make_unique<sampling_factory<p2c_balancer>>(endpoints);
        case load_balancing::consistent_hash:
            return detail::make_consistent_hash_factory(endpoints);
        case load_balancing::peak_ewma:
            return std::make_unique<sampling_factory<peak_ewma_balancer>>(endpoints);
    }
    return std::make_unique<plain_factory<round_robin_balancer>>(endpoints);
}

}  // namespace sentinel::upstream
