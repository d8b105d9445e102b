// The agent side of the agent protocol (agents/protocol/PROTOCOL.md): listens, accepts proxy
// connections, does the handshake and stream bookkeeping, and calls a `handler` per event.
//
//     sentinel::agent_sdk::server srv({.name = "my-agent", .version = "1.0"},
//                                     [] { return std::make_unique<my_handler>(); });
//     std::string error;
//     if (!srv.listen("/run/sentinel/my.sock", error)) { ... }
//     return srv.run();   // until SIGTERM/SIGINT (or shutdown()), then drains
//
// Most agents use run_agent() (run_agent.hpp), which adds the command line around this.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agents/protocol/frame.hpp"
#include "agents/sdk/cpp/handler.hpp"

namespace boost::asio {
class io_context;
}

namespace sentinel::agent_sdk {

struct server_options {
    std::string name = "sentinel-agent";  // HelloAck.agent_name
    std::string version = "0.0.0";        // HelloAck.agent_version
    // 0: handlers run on the I/O thread (cheap handlers: no hand-off). N > 0: on a pool of N
    // threads, so a slow handler (a WAF) does not hold up the frames of other streams.
    unsigned worker_threads = 0;
    // Largest frame payload accepted from the proxy, announced in HELLO_ACK (at most 16 MiB).
    std::uint32_t max_frame_size = agent_protocol::default_max_frame_size;
    std::size_t max_connections = 1024;
    // Bound on open streams per connection when the handler's capabilities leave
    // max_concurrency at 0; more is a protocol error (the proxy sheds instead).
    std::uint32_t max_streams_per_connection = 10000;
    // A connection that has not sent HELLO by then is closed.
    std::chrono::milliseconds handshake_timeout{10'000};
    // How long a shutdown waits for open streams to end before closing their connections.
    std::chrono::milliseconds drain_timeout{5'000};
    // SIGTERM/SIGINT start the shutdown (a second one ends the drain early). Off for tests and
    // embedders that manage signals themselves.
    bool handle_signals = true;
};

struct server_stats {
    std::size_t connections = 0;
    std::size_t open_streams = 0;
    std::uint64_t protocol_errors = 0;    // connections closed for a protocol error
    std::uint64_t dropped_decisions = 0;  // computed after the stream was cancelled
};

class server {
public:
    server(server_options options, handler_factory make_handler);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // `address` is a Unix socket path or "tcp://host:port" ("tcp://[::1]:9100"). Binds and
    // listens before returning, so a peer may connect at once. A stale Unix socket file is
    // replaced; a socket some live process still listens on is not. The socket is made 0660.
    bool listen(std::string_view address, std::string& error);

    // Serves until a shutdown completes; returns the process exit status (0). Call once.
    int run();

    // Thread-safe. Sends DRAIN on every connection, stops accepting, waits up to drain_timeout
    // for open streams to end, closes every connection and makes run() return.
    void shutdown();

    // Thread-safe. Sends HEALTH on every connection, and after the handshake on later ones
    // while the status is not HEALTHY, so a proxy that reconnects learns the current state.
    void report_health(v1::Health::Status status, std::string message);

    // The I/O thread's context, for the agent's own timers and signal sets (a reload on SIGHUP).
    // Objects bound to it must die before it does: hand them to attach().
    boost::asio::io_context& io_context();
    // Keeps `object` alive until the server is destroyed (before its io_context).
    void attach(std::shared_ptr<void> object);

    server_stats stats() const;  // thread-safe
    // The port bound by the first "tcp://" listener (useful with port 0); 0 when none.
    std::uint16_t tcp_port() const;
    // Where the first listener is bound, in listen()'s syntax with the real port
    // ("/run/x.sock", "tcp://127.0.0.1:41234", "tcp://[::1]:9100"); empty before listen().
    std::string bound_address() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace sentinel::agent_sdk
