// One downstream HTTP/2 connection (docs/architecture/http2.md). The accepted connection
// (http1_connection) hands itself over after ALPN h2 or an h2c connection preface; this class
// then runs the socket's read and write loops around h2::server_session and starts one
// request pipeline per stream. Each stream is an http1_connection in stream mode: the same
// pipeline, phases, limits, agents, metrics and access log as an HTTP/1.1 request, reading
// and writing HTTP/1.1 bytes that the session translates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/byte_buffer.hpp"
#include "http/h2/session.hpp"

namespace sentinel::proxy {

class http1_connection;

class h2_connection final : public h2::session_owner {
public:
    explicit h2_connection(http1_connection& parent);
    ~h2_connection() override;

    // Serves the connection until it ends; returns once every stream's pipeline finished.
    boost::asio::awaitable<void> run();
    // Graceful drain: GOAWAY(NO_ERROR); open streams finish, then the connection closes.
    void drain();
    // Shutdown deadline passed: every stream is aborted, the connection closes.
    void abort();

    // ---- used by a stream's http1_connection
    // Request bytes into `in`; 0 with `ec` set at the end of the request (eof), on a reset,
    // a deadline (operation_aborted) or when the connection ends.
    boost::asio::awaitable<std::size_t> read(http1_connection& stream, std::int32_t id, byte_buffer& in,
                                             boost::system::error_code& ec);
    // Response bytes; waits while the client's window holds too many back. False when the
    // stream or the connection is gone.
    boost::asio::awaitable<bool> write(http1_connection& stream, std::int32_t id, std::string_view data,
                                       std::string_view more);
    // A reload removed the listener: the stream is refused (the client may retry it
    // elsewhere) and the connection drains.
    void refuse_and_drain(std::int32_t id);

private:
    void on_request(std::int32_t id) override;
    void on_stream_event(std::int32_t id) override;
    boost::asio::awaitable<void> serve_stream(std::shared_ptr<http1_connection> stream, std::int32_t id);
    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    void wake_writer();
    void count_abuse();
    void update_idle_deadline();

    http1_connection& parent_;
    h2::server_session session_;
    std::unordered_map<std::int32_t, std::shared_ptr<http1_connection>> streams_;  // pipelines running
    boost::asio::steady_timer writer_wake_;
    boost::asio::steady_timer streams_done_;
    std::string out_;
    std::uint64_t refused_counted_ = 0;
    bool abuse_counted_ = false;
    bool served_ = false;   // a stream ran: the idle limit is keepalive-idle from now on
    bool closing_ = false;  // no more frames are read or sent
    bool writer_idle_ = false;
};

}  // namespace sentinel::proxy
