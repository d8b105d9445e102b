// endpoint_state without sockets: circuit breaker, outlier ejection, peak EWMA, retry budget.
// Time is passed in explicitly, so every test drives the clock itself.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "upstream/endpoint_state.hpp"

namespace sentinel::upstream {
namespace {

using namespace std::chrono_literals;
constexpr auto ok = attempt_result::success;
constexpr auto fail = attempt_result::connect_failure;
constexpr std::chrono::microseconds lat{1000};

config::circuit_breaker_config breaker_cfg(std::uint32_t failures, std::uint32_t probes,
                                           std::uint32_t successes) {
    config::circuit_breaker_config cb;
    cb.failures = failures;
    cb.open_for = 1000ms;
    cb.half_open_probes = probes;
    cb.successes = successes;
    return cb;
}

// Admits and reports one request, as the proxy does.
bool attempt(endpoint_state& e, std::int64_t now, attempt_result r,
             const config::circuit_breaker_config* cb, const config::outlier_config* od = nullptr) {
    if (!e.acquire(now, cb)) return false;
    e.report(now, r, lat, cb, od);
    return true;
}

TEST(breaker, no_config_always_admits) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(attempt(e, 0, fail, nullptr));
    EXPECT_EQ(e.breaker.load(), breaker_state::closed);
    EXPECT_TRUE(e.available(0));
}

TEST(breaker, opens_after_consecutive_failures_and_refuses_while_open) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    auto cb = breaker_cfg(3, 1, 1);
    EXPECT_TRUE(attempt(e, 0, fail, &cb));
    EXPECT_TRUE(attempt(e, 0, fail, &cb));
    EXPECT_TRUE(attempt(e, 0, ok, &cb));  // a success breaks the streak
    EXPECT_TRUE(attempt(e, 0, fail, &cb));
    EXPECT_TRUE(attempt(e, 0, attempt_result::timeout, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::closed);
    EXPECT_TRUE(attempt(e, 10, attempt_result::server_error, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::open);
    EXPECT_EQ(e.open_until.load(), 1010);
    EXPECT_FALSE(e.available(500));
    EXPECT_FALSE(e.acquire(500, &cb));
    EXPECT_FALSE(e.acquire(1009, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::open);
    // Past open_until it is available again: acquire() will turn it half-open.
    EXPECT_TRUE(e.available(1010));
}

TEST(breaker, half_open_limits_concurrent_probes_and_closes_after_successes) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    auto cb = breaker_cfg(1, 2, 3);
    EXPECT_TRUE(attempt(e, 0, attempt_result::reset, &cb));
    ASSERT_EQ(e.breaker.load(), breaker_state::open);

    EXPECT_TRUE(e.acquire(1000, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::half_open);
    EXPECT_TRUE(e.available(1000));
    EXPECT_TRUE(e.acquire(1000, &cb));
    EXPECT_FALSE(e.available(1000));  // both probe slots taken
    EXPECT_FALSE(e.acquire(1000, &cb));
    EXPECT_EQ(e.probes_in_flight.load(), 2u);

    e.report(1001, ok, lat, &cb, nullptr);  // 1 success, one slot free again
    EXPECT_TRUE(e.available(1001));
    EXPECT_TRUE(e.acquire(1001, &cb));
    e.report(1002, ok, lat, &cb, nullptr);
    EXPECT_EQ(e.breaker.load(), breaker_state::half_open);
    e.report(1003, ok, lat, &cb, nullptr);  // third success closes it
    EXPECT_EQ(e.breaker.load(), breaker_state::closed);
    EXPECT_TRUE(e.acquire(1003, &cb));
    EXPECT_TRUE(e.acquire(1003, &cb));
    EXPECT_TRUE(e.acquire(1003, &cb));
}

TEST(breaker, probe_failure_reopens) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    auto cb = breaker_cfg(2, 1, 2);
    attempt(e, 0, fail, &cb);
    attempt(e, 0, fail, &cb);
    ASSERT_EQ(e.breaker.load(), breaker_state::open);
    EXPECT_TRUE(attempt(e, 1000, ok, &cb));  // one success of the two needed
    EXPECT_EQ(e.breaker.load(), breaker_state::half_open);
    EXPECT_TRUE(attempt(e, 1100, fail, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::open);
    EXPECT_EQ(e.open_until.load(), 2100);
    EXPECT_FALSE(e.acquire(2000, &cb));
    // The new half-open period starts from scratch: two successes are needed again.
    EXPECT_TRUE(attempt(e, 2100, ok, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::half_open);
    EXPECT_TRUE(attempt(e, 2101, ok, &cb));
    EXPECT_EQ(e.breaker.load(), breaker_state::closed);
}

TEST(breaker, late_report_of_a_probe_after_reopen_does_not_leak_a_slot) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    auto cb = breaker_cfg(1, 2, 1);
    attempt(e, 0, fail, &cb);
    ASSERT_TRUE(e.acquire(1000, &cb));
    ASSERT_TRUE(e.acquire(1000, &cb));
    e.report(1001, fail, lat, &cb, nullptr);  // re-opens
    e.report(1002, ok, lat, &cb, nullptr);    // the other probe, while open: ignored
    EXPECT_EQ(e.breaker.load(), breaker_state::open);
    EXPECT_EQ(e.probes_in_flight.load(), 0u);
    EXPECT_TRUE(e.acquire(2001, &cb));
    EXPECT_TRUE(e.acquire(2001, &cb));
    EXPECT_FALSE(e.acquire(2001, &cb));
}

TEST(breaker, concurrent_acquire_never_exceeds_probe_limit) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    auto cb = breaker_cfg(1, 3, 1000);
    attempt(e, 0, fail, &cb);
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (e.acquire(5000, &cb)) admitted.fetch_add(1);
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(admitted.load(), 3);
    EXPECT_EQ(e.probes_in_flight.load(), 3u);
}

config::outlier_config outlier_cfg(std::uint32_t failures, std::uint32_t percent) {
    config::outlier_config od;
    od.consecutive_failures = failures;
    od.base_ejection = 1000ms;
    od.max_ejection = 2500ms;
    od.max_ejected_percent = percent;
    return od;
}

TEST(outlier, ejects_after_consecutive_failures_with_growing_period) {
    auto up = std::make_shared<upstream_state>("api");
    up->endpoint_count = 4;
    endpoint_state e("127.0.0.1:1", up, true);
    auto od = outlier_cfg(3, 50);
    for (int i = 0; i < 2; ++i) attempt(e, 0, fail, nullptr, &od);
    attempt(e, 0, ok, nullptr, &od);  // streak broken
    for (int i = 0; i < 2; ++i) attempt(e, 0, fail, nullptr, &od);
    EXPECT_TRUE(e.available(0));
    attempt(e, 0, attempt_result::server_error, nullptr, &od);
    EXPECT_FALSE(e.available(0));
    EXPECT_EQ(e.ejected_until.load(), 1000);
    EXPECT_EQ(up->ejected.load(), 1u);
    EXPECT_EQ(e.ejections.load(), 1u);
    EXPECT_FALSE(e.available(999));
    EXPECT_TRUE(e.available(1000));

    // Expiry is noticed by acquire(), which gives the slot back.
    EXPECT_TRUE(e.acquire(1000, nullptr));
    EXPECT_EQ(e.ejected_until.load(), 0);
    EXPECT_EQ(up->ejected.load(), 0u);
    e.report(1000, fail, lat, nullptr, &od);
    e.report(1000, fail, lat, nullptr, &od);
    e.report(1000, fail, lat, nullptr, &od);
    EXPECT_EQ(e.ejected_until.load(), 3000);  // 2 × base
    EXPECT_TRUE(e.sweep_ejection(3000));
    EXPECT_FALSE(e.sweep_ejection(3000));  // exactly once
    EXPECT_EQ(up->ejected.load(), 0u);
    for (int i = 0; i < 3; ++i) e.report(3000, fail, lat, nullptr, &od);
    EXPECT_EQ(e.ejected_until.load(), 5500);  // 3 × base capped at max_ejection
    EXPECT_EQ(e.ejections.load(), 3u);
}

TEST(outlier, ejection_count_decays_after_good_behaviour) {
    auto up = std::make_shared<upstream_state>("api");
    up->endpoint_count = 2;
    endpoint_state e("127.0.0.1:1", up, true);
    auto od = outlier_cfg(1, 50);
    attempt(e, 0, fail, nullptr, &od);  // ejected until 1000
    ASSERT_EQ(e.ejections.load(), 1u);
    attempt(e, 1500, ok, nullptr, &od);  // too early: decay at 2000
    EXPECT_EQ(e.ejections.load(), 1u);
    attempt(e, 2000, ok, nullptr, &od);
    EXPECT_EQ(e.ejections.load(), 0u);
    attempt(e, 2001, fail, nullptr, &od);
    EXPECT_EQ(e.ejected_until.load(), 3001);  // back to base period
}

TEST(outlier, max_ejected_percent_caps_ejections_and_expiry_restores_the_count) {
    auto up = std::make_shared<upstream_state>("api");
    up->endpoint_count = 4;
    std::vector<std::unique_ptr<endpoint_state>> eps;
    for (int i = 0; i < 4; ++i)
        eps.push_back(std::make_unique<endpoint_state>("127.0.0.1:" + std::to_string(i), up, true));
    auto od = outlier_cfg(1, 50);
    for (auto& e : eps) attempt(*e, 0, fail, nullptr, &od);
    EXPECT_EQ(up->ejected.load(), 2u);
    int available = 0;
    for (auto& e : eps) available += e->available(0);
    EXPECT_EQ(available, 2);

    // Once the first two expire and are noticed, the others may be ejected.
    for (auto& e : eps) e->sweep_ejection(1000);
    EXPECT_EQ(up->ejected.load(), 0u);
    attempt(*eps[2], 1000, fail, nullptr, &od);
    attempt(*eps[3], 1000, fail, nullptr, &od);
    EXPECT_FALSE(eps[2]->available(1000));
    EXPECT_FALSE(eps[3]->available(1000));
    EXPECT_EQ(up->ejected.load(), 2u);

    // An endpoint removed while ejected gives its slot back.
    eps[3].reset();
    EXPECT_EQ(up->ejected.load(), 1u);
}

// At shutdown (or a reload) the group holding the upstream state may go before the last
// holder of an ejected endpoint's state (the health checker, a worker's old snapshot): the
// endpoint's destructor still gives its slot back, to a live owner.
TEST(outlier, an_ejected_endpoint_keeps_its_upstream_state_alive) {
    auto up = std::make_shared<upstream_state>("api");
    up->endpoint_count = 2;
    auto e = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    auto od = outlier_cfg(1, 50);
    attempt(*e, 0, fail, nullptr, &od);
    ASSERT_EQ(up->ejected.load(), 1u);
    std::weak_ptr<upstream_state> owner = up;
    up.reset();
    ASSERT_FALSE(owner.expired());
    EXPECT_EQ(owner.lock()->ejected.load(), 1u);
    e.reset();  // under ASan, a use after free before the fix
    EXPECT_TRUE(owner.expired());
}

TEST(outlier, small_groups_may_eject_one_but_never_all) {
    {
        auto up = std::make_shared<upstream_state>("two");
        up->endpoint_count = 2;
        endpoint_state a("a", up, true), b("b", up, true);
        auto od = outlier_cfg(1, 10);  // 10% of 2 rounds down to 0: still one may go
        attempt(a, 0, fail, nullptr, &od);
        attempt(b, 0, fail, nullptr, &od);
        EXPECT_FALSE(a.available(0));
        EXPECT_TRUE(b.available(0));
    }
    {
        auto up = std::make_shared<upstream_state>("one");
        up->endpoint_count = 1;
        endpoint_state a("a", up, true);
        auto od = outlier_cfg(1, 100);
        attempt(a, 0, fail, nullptr, &od);
        EXPECT_TRUE(a.available(0));
        EXPECT_EQ(up->ejected.load(), 0u);
    }
    {
        auto up = std::make_shared<upstream_state>("off");
        up->endpoint_count = 4;
        endpoint_state a("a", up, true);
        auto od = outlier_cfg(1, 0);
        attempt(a, 0, fail, nullptr, &od);
        EXPECT_TRUE(a.available(0));
    }
}

TEST(ewma, peak_is_taken_at_once_and_lower_samples_decay_in) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    EXPECT_EQ(e.peak_ewma_cost(0), 0.0);  // unmeasured and idle: cheapest
    e.in_flight = 1;
    EXPECT_GT(e.peak_ewma_cost(0), 1e6);  // unmeasured but busy: wait for a first answer
    e.in_flight = 0;

    e.report(0, ok, std::chrono::microseconds(1000), nullptr, nullptr);
    EXPECT_EQ(e.ewma_us.load(), 1000u);
    e.report(10, ok, std::chrono::microseconds(5000), nullptr, nullptr);
    EXPECT_EQ(e.ewma_us.load(), 5000u);  // peak: at once
    e.report(10, ok, std::chrono::microseconds(100), nullptr, nullptr);
    EXPECT_EQ(e.ewma_us.load(), 5000u);  // no time passed: a fast sample weighs nothing
    // After one time constant the fast sample takes 1 - 1/e of the weight.
    e.report(10 + endpoint_state::ewma_decay_ms, ok, std::chrono::microseconds(100), nullptr,
             nullptr);
    const double expected = 5000 / std::exp(1.0) + 100 * (1 - 1 / std::exp(1.0));
    EXPECT_NEAR(static_cast<double>(e.ewma_us.load()), expected, 1.0);
    // Failures do not feed the latency average.
    const auto before = e.ewma_us.load();
    e.report(20'000, attempt_result::timeout, std::chrono::microseconds(1'000'000), nullptr,
             nullptr);
    EXPECT_EQ(e.ewma_us.load(), before);
}

TEST(ewma, cost_grows_with_in_flight_and_decays_while_idle) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    e.report(0, ok, std::chrono::microseconds(2000), nullptr, nullptr);
    EXPECT_DOUBLE_EQ(e.peak_ewma_cost(0), 2000.0);
    e.in_flight = 3;
    EXPECT_DOUBLE_EQ(e.peak_ewma_cost(0), 8000.0);
    EXPECT_NEAR(e.peak_ewma_cost(endpoint_state::ewma_decay_ms), 8000.0 / std::exp(1.0), 1e-6);
    EXPECT_LT(e.peak_ewma_cost(100'000), 1.0);
}

TEST(ewma, concurrent_updates_stay_within_sample_range) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; ++i)
                e.report(i, ok, std::chrono::microseconds(100 + 100 * t), nullptr, nullptr);
        });
    for (auto& t : threads) t.join();
    EXPECT_GE(e.ewma_us.load(), 100u);
    EXPECT_LE(e.ewma_us.load(), 400u);
}

