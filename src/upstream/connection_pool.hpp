// Per-worker pool of idle upstream connections, keyed by endpoint. Not thread-safe by design:
// each worker owns one, so taking and returning a connection costs no lock.
//
// A connection idle for more than one sweep period (100 ms) gets a one-byte read armed: if
// the upstream closes it (or sends stray bytes), the read completes and the connection is
// dropped, so a request is rarely sent on a dead connection. Hot connections, reused within
// the period, are never armed: arming costs a syscall (Asio's speculative read or its
// epoll_ctl for a wait), which would be one more per request. A connection the upstream
// closed within that window is caught on use (the stale-connection retry).
//
// TLS connections: the watch is a readiness wait on the raw socket instead of a read (a read
// would eat TLS record bytes the SSL needs), and any readability of an idle TLS connection
// drops it. An idle TLS connection has nothing legitimate to receive: session tickets
// arrive with the response (the server sends them right after its handshake) and are
// consumed reading it; what comes later is a close_notify, an alert or garbage. Peeking
// through the SSL to tell a late ticket from a close_notify would cost a record decrypt per
// watch to save, at worst, one reconnect that resumes its session anyway.
//
// Pool identity: connections are kept per endpoint key *and* TLS context (null for plain
// TCP). A reload that changes an upstream's `tls` builds a new context, so connections made
// with the old settings are never taken again (they age out); a reload that leaves `tls`
// alone keeps the context and the warm connections.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "common/byte_buffer.hpp"
#include "config/model/config.hpp"
#include "tls/tls_context.hpp"
#include "upstream/endpoint_state.hpp"

namespace sentinel::upstream {

// An HTTP/2 stream standing in for a connection (proxy/h2_upstream.cpp): the exchange writes
// HTTP/1.1 request bytes and reads HTTP/1.1 response bytes, as on a connection of its own.
class multiplexed_stream {
public:
    virtual ~multiplexed_stream() = default;
    // Response bytes into `into`; 0 with `ec` set at the end of the response (eof), when the
    // stream failed (connection_reset; connection_refused when the server never processed
    // it) or was cancelled (operation_aborted).
    virtual boost::asio::awaitable<std::size_t> read_some(byte_buffer& into, boost::system::error_code& ec) = 0;
    // Request bytes; waits while the server's window holds too many back. False when the
    // stream failed or was cancelled.
    virtual boost::asio::awaitable<bool> write(std::string_view first, std::string_view second) = 0;
    // A deadline expired: the waiting read or write returns at once.
    virtual void cancel() = 0;
    // The server never processed the request (REFUSED_STREAM, beyond its GOAWAY): safe to retry.
    virtual bool refused() const = 0;
};

struct pooled_connection {
    // The buffer starts at 16 KiB (a response head and a small body) and grows up to
    // `max_buffer` when reads fill it (large bodies, tunnels).
    pooled_connection(boost::asio::io_context& ctx, std::size_t max_buffer)
        : socket(ctx), buffer(16 * 1024, max_buffer) {}
    ~pooled_connection();  // releases the connection count; ends TLS quietly (see the .cpp)
    pooled_connection(const pooled_connection&) = delete;
    pooled_connection& operator=(const pooled_connection&) = delete;
    // Counts this connection in the upstream's `connections` (max-connections) until it
    // closes. Call once the connection is established.
    void count_in(std::shared_ptr<upstream_state> owner) {
        upstream = std::move(owner);
        upstream->connections.fetch_add(1, std::memory_order_relaxed);
    }
    using tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;
    // Order matters: `tls` refers to `socket` and its SSL to `tls_context`, so it goes first.
    boost::asio::ip::tcp::socket socket;
    std::shared_ptr<const tls::client_context> tls_context;  // null: plain TCP; the pool identity
    std::unique_ptr<tls_stream> tls;  // TLS upstreams: made before the handshake; all I/O goes through it
    bool tls_certificate_requested = false;  // the server sent a CertificateRequest in the handshake
    byte_buffer buffer;  // response bytes; empty whenever the connection is idle
    std::string key;
    std::chrono::steady_clock::time_point idle_since;
    std::chrono::milliseconds idle_timeout{0};
    std::uint64_t requests = 0;  // requests served on this connection
    char probe = 0;        // target of the idle watch's one-byte read (plain TCP)
    bool watched = false;  // the idle watch is armed
    std::uint64_t idle_epoch = 0;  // set by give_back(); tells a stale idle-watch from a live one
    std::shared_ptr<upstream_state> upstream;  // whose connection count includes this one
    // HTTP/2 upstreams: the stream this exchange runs on (the socket is then unused; the
    // multiplexed connection owns the real one).
    // Shared: a request body pump running beside the response relay holds it too.
    std::shared_ptr<multiplexed_stream> stream;

    // Deadlines: the operation in progress returns (cancel) or the connection is dropped (close).
    void cancel() {
        boost::system::error_code ignored;
        socket.cancel(ignored);
        if (stream) stream->cancel();
    }
    void close() {
        boost::system::error_code ignored;
        socket.close(ignored);
        if (stream) stream->cancel();
    }
};

class connection_pool {
public:
    explicit connection_pool(boost::asio::io_context& ctx) : ctx_(ctx) {}
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    // The most recently used idle connection to `key` made with TLS context `tls` (null:
    // plain TCP), or null.
    std::unique_ptr<pooled_connection> take(const std::string& key, const tls::client_context* tls = nullptr);
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
    // Connections of several TLS contexts share a list only across a reload or when two
    // upstreams with different `tls` name the same address.
    std::unordered_map<std::string, std::vector<std::unique_ptr<pooled_connection>>> idle_;
};

}  // namespace sentinel::upstream
