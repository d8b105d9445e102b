// Live state of upstream endpoints, shared by every worker and the health checker.
//
// Snapshots are rebuilt on every reload and DNS change, but an endpoint's health, breaker and
// load figures must survive both: they live here, owned by the upstream_registry and keyed
// by (upstream id, endpoint "ip:port"), and each snapshot's endpoints point at them.
//
// Everything is lock-free atomics with relaxed ordering: the figures are advisory (a worker
// that reads a breaker state one request late is harmless), and a lock here would be taken
// by every request on every worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config/model/config.hpp"

namespace sentinel::upstream {

// Milliseconds of the steady clock: cheap to store in an atomic and to compare.
std::int64_t now_ms();

enum class breaker_state : std::uint8_t { closed, open, half_open };

// How a request sent to an endpoint ended, as far as health is concerned.
enum class attempt_result : std::uint8_t {
    success,          // a response below 500 (or 5xx that passive checks ignore)
    connect_failure,  // refused, unreachable, connect timeout
    timeout,          // no response head in time
    reset,            // connection closed or broken before a complete response head
    server_error,     // a 5xx response
};

struct upstream_state;

struct alignas(64) endpoint_state {
    endpoint_state(std::string key, std::shared_ptr<upstream_state> owner, bool start_healthy);
    // Gives back the owner's `ejected` slot if this endpoint leaves while ejected, so the
    // ejection cap is not eaten by endpoints that no longer exist.
    ~endpoint_state();
    endpoint_state(const endpoint_state&) = delete;
    endpoint_state& operator=(const endpoint_state&) = delete;

    const std::string key;   // "ip:port" (or "[v6]:port")
    // Shared: an endpoint state outlives its snapshot's group in the health checker or a
    // worker's last snapshot, and its destructor still counts in the owner.
    const std::shared_ptr<upstream_state> owner_ptr;
    upstream_state& owner;  // *owner_ptr

    // ---- active health: written by the health checker thread only (and read by all).
    std::atomic<bool> healthy;
    std::uint32_t check_successes = 0;  // consecutive, health-checker thread only
    std::uint32_t check_failures = 0;

    // ---- passive outlier detection.
    std::atomic<std::uint32_t> consecutive_failures{0};
    std::atomic<std::int64_t> ejected_until{0};  // now_ms() before this: ejected
    std::atomic<std::uint32_t> ejections{0};     // times ejected (the period grows with it)
    // `ejections` drops by one on a success at or after this time, which then moves on by
    // base_ejection: an endpoint that behaves again earns back short ejection periods.
    std::atomic<std::int64_t> ejection_decay_at{0};

    // ---- circuit breaker.
    std::atomic<breaker_state> breaker{breaker_state::closed};
    std::atomic<std::uint32_t> breaker_failures{0};   // consecutive, while closed
    std::atomic<std::int64_t> open_until{0};          // open → half-open at this time
    std::atomic<std::uint32_t> probes_in_flight{0};   // half-open trial requests
    std::atomic<std::uint32_t> probe_successes{0};
    // half_open_probes, stored by acquire() when it moves the breaker to half-open, so that
    // available() (which gets no config) can tell whether a probe slot is free.
    std::atomic<std::uint32_t> probe_limit{1};

    // ---- load, for the balancers and /upstreams.
    std::atomic<std::int64_t> in_flight{0};      // requests sent here and not finished
    std::atomic<std::uint64_t> ewma_us{0};       // latency EWMA (response head), microseconds; 0 = no sample
    std::atomic<std::uint64_t> ewma_stamp_ms{0};  // when ewma_us was last updated

    // Whether a new request may be sent here now: healthy, not ejected, breaker not open
    // (half-open counts as available when a probe slot is free; open past open_until counts
    // as available since acquire() will move it to half-open). No side effects.
    bool available(std::int64_t now) const;

    // Called just before a request is sent here. Moves an expired open breaker to half-open
    // and reserves a probe slot when half-open; false = the breaker refuses the request.
    // `cb` null = no circuit breaker configured (always true).
    bool acquire(std::int64_t now, const config::circuit_breaker_config* cb);

    // The outcome of a request that acquire() admitted. Updates the breaker (releasing a
    // probe slot), outlier detection (ejecting the endpoint when the consecutive failure
    // threshold is crossed and the upstream's ejection cap allows), and the latency EWMA
    // (on success, with `latency` = time to the response head). Null configs = feature off.
    // Every result but success counts as a failure for both. Details:
    // - Half-open: any report releases a probe slot (report() cannot tell whether its request
    //   was a probe, so a request admitted while closed may free one early: at worst one
    //   extra probe); successes close the breaker after cb->successes, any failure re-opens.
    // - Ejection period: min(base_ejection × (ejections + 1), max_ejection). The cap allows
    //   max_ejected_percent of endpoint_count ejected at once, rounded down but at least one
    //   when the percent is > 0, and never all endpoints (a lone endpoint is never ejected).
    // - A success at least base_ejection after an ejection ended takes one off `ejections`,
    //   and so on once per further base_ejection.
    void report(std::int64_t now, attempt_result result, std::chrono::microseconds latency,
                const config::circuit_breaker_config* cb, const config::outlier_config* od);

    // A request that acquire() admitted ended without telling anything about the endpoint
    // (the client went away, a cap refused it): gives back a half-open probe slot, if held.
    void release(const config::circuit_breaker_config* cb);

    // For the health checker: records one check result and flips `healthy` after the
    // configured number of consecutive results. Returns true when `healthy` changed.
    bool record_check(bool ok, const config::health_check_config& hc);

    // Ends an ejection whose time has passed: clears ejected_until and gives back the
    // owner's `ejected` slot (exactly once, whoever notices first). acquire() and report()
    // call it; the health checker calls it every 100 ms so the owner's count also drops for
    // endpoints that get no traffic. Returns true when this call ended the ejection.
    bool sweep_ejection(std::int64_t now);

    // Peak-EWMA cost: the EWMA latency (µs) decayed towards 0 with time since the last sample,
    // times (in_flight + 1). Lower is better. An endpoint without a sample costs 0 while
    // nothing is in flight to it, so a new endpoint gets the next request at once; with
    // requests in flight and still no answer it costs `unmeasured_penalty` × (in_flight + 1),
    // so it is not flooded before its first response tells us how fast it is.
    double peak_ewma_cost(std::int64_t now) const;
    static constexpr double unmeasured_penalty = 1e9;  // µs: far above any real latency

    // Time constant of the latency EWMA and of its decay while idle.
    static constexpr std::int64_t ewma_decay_ms = 10'000;
};

// Figures of one upstream shared by all workers: the caps and the retry budget count here.
struct alignas(64) upstream_state {
    explicit upstream_state(std::string id_) : id(std::move(id_)) {}
    const std::string id;
    std::atomic<std::int64_t> connections{0};  // open upstream connections (pooled included)
    std::atomic<std::int64_t> pending{0};      // requests waiting on a connect
    std::atomic<std::int64_t> in_flight{0};    // requests in flight to this upstream
    std::atomic<std::int64_t> retries_in_flight{0};
    std::atomic<std::uint32_t> ejected{0};     // endpoints currently ejected (outlier detection)
    std::atomic<std::uint32_t> endpoint_count{0};  // current endpoints, for the ejection cap

    // Retry budget: a retry may start when retries in flight stay within
    // max(min_retries, percent% of in_flight). Reserves a slot on success (release with
    // end_retry()).
    bool try_begin_retry(const config::retry_budget_config& budget);
    void end_retry() { retries_in_flight.fetch_sub(1, std::memory_order_relaxed); }
};

}  // namespace sentinel::upstream