TEST(retry_budget, min_retries_then_percent_of_in_flight) {
    auto up = std::make_shared<upstream_state>("api");
    config::retry_budget_config budget{.percent = 20, .min_retries = 2};
    EXPECT_TRUE(up->try_begin_retry(budget));
    EXPECT_TRUE(up->try_begin_retry(budget));
    EXPECT_FALSE(up->try_begin_retry(budget));  // min 2, and 20% of 0 is 0
    up->in_flight = 20;                          // 20% = 4
    EXPECT_TRUE(up->try_begin_retry(budget));
    EXPECT_TRUE(up->try_begin_retry(budget));
    EXPECT_FALSE(up->try_begin_retry(budget));
    EXPECT_EQ(up->retries_in_flight.load(), 4);
    up->end_retry();
    EXPECT_TRUE(up->try_begin_retry(budget));
}

TEST(retry_budget, concurrent_reservations_respect_the_budget) {
    auto up = std::make_shared<upstream_state>("api");
    up->in_flight = 100;
    config::retry_budget_config budget{.percent = 10, .min_retries = 0};
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (up->try_begin_retry(budget)) granted.fetch_add(1);
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(granted.load(), 10);
}

TEST(health_record, flips_after_thresholds) {
    auto up = std::make_shared<upstream_state>("api");
    endpoint_state e("127.0.0.1:1", up, true);
    config::health_check_config hc;
    hc.healthy = 2;
    hc.unhealthy = 3;
    EXPECT_FALSE(e.record_check(false, hc));
    EXPECT_FALSE(e.record_check(false, hc));
    EXPECT_TRUE(e.record_check(false, hc));
    EXPECT_FALSE(e.healthy.load());
    EXPECT_FALSE(e.available(0));
    EXPECT_FALSE(e.record_check(false, hc));
    EXPECT_FALSE(e.record_check(true, hc));
    EXPECT_FALSE(e.record_check(false, hc));  // streak broken
    EXPECT_FALSE(e.record_check(true, hc));
    EXPECT_TRUE(e.record_check(true, hc));
    EXPECT_TRUE(e.healthy.load());
    EXPECT_FALSE(e.record_check(true, hc));
}

}  // namespace
}  // namespace sentinel::upstream
