// Per-worker pool of idle upstream connections, keyed by endpoint. Not thread-safe by design:
// each worker owns one, so taking and returning a connection costs no lock.
//
// A connection idle for more than one sweep period (100 ms) gets a one-byte read armed: if
// the upstream closes it (or sends stray bytes), the read completes and the connection is
// dropped, so a request is rarely sent on a dead connection. Hot connections, reused within
// the period, are never armed: arming costs a syscall (Asio's speculative read or its
// epoll_ctl for a wait), which would be one more per request. A connection the upstream
// closed within that window is caught on use (the stale-connection retry).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/byte_buffer.hpp"
#include "config/model/config.hpp"
#include "upstream/endpoint_state.hpp"

namespace sentinel::upstream {

struct pooled_connection {
    // The buffer starts at 16 KiB (a response head and a small body) and grows up to
    // `max_buffer` when reads fill it (large bodies, tunnels).
    pooled_connection(boost::asio::io_context& ctx, std::size_t max_buffer)
        : socket(ctx), buffer(16 * 1024, max_buffer) {}
    ~pooled_connection() {
        if (upstream) upstream->connections.fetch_sub(1, std::memory_order_relaxed);
    }
    pooled_connection(const pooled_connection&) = delete;
    pooled_connection& operator=(const pooled_connection&) = delete;
    // Counts this connection in the upstream's `connections` (max-connections) until it
    // closes. Call once the connection is established.
    void count_in(std::shared_ptr<upstream_state> owner) {
        upstream = std::move(owner);
        upstream->connections.fetch_add(1, std::memory_order_relaxed);
    }
    boost::asio::ip::tcp::socket socket;
    byte_buffer buffer;  // response bytes; empty whenever the connection is idle
    std::string key;
    std::chrono::steady_clock::time_point idle_since;
    std::chrono::milliseconds idle_timeout{0};
    std::uint64_t requests = 0;  // requests served on this connection
    char probe = 0;        // target of the idle watch's one-byte read
    bool watched = false;  // the idle watch is armed
    std::uint64_t idle_epoch = 0;  // set by give_back(); tells a stale idle-watch from a live one
    std::shared_ptr<upstream_state> upstream;  // whose connection count includes this one
};

class connection_pool {
public:
    explicit connection_pool(boost::asio::io_context& ctx) : ctx_(ctx) {}
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    // The most recently used idle connection to `key`, or null.
    std::unique_ptr<pooled_connection> take(const std::string& key);
    // Keeps `conn` for reuse unless the endpoint already has `pool.max_idle` idle ones.
    void give_back(std::unique_ptr<pooled_connection> conn, const config::pool_config& pool);
    // Closes connections idle longer than their timeout and arms the idle watch on the rest.
    // Called every 100 ms by the worker.
    void sweep(std::chrono::steady_clock::time_point now);
    void clear();
    std::size_t idle_count() const;

private:
    void watch(pooled_connection* conn);
    void drop(pooled_connection* conn, std::uint64_t epoch);

    boost::asio::io_context& ctx_;
    std::uint64_t next_epoch_ = 1;
    // Per endpoint, oldest first: take() pops the back (warmest), sweep() trims the front.
    std::unordered_map<std::string, std::vector<std::unique_ptr<pooled_connection>>> idle_;
};

}  // namespace sentinel::upstream
