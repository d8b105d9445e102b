// Per-worker proxy state. A worker is one thread with one io_context; everything here is
// touched only by that thread, except `metrics` (read by the scraper) and the global
// connection counter. Connections never migrate between workers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/channel.hpp"
#include "common/xoshiro.hpp"
#include "observability/metrics.hpp"
#include "proxy/snapshot.hpp"
#include "runtime/deadline_wheel.hpp"
#include "proxy/h2_upstream.hpp"
#include "upstream/connection_pool.hpp"

namespace sentinel::proxy {

// A downstream connection as the worker sees it: registered for drain and counted.
// Intrusive links so registering costs no allocation, whatever the connection count.
class registered_connection {
public:
    virtual ~registered_connection() = default;
    // Drain: close now if idle between requests, else close after the current response.
    virtual void drain() = 0;
    // Shutdown after graceful-shutdown elapsed: end every pending operation now.
    virtual void abort() = 0;

private:
    friend class worker_context;
    registered_connection* prev_ = nullptr;
    registered_connection* next_ = nullptr;
    observability::gauge* listener_gauge_ = nullptr;  // per-listener active gauge, dropped in remove()
};

// Process-wide figures shared by the workers.
struct shared_state {
    std::atomic<std::uint64_t> connections{0};  // open downstream connections, all workers
    std::chrono::system_clock::time_point start_time = std::chrono::system_clock::now();
    std::uint32_t workers = 1;
    const std::vector<const observability::worker_metrics*>* all_metrics = nullptr;
};

// xoshiro256** seeded from the OS: request ids must be unpredictable enough not to collide,
// not cryptographic (they are correlation ids, never secrets).
class id_generator {
public:
    id_generator();
    // 32 lowercase hex characters.
    void next(char out[32]);
    std::uint64_t next64() { return rng_.next(); }

private:
    xoshiro256ss rng_;
};

class worker_context {
public:
    worker_context(boost::asio::io_context& ctx, std::uint32_t index, shared_state& shared);
    ~worker_context();

    boost::asio::io_context& io() { return ctx_; }
    std::uint32_t index() const { return index_; }
    const std::shared_ptr<const snapshot>& current() const { return snapshot_; }
    void publish(std::shared_ptr<const snapshot> snap);

    // Connection admission: false when a global or per-worker limit is reached.
    bool admit();
    void release();
    void add(registered_connection* conn);
    void remove(registered_connection* conn);
    std::size_t connection_count() const { return connection_count_; }
    // Counts a registered connection in its listener's active gauge until remove().
    void count_on_listener(registered_connection* conn, observability::gauge& active);

    // Stop keeping connections alive: idle ones close now, busy ones after their response.
    void drain();
    bool draining() const { return draining_; }
    // Final stop: aborts every connection, closes the pool and stops housekeeping, so the
    // io_context runs out of work and every coroutine ends before this object goes away.
    void shutdown();

    // Connection deadlines: one wheel and one timer per worker (see runtime/deadline_wheel.hpp).
    void schedule_deadline(runtime::deadline_wheel::entry& e, std::chrono::steady_clock::time_point at);
    void cancel_deadline(runtime::deadline_wheel::entry& e) { deadlines_.cancel(e); }

    // Labelled metric slots (observability/metrics.hpp). For the current snapshot they come
    // from tables indexed like the snapshot, built at publish; a request still on an older
    // snapshot (in flight across a reload) takes the slower lookup by id.
    observability::listener_slot& listener_metrics(const snapshot& snap, const config::listener_config* listener);
    observability::route_slot& route_metrics(const snapshot& snap, const config::route_config* route);
    observability::upstream_slot& upstream_metrics(const snapshot& snap, const upstream::upstream_group& group);
    observability::counter& request_counter(const snapshot& snap, const config::listener_config* listener,
                                            const config::route_config* route, std::string_view method,
                                            int status);

    // Appends a finished access-log line; batches are flushed at 32 KiB or every 100 ms.
    std::string& log_buffer() { return log_batch_; }
    void log_line_done();
    // Audit-log lines (observability/audit: rare) go through a batch of their own, flushed
    // with the access log's; dropped lines are counted in audit_log_dropped_lines.
    std::string& audit_buffer() { return audit_batch_; }
    void flush_log();
    // Tracing: spans of sampled requests are encoded into a per-worker batch and handed to
    // the snapshot's exporter at batch-size spans or every flush-interval (dropped and counted
    // when its queue is full).
    void add_span(const observability::tracing::span_data& span);
    void flush_spans();
    // Whether a request is logged at `percent` sampling: a cheap per-worker PRNG draw.
    bool sample(std::uint32_t percent);

    // This worker's channel to agent `index` of `snap` (cfg->agents order); null when the
    // agent is gone (a reload removed or changed it while this request was on the old one).
    std::shared_ptr<agent::channel> agent_channel(const snapshot& snap, std::uint32_t index);

    upstream::connection_pool pool;
    h2_upstream_pool h2_upstreams;  // multiplexed connections to `protocol "h2"` upstreams
    observability::worker_metrics metrics;
    id_generator ids;
    shared_state& shared;

private:
    void schedule_housekeeping();
    void tick_deadlines();
    void build_metric_slots();
    // Keeps a channel per agent of the current snapshot: reused while its settings key is
    // unchanged, created (and connected) when new, retired (drained) when no longer used.
    void update_agent_channels();

    // Slot tables for snapshot_ (see listener_metrics()); rebuilt by publish().
    struct metric_slots {
        const snapshot* snap = nullptr;
        std::vector<observability::listener_slot*> listeners;  // by cfg->listeners index
        std::vector<observability::route_slot*> routes;        // by cfg->routes index + 1; 0 = unrouted
        std::vector<observability::upstream_slot*> upstreams;  // by snap->upstreams index
        // (listener index + 1, route index + 1, method, status class) packed, created on first use.
        std::unordered_map<std::uint64_t, observability::counter*> requests;
    } slots_;

    boost::asio::io_context& ctx_;
    std::uint32_t index_;
    std::shared_ptr<const snapshot> snapshot_;
    std::unordered_map<std::string, std::shared_ptr<agent::channel>> agent_channels_;  // by settings key
    std::vector<std::shared_ptr<agent::channel>> agent_table_;  // current snapshot's, by cfg->agents index
    registered_connection* connections_ = nullptr;  // head of the intrusive list
    std::size_t connection_count_ = 0;
    bool draining_ = false;
    bool shut_down_ = false;
    std::string log_batch_;
    std::shared_ptr<observability::access_log> log_target_;  // where log_batch_ goes
    std::string span_batch_;  // encoded spans (observability/tracing.hpp)
    std::uint32_t span_count_ = 0;
    std::shared_ptr<observability::tracing::exporter> span_target_;  // where span_batch_ goes
    std::chrono::steady_clock::time_point spans_flushed_{};
    std::string audit_batch_;
    std::shared_ptr<observability::access_log> audit_target_;  // where audit_batch_ goes
    std::uint64_t sample_state_ = 0x9E3779B97F4A7C15ull;  // xorshift64; seeded in the constructor
    boost::asio::steady_timer housekeeping_;
    runtime::deadline_wheel deadlines_;
    boost::asio::steady_timer deadline_timer_;
    bool deadline_timer_armed_ = false;
};

}  // namespace sentinel::proxy
