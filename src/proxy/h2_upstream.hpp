// HTTP/2 to upstreams (`protocol "h2"`, docs/architecture/http2.md): per worker, a few
// multiplexed connections per endpoint; each upstream exchange runs on one stream of one of
// them, through upstream::multiplexed_stream, so upstream_exchange writes and reads the same
// HTTP/1.1 bytes as on a connection of its own (h2::client_session translates).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http/h2/client_session.hpp"
#include "upstream/connection_pool.hpp"

namespace sentinel::proxy {

class worker_context;

class h2_upstream_connection final : public h2::client_owner,
                                     public std::enable_shared_from_this<h2_upstream_connection> {
public:
    // `transport`: a connected socket (TLS done, ALPN h2) whose connection count it keeps.
    h2_upstream_connection(worker_context& worker, std::unique_ptr<upstream::pooled_connection> transport,
                           std::chrono::milliseconds idle_timeout);
    ~h2_upstream_connection() override;
    void start();  // spawns the read and write loops
    // New streams may go here: alive, no GOAWAY, under the server's concurrency limit.
    bool usable() const;
    const std::string& key() const { return transport_->key; }
    const tls::client_context* tls() const { return transport_->tls_context.get(); }
    // A stream for one exchange, wrapped as the connection the exchange expects.
    std::unique_ptr<upstream::pooled_connection> open_stream(std::size_t buffer_capacity);
    // Idle (no stream) longer than the upstream's pool idle-timeout: closed. Dead ones are
    // reported too, so the pool forgets them.
    bool expired(std::chrono::steady_clock::time_point now) const;
    void close();

    // ---- used by the streams
    class stream;
    boost::asio::awaitable<std::size_t> read(stream& s, byte_buffer& into, boost::system::error_code& ec);
    boost::asio::awaitable<bool> write(stream& s, std::string_view first, std::string_view second);
    void release(stream& s);

private:
    void on_stream_event(std::uint32_t handle) override;
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    void wake_writer();

    worker_context& worker_;
    std::unique_ptr<upstream::pooled_connection> transport_;
    h2::client_session session_;
    std::unordered_map<std::uint32_t, stream*> streams_;
    boost::asio::steady_timer writer_wake_;
    std::string out_;
    std::chrono::milliseconds idle_timeout_;
    std::chrono::steady_clock::time_point idle_since_;
    bool writer_idle_ = false;
    bool dead_ = false;
};

// The worker's multiplexed connections, by endpoint key.
class h2_upstream_pool {
public:
    // A usable connection to `key` made with TLS context `tls` (null: h2c), or null.
    std::shared_ptr<h2_upstream_connection> find(const std::string& key, const tls::client_context* tls);
    std::shared_ptr<h2_upstream_connection> adopt(worker_context& worker,
                                                  std::unique_ptr<upstream::pooled_connection> transport,
                                                  std::chrono::milliseconds idle_timeout);
    void sweep(std::chrono::steady_clock::time_point now);  // every 100 ms: idle and dead ones go
    void clear();
    std::size_t size() const;

    // One connect per endpoint at a time: a burst of requests would otherwise open a
    // connection each before the first one could carry them all. The connecting exchange
    // calls begin/end (end on every path); the others wait() for it (bounded by its
    // upstream-connect deadline) and look again.
    bool connecting(const std::string& key) const { return connecting_.count(key) != 0; }
    void begin_connect(const std::string& key, boost::asio::io_context& io);
    void end_connect(const std::string& key);
    boost::asio::awaitable<void> wait_connect(const std::string& key);

private:
    std::unordered_map<std::string, std::vector<std::shared_ptr<h2_upstream_connection>>> conns_;
    std::unordered_map<std::string, std::shared_ptr<boost::asio::steady_timer>> connecting_;
};

}  // namespace sentinel::proxy
