// Load balancers: selection rules, skipping of unavailable/tried endpoints, distributions
// (fixed seeds and wide-enough tolerances so nothing can flake), Maglev stability, and the
// request key.
#include "upstream/balancer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "upstream/upstream_group.hpp"

namespace sentinel::upstream {
namespace {

using config::load_balancing;

constexpr load_balancing all_kinds[] = {
    load_balancing::round_robin,          load_balancing::weighted_round_robin,
    load_balancing::least_connections,    load_balancing::random,
    load_balancing::power_of_two_choices, load_balancing::consistent_hash,
    load_balancing::peak_ewma,
};

std::string key_of(std::size_t i) { return "10.0.0." + std::to_string(i) + ":8080"; }

// A group of endpoints with live state.
struct group {
    explicit group(std::vector<std::uint32_t> weights) {
        for (std::size_t i = 0; i < weights.size(); ++i) add(key_of(i), weights[i]);
    }
    void add(std::string key, std::uint32_t weight = 1) {
        endpoint e;
        e.key = key;
        e.weight = weight;
        e.state = std::make_shared<endpoint_state>(key, owner, true);
        endpoints.push_back(std::move(e));
    }
    endpoint_state& state(std::size_t i) { return *endpoints[i].state; }

    std::shared_ptr<upstream_state> owner = std::make_shared<upstream_state>("u");
    std::vector<endpoint> endpoints;
};

std::vector<std::uint32_t> equal(std::size_t n) { return std::vector<std::uint32_t>(n, 1); }

pick_context ctx_now() { return pick_context{.now = now_ms(), .hash = std::nullopt, .tried = 0}; }

std::vector<int> count_picks(balancer& b, std::size_t n, int picks, const pick_context& ctx) {
    std::vector<int> counts(n, 0);
    for (int k = 0; k < picks; ++k) {
        const int i = b.pick(ctx);
        EXPECT_GE(i, 0);
        if (i < 0) break;
        ++counts[static_cast<std::size_t>(i)];
    }
    return counts;
}

// ------------------------------------------------------------------ all kinds, common rules

class every_kind : public ::testing::TestWithParam<load_balancing> {};

TEST_P(every_kind, NoEndpointsGivesMinusOne) {
    std::vector<endpoint> none;
    auto f = balancer_factory::create(GetParam(), none);
    auto b = f->make(1);
    auto ctx = ctx_now();
    EXPECT_EQ(b->pick(ctx), -1);
    ctx.hash = 42;
    EXPECT_EQ(b->pick(ctx), -1);
}

TEST_P(every_kind, NeverPicksUnavailableOrTried) {
    group g(std::vector<std::uint32_t>{1, 2, 3, 1, 1});
    g.state(1).healthy = false;
    g.state(3).ejected_until = now_ms() + 60'000;
    auto f = balancer_factory::create(GetParam(), g.endpoints);
    auto b = f->make(7);
    auto ctx = ctx_now();
    ctx.tried = 1U << 0;
    std::vector<int> counts(5, 0);
    for (int k = 0; k < 2000; ++k) {
        ctx.hash = hash_bytes("key" + std::to_string(k));
        if (k % 4 == 0) ctx.hash.reset();
        const int i = b->pick(ctx);
        ASSERT_TRUE(i == 2 || i == 4) << i;
        ++counts[static_cast<std::size_t>(i)];
    }
    EXPECT_EQ(counts[2] + counts[4], 2000);

    ctx.tried |= (1U << 2) | (1U << 4);
    ctx.hash = 5;
    EXPECT_EQ(b->pick(ctx), -1);
    ctx.hash.reset();
    EXPECT_EQ(b->pick(ctx), -1);
}

TEST_P(every_kind, EndpointsPast64AreNeverConsideredTried) {
    group g(equal(70));
    for (std::size_t i = 0; i < 64; ++i) g.state(i).healthy = i % 2 == 0;
    auto f = balancer_factory::create(GetParam(), g.endpoints);
    auto b = f->make(3);
    auto ctx = ctx_now();
    ctx.tried = ~std::uint64_t{0};
    for (int k = 0; k < 500; ++k) {
        if (k % 2 == 0) ctx.hash = hash_bytes(std::to_string(k)); else ctx.hash.reset();
        const int i = b->pick(ctx);
        ASSERT_GE(i, 64);
        ASSERT_LT(i, 70);
    }
}

INSTANTIATE_TEST_SUITE_P(balancer, every_kind, ::testing::ValuesIn(all_kinds));

// ---------------------------------------------------------------------------- round-robin

TEST(round_robin, ExactlyEvenAndCyclic) {
    group g(equal(4));
    auto b = balancer_factory::create(load_balancing::round_robin, g.endpoints)->make(11);
    const auto ctx = ctx_now();
    std::vector<int> counts(4, 0);
    int previous = b->pick(ctx);
    ++counts[static_cast<std::size_t>(previous)];
    for (int k = 1; k < 4000; ++k) {
        const int i = b->pick(ctx);
        EXPECT_EQ(i, (previous + 1) % 4);
        ++counts[static_cast<std::size_t>(i)];
        previous = i;
    }
    EXPECT_EQ(counts, (std::vector<int>{1000, 1000, 1000, 1000}));
}

TEST(round_robin, WorkersStartAtDifferentOffsets) {
    group g(equal(8));
    auto f = balancer_factory::create(load_balancing::round_robin, g.endpoints);
    std::set<int> firsts;
    for (std::uint64_t worker = 0; worker < 8; ++worker) firsts.insert(f->make(worker)->pick(ctx_now()));
    EXPECT_GE(firsts.size(), 4U);
}

TEST(round_robin, SkipsKeepTheRotationEvenAmongTheRest) {
    group g(equal(4));
    g.state(2).healthy = false;
    auto b = balancer_factory::create(load_balancing::round_robin, g.endpoints)->make(0);
    const auto counts = count_picks(*b, 4, 3000, ctx_now());
    EXPECT_EQ(counts, (std::vector<int>{1000, 1000, 0, 1000}));
}

TEST(round_robin, RetryPicksDoNotMoveTheRotation) {
    // Endpoint 0 fails every try and is retried on endpoint 1: first tries must still
    // alternate, not land on the failing endpoint every time.
    group g(equal(2));
    auto b = balancer_factory::create(load_balancing::round_robin, g.endpoints)->make(0);
    std::vector<int> first_tries(2, 0);
    for (int request = 0; request < 100; ++request) {
        auto ctx = ctx_now();
        const int first = b->pick(ctx);
        ++first_tries[static_cast<std::size_t>(first)];
        if (first == 0) {
            ctx.tried = 1;
            EXPECT_EQ(b->pick(ctx), 1);
        }
    }
    EXPECT_EQ(first_tries, (std::vector<int>{50, 50}));
}

// ------------------------------------------------------------------- weighted round-robin

TEST(weighted_round_robin, FiveOneOneIsExactAndSmooth) {
    group g(std::vector<std::uint32_t>{5, 1, 1});
    for (std::uint64_t seed : {0ULL, 1ULL, 99ULL}) {
        auto b = balancer_factory::create(load_balancing::weighted_round_robin, g.endpoints)->make(seed);
        const auto ctx = ctx_now();
        std::vector<int> sequence;
        for (int k = 0; k < 700; ++k) sequence.push_back(b->pick(ctx));
        // Every window of 7 consecutive picks, at any phase, holds exactly 5:1:1.
        for (std::size_t start = 0; start + 7 <= sequence.size(); ++start) {
            std::vector<int> counts(3, 0);
            for (std::size_t k = start; k < start + 7; ++k) ++counts[static_cast<std::size_t>(sequence[k])];
            ASSERT_EQ(counts, (std::vector<int>{5, 1, 1})) << "seed " << seed << " window " << start;
        }
        int run = 0;
        int longest = 0;
        for (int i : sequence) {
            run = i == 0 ? run + 1 : 0;
            longest = std::max(longest, run);
        }
        EXPECT_LT(longest, 5) << "seed " << seed;
    }
}

TEST(weighted_round_robin, UnavailableWeightIsNotCounted) {
    group g(std::vector<std::uint32_t>{3, 4, 1});
    g.state(1).healthy = false;
    auto b = balancer_factory::create(load_balancing::weighted_round_robin, g.endpoints)->make(5);
    const auto counts = count_picks(*b, 3, 4000, ctx_now());
    EXPECT_EQ(counts[1], 0);
    EXPECT_NEAR(counts[0], 3000, 2);
    EXPECT_NEAR(counts[2], 1000, 2);
}

// ---------------------------------------------------------------------- least-connections

TEST(least_connections, PrefersFewestInFlightPerWeight) {
    group g(equal(3));
    g.state(0).in_flight = 5;
    g.state(1).in_flight = 2;
    g.state(2).in_flight = 9;
    auto b = balancer_factory::create(load_balancing::least_connections, g.endpoints)->make(1);
    for (int k = 0; k < 100; ++k) EXPECT_EQ(b->pick(ctx_now()), 1);

    // Weight 3 with 5 in flight: (5+1)/3 = 2 beats (2+1)/1 = 3.
    group w(std::vector<std::uint32_t>{3, 1});
    w.state(0).in_flight = 5;
    w.state(1).in_flight = 2;
    auto bw = balancer_factory::create(load_balancing::least_connections, w.endpoints)->make(1);
    EXPECT_EQ(bw->pick(ctx_now()), 0);
    w.state(0).in_flight = 9;  // (9+1)/3 > 3
    EXPECT_EQ(bw->pick(ctx_now()), 1);
}

TEST(least_connections, TiesSpreadLoad) {
    group g(equal(3));
    auto b = balancer_factory::create(load_balancing::least_connections, g.endpoints)->make(42);
    const auto counts = count_picks(*b, 3, 30'000, ctx_now());
    for (int c : counts) EXPECT_NEAR(c, 10'000, 500);
}

TEST(least_connections, WithRealLoadFollowsWeights) {
    // Each pick adds a request; the oldest completes once 300 are open (FIFO, same service
    // time), so in-flight counts track recent traffic and the balancer equalises load/weight.
    // (The +1 in (in_flight+1)/weight shifts the light endpoint's share by ~1% at this depth.)
    group g(std::vector<std::uint32_t>{1, 2, 3});
    auto b = balancer_factory::create(load_balancing::least_connections, g.endpoints)->make(9);
    std::deque<int> open;
    std::vector<int> counts(3, 0);
    for (int k = 0; k < 60'000; ++k) {
        const int i = b->pick(ctx_now());
        ++counts[static_cast<std::size_t>(i)];
        ++g.state(static_cast<std::size_t>(i)).in_flight;
        open.push_back(i);
        if (open.size() > 300) {
            --g.state(static_cast<std::size_t>(open.front())).in_flight;
            open.pop_front();
        }
    }
    EXPECT_NEAR(counts[0], 10'000, 500);
    EXPECT_NEAR(counts[1], 20'000, 1000);
    EXPECT_NEAR(counts[2], 30'000, 1500);
}

// ------------------------------------------------------------------------------- random

TEST(random, WeightedWithinFivePercent) {
    group g(std::vector<std::uint32_t>{1, 2, 3, 4});
    auto b = balancer_factory::create(load_balancing::random, g.endpoints)->make(2024);
    const auto counts = count_picks(*b, 4, 100'000, ctx_now());
    for (std::size_t i = 0; i < 4; ++i) {
        const double expected = 100'000.0 * static_cast<double>(i + 1) / 10.0;
        EXPECT_NEAR(counts[i], expected, expected * 0.05) << i;
    }
}

TEST(random, UniformWithEqualWeightsAndProportionalAmongTheUsable) {
    group g(equal(5));
    auto b = balancer_factory::create(load_balancing::random, g.endpoints)->make(77);
    auto counts = count_picks(*b, 5, 100'000, ctx_now());
    for (int c : counts) EXPECT_NEAR(c, 20'000, 1000);

    group w(std::vector<std::uint32_t>{1, 5, 2, 2});
    auto bw = balancer_factory::create(load_balancing::random, w.endpoints)->make(78);
    auto ctx = ctx_now();
    ctx.tried = 1U << 1;  // the heavy one: most first draws are rejected, the scan takes over
    counts = count_picks(*bw, 4, 100'000, ctx);
    EXPECT_EQ(counts[1], 0);
    EXPECT_NEAR(counts[0], 20'000, 1000);
    EXPECT_NEAR(counts[2], 40'000, 2000);
    EXPECT_NEAR(counts[3], 40'000, 2000);
}

// ---------------------------------------------------------------- power-of-two-choices

TEST(power_of_two_choices, MostLoadedIsNeverChosen) {
    group g(equal(3));
    g.state(0).in_flight = 10;
    auto b = balancer_factory::create(load_balancing::power_of_two_choices, g.endpoints)->make(4);
    const auto counts = count_picks(*b, 3, 10'000, ctx_now());
    EXPECT_EQ(counts[0], 0);
    EXPECT_NEAR(counts[1], 5000, 400);
    EXPECT_NEAR(counts[2], 5000, 400);
}

TEST(power_of_two_choices, WithRealLoadFollowsWeightsWithinFivePercent) {
    group g(std::vector<std::uint32_t>{1, 2, 3, 4});
    auto b = balancer_factory::create(load_balancing::power_of_two_choices, g.endpoints)->make(31);
    std::deque<int> open;
    std::vector<int> counts(4, 0);
    for (int k = 0; k < 100'000; ++k) {
        const int i = b->pick(ctx_now());
        ++counts[static_cast<std::size_t>(i)];
        ++g.state(static_cast<std::size_t>(i)).in_flight;
        open.push_back(i);
        if (open.size() > 100) {
            --g.state(static_cast<std::size_t>(open.front())).in_flight;
            open.pop_front();
        }
    }
    for (std::size_t i = 0; i < 4; ++i) {
        const double expected = 100'000.0 * static_cast<double>(i + 1) / 10.0;
        EXPECT_NEAR(counts[i], expected, expected * 0.05) << i;
    }
}

// ------------------------------------------------------------------------------ peak-EWMA

TEST(peak_ewma, PrefersLowerLatency) {
    group g(equal(3));
    const auto now = now_ms();
    const std::uint64_t latencies_us[] = {50'000, 1'000, 200'000};
    for (std::size_t i = 0; i < 3; ++i) {
        g.state(i).ewma_us = latencies_us[i];
        g.state(i).ewma_stamp_ms = static_cast<std::uint64_t>(now);
    }
    auto b = balancer_factory::create(load_balancing::peak_ewma, g.endpoints)->make(8);
    const pick_context ctx{.now = now, .hash = std::nullopt, .tried = 0};
    const auto counts = count_picks(*b, 3, 9000, ctx);
    EXPECT_EQ(counts[2], 0);            // the slowest loses every comparison
    EXPECT_GT(counts[1], counts[0]);    // the fastest wins every one it is drawn into
    EXPECT_NEAR(counts[1], 6000, 400);  // drawn into 2 of the 3 possible pairs
}

TEST(peak_ewma, TiesGoToTheLowerIndex) {
    group g(equal(2));  // no samples, nothing in flight: equal cost
    auto b = balancer_factory::create(load_balancing::peak_ewma, g.endpoints)->make(8);
    for (int k = 0; k < 200; ++k) EXPECT_EQ(b->pick(ctx_now()), 0);
}

// ---------------------------------------------------------------------- consistent-hash

// Endpoint key chosen for each of `keys` request keys.
std::vector<std::string> assign(const std::vector<endpoint>& endpoints, int keys, std::uint64_t seed = 1) {
    auto b = balancer_factory::create(load_balancing::consistent_hash, endpoints)->make(seed);
    std::vector<std::string> owner;
    owner.reserve(static_cast<std::size_t>(keys));
    auto ctx = ctx_now();
    for (int k = 0; k < keys; ++k) {
        ctx.hash = hash_bytes("user-" + std::to_string(k));
        const int i = b->pick(ctx);
        owner.push_back(i < 0 ? std::string{} : endpoints[static_cast<std::size_t>(i)].key);
    }
    return owner;
}

TEST(consistent_hash, SameKeySameEndpointOnEveryWorker) {
    group g(equal(7));
    EXPECT_EQ(assign(g.endpoints, 5000, 1), assign(g.endpoints, 5000, 2));
    auto b = balancer_factory::create(load_balancing::consistent_hash, g.endpoints)->make(3);
    auto ctx = ctx_now();
    ctx.hash = hash_bytes("alice");
    const int first = b->pick(ctx);
    for (int k = 0; k < 100; ++k) EXPECT_EQ(b->pick(ctx), first);
}

TEST(consistent_hash, EvenOverTenEndpoints) {
    group g(equal(10));
    std::map<std::string, int> counts;
    for (const auto& owner : assign(g.endpoints, 100'000)) ++counts[owner];
    ASSERT_EQ(counts.size(), 10U);
    for (const auto& [key, n] : counts) EXPECT_NEAR(n, 10'000, 600) << key;
}

TEST(consistent_hash, WeightsShareTheTable) {
    group g(std::vector<std::uint32_t>{1, 2, 3, 4});
    std::map<std::string, int> counts;
    for (const auto& owner : assign(g.endpoints, 100'000)) ++counts[owner];
    for (std::size_t i = 0; i < 4; ++i) {
        const double expected = 100'000.0 * static_cast<double>(i + 1) / 10.0;
        EXPECT_NEAR(counts[key_of(i)], expected, expected * 0.05) << i;
    }
}

TEST(consistent_hash, RemovingOneOfTenMovesAboutATenth) {
    group all(equal(10));
    group fewer(equal(0));
    for (std::size_t i = 0; i < 10; ++i) {
        if (i != 6) fewer.add(key_of(i));
    }
    const auto before = assign(all.endpoints, 100'000);
    const auto after = assign(fewer.endpoints, 100'000);
    int moved = 0;
    int moved_from_survivors = 0;
    for (std::size_t k = 0; k < before.size(); ++k) {
        if (before[k] == after[k]) continue;
        ++moved;
        if (before[k] != key_of(6)) ++moved_from_survivors;
    }
    const double share = moved / 100'000.0;
    const double survivor_share = moved_from_survivors / 100'000.0;
    RecordProperty("moved_share", std::to_string(share));
    RecordProperty("moved_from_survivors_share", std::to_string(survivor_share));
    std::printf("remove 1 of 10: %.2f%% of keys moved, %.2f%% from surviving endpoints\n",
                share * 100, survivor_share * 100);
    EXPECT_LE(share, 0.12);
    EXPECT_LE(survivor_share, 0.02);
}

TEST(consistent_hash, OrderOfEndpointsDoesNotMatter) {
    group forward(equal(0));
    group backward(equal(0));
    for (std::size_t i = 0; i < 5; ++i) forward.add(key_of(i));
    for (std::size_t i = 5; i-- > 0;) backward.add(key_of(i));
    const auto a = assign(forward.endpoints, 20'000);
    const auto b = assign(backward.endpoints, 20'000);
    int same = 0;
    for (std::size_t k = 0; k < a.size(); ++k) same += a[k] == b[k] ? 1 : 0;
    EXPECT_GE(same, 19'000);  // only Maglev's turn-order noise differs
}

TEST(consistent_hash, UnavailableEndpointMovesOnlyItsOwnKeys) {
    group g(equal(5));
    const auto before = assign(g.endpoints, 20'000);
    g.state(2).healthy = false;
    const auto after = assign(g.endpoints, 20'000);
    std::map<std::string, int> spread;
    for (std::size_t k = 0; k < before.size(); ++k) {
        if (before[k] != key_of(2)) {
            ASSERT_EQ(before[k], after[k]);
        } else {
            ASSERT_NE(after[k], key_of(2));
            ++spread[after[k]];
        }
    }
    // The walk along the table lands on varied endpoints, not all on one neighbour.
    EXPECT_EQ(spread.size(), 4U);
}

TEST(consistent_hash, TriedEndpointGivesTheNextDistinctOne) {
    group g(equal(4));
    auto b = balancer_factory::create(load_balancing::consistent_hash, g.endpoints)->make(1);
    auto ctx = ctx_now();
    ctx.hash = hash_bytes("bob");
    const int first = b->pick(ctx);
    ctx.tried |= std::uint64_t{1} << first;
    const int second = b->pick(ctx);
    ASSERT_GE(second, 0);
    EXPECT_NE(second, first);
    EXPECT_EQ(b->pick(ctx), second);  // and the retry is just as stable
}

TEST(consistent_hash, NoKeyFallsBackToRandom) {
    group g(equal(4));
    auto b = balancer_factory::create(load_balancing::consistent_hash, g.endpoints)->make(1);
    const auto counts = count_picks(*b, 4, 40'000, ctx_now());
    for (int c : counts) EXPECT_NEAR(c, 10'000, 600);
}

// --------------------------------------------------------------------------- hash and key

TEST(hash_bytes, MatchesXxh64ReferenceValues) {
    // Reference values from the xxHash library (XXH64, seed 0): the hash must never change,
    // or sticky cookies and consistent-hash assignments would move on upgrade.
    EXPECT_EQ(hash_bytes(""), 0xEF46DB3751D8E999ULL);
    EXPECT_EQ(hash_bytes("abc"), 0x44BC2CF5AD770999ULL);
    EXPECT_EQ(hash_bytes("10.0.0.1:8080"), 0xCB972177068EB685ULL);
    EXPECT_EQ(hash_bytes("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"), 0xB35E125DD4555E6DULL);
}

struct request_fixture {
    http1::request_head request;
    request_fixture() {
        request.path = "/a/b";
        request.query = "x=1&user=alice&flag&user=bob";
        request.headers = {
            {"X-User", "first"},
            {"x-user", "second"},
            {"Cookie", "theme=dark;  sid=abc123 ; Sid=upper"},
            {"cookie", "other=1; sid=later"},
        };
    }
};

config::hash_key_config key(config::hash_source source, std::string name = {}) {
    return config::hash_key_config{.source = source, .name = std::move(name)};
}

TEST(request_hash, EverySource) {
    request_fixture f;
    using config::hash_source;
    EXPECT_EQ(request_hash(key(hash_source::header, "x-USER"), f.request, "", "/p"), hash_bytes("first"));
    EXPECT_EQ(request_hash(key(hash_source::header, "X-Missing"), f.request, "", "/p"), std::nullopt);
    EXPECT_EQ(request_hash(key(hash_source::cookie, "sid"), f.request, "", "/p"), hash_bytes("abc123"));
    EXPECT_EQ(request_hash(key(hash_source::cookie, "Sid"), f.request, "", "/p"), hash_bytes("upper"));
    EXPECT_EQ(request_hash(key(hash_source::cookie, "other"), f.request, "", "/p"), hash_bytes("1"));
    EXPECT_EQ(request_hash(key(hash_source::cookie, "SID"), f.request, "", "/p"), std::nullopt);
    EXPECT_EQ(request_hash(key(hash_source::client_ip), f.request, "192.0.2.7", "/p"), hash_bytes("192.0.2.7"));
    EXPECT_EQ(request_hash(key(hash_source::client_ip), f.request, "", "/p"), std::nullopt);
    EXPECT_EQ(request_hash(key(hash_source::path), f.request, "", "/norm"), hash_bytes("/norm"));
    EXPECT_EQ(request_hash(key(hash_source::query, "user"), f.request, "", "/p"), hash_bytes("alice"));
    EXPECT_EQ(request_hash(key(hash_source::query, "flag"), f.request, "", "/p"), hash_bytes(""));
    EXPECT_EQ(request_hash(key(hash_source::query, "x"), f.request, "", "/p"), hash_bytes("1"));
    EXPECT_EQ(request_hash(key(hash_source::query, "User"), f.request, "", "/p"), std::nullopt);
    EXPECT_EQ(request_hash(key(hash_source::query, "us"), f.request, "", "/p"), std::nullopt);
    f.request.query = {};
    EXPECT_EQ(request_hash(key(hash_source::query, "user"), f.request, "", "/p"), std::nullopt);
}

TEST(request_hash, MalformedCookiePairsAreSkipped) {
    http1::request_head request;
    request.headers = {{"Cookie", "sid; =x; ;sid=ok"}};
    EXPECT_EQ(request_hash(key(config::hash_source::cookie, "sid"), request, "", "/"), hash_bytes("ok"));
}

}  // namespace
}  // namespace sentinel::upstream
