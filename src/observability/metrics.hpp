// Per-worker counters, summed at scrape time (DESIGN §3: no shared atomics on the data path).
// Each worker_metrics is written only by its own worker thread; the admin thread reads it.
// Relaxed load+store instead of fetch_add: a single writer needs no locked instruction.
//
// Labelled families (per listener, route, upstream): each worker owns a labelled_metrics
// whose slots are keyed by the *id strings* from the config, not by snapshot indices, so a
// reload that reorders, adds or removes ids never moves a total to another series or sends a
// counter backwards. Slots are created on first use (or when a snapshot is published, so
// configured ids show up at zero) and never removed: an id that disappears keeps its totals
// until restart, bounded by the ids ever configured. Only slot creation takes the block's
// mutex (the scraper takes it to walk the slots); counting goes through a slot pointer the
// worker caches per snapshot (proxy/worker_context), as lock-free as the plain counters.
// Label values are config ids, a fixed method set and status classes: never raw paths.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace sentinel::observability {

class counter {
public:
    void inc(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class gauge {
public:
    void add(std::int64_t n) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// Why Sentinel answered locally instead of relaying an upstream response.
enum class local_reply_reason : std::uint8_t {
    bad_request, uri_too_long, headers_too_large, body_too_large, not_implemented,
    version_not_supported, no_route, client_header_timeout, client_body_timeout,
    upstream_connect_failure, upstream_connect_timeout, upstream_response_timeout,
    upstream_bad_response, upstream_unavailable, max_connections, fixed_response,
    builtin, upstream_overloaded, redirect, agent_block, agent_redirect, agent_unavailable,
    upgrade_required, websocket_max_connections, count_
};
const char* to_string(local_reply_reason reason);

enum class timeout_kind : std::uint8_t {
    client_header, client_body_idle, keepalive_idle, upstream_connect,
    upstream_response_header, upstream_body_idle, websocket_idle, count_
};
const char* to_string(timeout_kind kind);

// Why a request was refused before reaching an endpoint (each answered 503).
enum class upstream_refusal : std::uint8_t {
    no_available_endpoint,  // every endpoint down, ejected, breaker-open or already tried
    max_in_flight, max_pending, max_connections, count_
};
const char* to_string(upstream_refusal reason);

// Why a TLS handshake failed.
enum class tls_failure : std::uint8_t {
    timeout, client_closed, protocol_version, no_shared_cipher, client_certificate, other, count_
};
const char* to_string(tls_failure reason);

// Why a security decision refused a request or a connection (label of
// sentinel_audit_events_total and the `reason` of an audit-log entry). The last three are
// for the auth, rate-limit and agent phases that call audit() (docs/architecture/observability.md).
enum class audit_reason : std::uint8_t {
    malformed_request, request_smuggling, uri_too_long, headers_too_large, path_traversal,
    client_certificate, auth_failure, rate_limited, agent_decision, http2_abuse, count_
};
const char* to_string(audit_reason reason);

// Why an HTTP/2 connection was ended with GOAWAY(ENHANCE_YOUR_CALM), in h2::abuse's order
// (sentinel_http2_abuse_total{kind}).
inline constexpr std::array<const char*, 7> http2_abuse_kinds = {
    "rapid_reset", "continuation_flood", "settings_flood", "ping_flood",
    "empty_frames", "hpack_bomb", "too_many_streams"};

// Request duration buckets in seconds (Prometheus `le` bounds).
inline constexpr std::array<double, 12> duration_buckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

struct histogram {
    std::array<counter, duration_buckets.size() + 1> buckets;  // last = +Inf
    counter count;
    counter sum_micros;
    void observe(std::chrono::microseconds elapsed) noexcept;
};

// Request methods as a bounded label: anything else is "other".
enum class http_method : std::uint8_t { get, head, post, put, delete_, patch, options, other, count_ };
http_method method_of(std::string_view method) noexcept;
const char* to_string(http_method method);

// Status classes as a label: index 1..5 = "1xx".."5xx", 0 = "other" (no status, or out of range).
inline constexpr std::size_t status_classes = 6;
inline std::size_t status_class_of(int status) noexcept {
    return status >= 100 && status < 600 ? static_cast<std::size_t>(status / 100) : 0;
}
const char* status_class_name(std::size_t index);

// Why an upstream try failed (per-upstream label of sentinel_upstream_try_failures_total).
enum class upstream_try_failure : std::uint8_t {
    connect_failure, connect_timeout, timeout, reset, bad_response, refused, count_
};
const char* to_string(upstream_try_failure reason);

struct listener_slot {
    counter request_bytes;    // downstream request bytes, counted when a request finishes
    counter response_bytes;   // downstream response bytes, likewise
    gauge active_http;        // open downstream connections on a plain listener
    gauge active_https;       // ... on a TLS listener
};

// Why a WebSocket upgrade did not become a tunnel (sentinel_websocket_upgrades_refused_total).
// The first six are the handshake checks (400; unsupported_version 426), then the route's cap
// (503), the upstream's 101 failing its checks (502), and a WebSocket upgrade on a route
// without `websocket` (forwarded as a plain request, without its Upgrade).
enum class websocket_refusal : std::uint8_t {
    method, http_version, connection, key, version, unsupported_version,
    max_connections, upstream_handshake, not_enabled, count_
};
const char* to_string(websocket_refusal reason);

struct route_slot {
    histogram duration;
    gauge websocket_active;  // WebSocket tunnels open now (this worker's)
    std::array<counter, static_cast<std::size_t>(websocket_refusal::count_)> websocket_refused;
};

struct upstream_slot {
    histogram request_duration;          // final try's start → response relayed
    histogram connect_duration;          // TCP connect (+ TLS handshake) of new connections
    histogram response_header_duration;  // try start → response head received
    std::array<counter, status_classes> responses;  // response heads received, by class
    std::array<counter, static_cast<std::size_t>(upstream_try_failure::count_)> try_failures;
};

// What became of one agent consultation (sentinel_agent_decisions_total{outcome}).
enum class agent_outcome : std::uint8_t {
    allow, block, redirect, timeout, error, shed, breaker_open, unavailable, count_
};
const char* to_string(agent_outcome outcome);

// Why an agent connection was closed as broken (sentinel_agent_protocol_errors_total{reason}).
enum class agent_protocol_error : std::uint8_t {
    bad_frame, bad_payload, unexpected_frame, bad_decision, handshake, count_
};
const char* to_string(agent_protocol_error reason);

struct agent_slot {
    std::array<counter, static_cast<std::size_t>(agent_outcome::count_)> decisions;
    counter fail_open;         // requests let through because the agent could not answer
    histogram latency;         // event sent → decision received
    std::array<counter, static_cast<std::size_t>(agent_protocol_error::count_)> protocol_errors;
    counter late_decisions;    // decisions for streams already cancelled (dropped)
    counter cancels;           // CANCEL frames sent
    counter connects;          // connections established (handshake done)
    counter connect_failures;  // connects or handshakes that failed
    gauge connections;         // connections ready now
    gauge in_flight;           // streams open now
};

// One worker's labelled slots (see the header comment). Lookups and counting are the
// worker's; creation locks `mutex_` because the scraper may be walking the maps.
class labelled_metrics {
public:
    listener_slot& listener(std::string_view id);
    route_slot& route(std::string_view id);
    upstream_slot& upstream(std::string_view id);
    agent_slot& agent(std::string_view id);
    counter& requests(std::string_view listener, std::string_view route, http_method method,
                      std::size_t status_class);

    // Scraper side: calls fn(id, slot) for every slot, under the mutex.
    template <class F> void each_listener(F&& fn) const { each(listeners_, fn); }
    template <class F> void each_route(F&& fn) const { each(routes_, fn); }
    template <class F> void each_upstream(F&& fn) const { each(upstreams_, fn); }
    template <class F> void each_agent(F&& fn) const { each(agents_, fn); }
    // fn(listener, route, method, status_class, counter)
    template <class F> void each_request(F&& fn) const {
        std::lock_guard lock(mutex_);
        for (const auto& [key, c] : requests_)
            fn(std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), *c);
    }

private:
    template <class Map, class F> void each(const Map& map, F& fn) const {
        std::lock_guard lock(mutex_);
        for (const auto& [id, slot] : map) fn(id, *slot);
    }
    template <class Slot>
    Slot& find_or_create(std::map<std::string, Slot*, std::less<>>& map, std::deque<Slot>& store,
                         std::string_view id);

    using request_key = std::tuple<std::string, std::string, http_method, std::size_t>;
    mutable std::mutex mutex_;
    std::deque<listener_slot> listener_store_;  // deques: slot addresses never move
    std::deque<route_slot> route_store_;
    std::deque<upstream_slot> upstream_store_;
    std::deque<agent_slot> agent_store_;
    std::deque<counter> request_store_;
    std::map<std::string, listener_slot*, std::less<>> listeners_;
    std::map<std::string, route_slot*, std::less<>> routes_;
    std::map<std::string, upstream_slot*, std::less<>> upstreams_;
    std::map<std::string, agent_slot*, std::less<>> agents_;
    std::map<request_key, counter*> requests_;
};

struct worker_metrics {
    counter connections_accepted;
    counter connections_rejected_max;
    gauge connections_active;
    std::array<counter, 6> requests_by_class;  // index 1..5 = 1xx..5xx, 0 = other
    std::array<counter, static_cast<std::size_t>(local_reply_reason::count_)> local_replies;
    std::array<counter, static_cast<std::size_t>(timeout_kind::count_)> timeouts;
    counter bytes_received;  // downstream request bytes (heads + bodies)
    counter bytes_sent;      // downstream response bytes
    counter upstream_requests;
    counter upstream_connect_failures;
    counter upstream_connections_created;
    counter upstream_connections_reused;
    gauge upstream_pool_idle;  // idle pooled connections, refreshed by the 100 ms sweep
    counter upstream_stale_retries;  // reused connection failed before any byte: retried fresh
    counter upstream_bad_responses;
    counter upstream_tls_handshakes_full;     // upstream TLS handshakes that did not resume
    counter upstream_tls_handshakes_resumed;  // upstream TLS handshakes that resumed a session
    counter upstream_tls_handshake_failures;  // verification, protocol or timeout failures
    counter upstream_retries;                  // tries after the first (stale retries excluded)
    counter upstream_retry_budget_exhausted;   // a retry was due but the budget refused it
    counter upstream_breaker_refusals;         // an endpoint was skipped: its breaker refused
    std::array<counter, static_cast<std::size_t>(upstream_refusal::count_)> upstream_refused;
    counter proxy_protocol_errors;
    counter tls_handshakes_tls12;
    counter tls_handshakes_tls13;
    counter tls_resumed;  // handshakes that resumed a session (ticket or cache)
    std::array<counter, static_cast<std::size_t>(tls_failure::count_)> tls_failures;
    counter access_log_dropped_lines;
    counter access_log_sampled_out;  // requests not logged because sample-percent skipped them
    counter audit_log_dropped_lines;
    std::array<counter, static_cast<std::size_t>(audit_reason::count_)> audit_events;
    counter http2_connections;
    gauge http2_connections_active;
    counter http2_streams;
    counter http2_streams_refused;
    std::array<counter, http2_abuse_kinds.size()> http2_abuse;  // indexed like h2::abuse
    labelled_metrics labelled;

    void count_status(int status) noexcept {
        requests_by_class[status >= 100 && status < 600 ? status / 100 : 0].inc();
    }
    void count_local(local_reply_reason reason) noexcept {
        local_replies[static_cast<std::size_t>(reason)].inc();
    }
    void count_tls_handshake(std::string_view version, bool resumed) noexcept {
        (version == "TLSv1.3" ? tls_handshakes_tls13 : tls_handshakes_tls12).inc();
        if (resumed) tls_resumed.inc();
    }
    void count_tls_failure(tls_failure reason) noexcept {
        tls_failures[static_cast<std::size_t>(reason)].inc();
    }
    void count_timeout(timeout_kind kind) noexcept {
        timeouts[static_cast<std::size_t>(kind)].inc();
    }
};

// Process-wide values owned by the main thread.
struct process_metrics {
    std::atomic<std::uint64_t> reloads_success{0};
    std::atomic<std::uint64_t> reloads_failure{0};
    std::atomic<double> config_load_time{0};  // unix seconds of the active config's load
    std::string config_hash;                  // guarded by the main thread (only it renders)
    std::chrono::system_clock::time_point start_time = std::chrono::system_clock::now();
    std::uint32_t workers = 0;
    std::uint64_t listeners = 0;
};

// Figures of the active configuration, filled by the caller at scrape time (main thread).
struct config_figures {
    std::uint64_t routes = 0;
    std::uint64_t upstreams = 0;
    const char* version = "";
};

// Prometheus text exposition (version 0.0.4): every family with HELP/TYPE, even at zero.
std::string render_prometheus(const std::vector<const worker_metrics*>& workers,
                              const process_metrics& process, const config_figures& figures = {});

}  // namespace sentinel::observability
