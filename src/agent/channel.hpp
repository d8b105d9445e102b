// One worker's connections to one agent (PROTOCOL.md §1, §3, §8) and the streams requests
// open on them. Everything here runs on the worker's thread; only agent_state is shared.
//
// A channel keeps `connections` connections established: each slot connects, says HELLO,
// serves frames until the connection ends, and reconnects with exponential backoff. A request
// opens a stream on the ready connection with the fewest open streams, sends an event, and
// waits for the decision under the agent's timeout; the read loop completes the wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/agent_state.hpp"
#include "agent/config_push.hpp"
#include "agents/protocol/frame.hpp"
#include "observability/metrics.hpp"
#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent {

template <typename T>
using awaitable = boost::asio::awaitable<T>;

// What the agent said it wants in its HELLO_ACK.
struct capabilities {
    std::uint32_t events = 0;  // bit (1 << EventType)
    v1::BodyMode request_body = v1::BODY_NONE;
    v1::BodyMode response_body = v1::BODY_NONE;
    std::uint64_t max_body = 0;         // 0 = the proxy's limit
    std::uint32_t max_concurrency = 0;  // per connection; 0 = any
    std::uint32_t max_frame = agent_protocol::default_max_frame_size;

    bool wants(v1::EventType e) const { return (events >> e) & 1u; }
};

enum class call_status {
    decided,      // `out` holds the decision
    timeout,      // no decision within the timeout (the stream was cancelled)
    failed,       // the connection broke or the agent broke the protocol
    client_gone,  // the client disconnected while waiting (the stream was cancelled)
    too_large,    // the event does not fit the agent's frame limit (not sent)
};

class connection;
class channel;

// One request's stream at one agent. Ends with END_STREAM, REQUEST_COMPLETE or CANCEL; a
// stream destroyed before that sends CANCEL(ENDED), so the agent can always free its state.
class stream {
public:
    stream();
    stream(std::shared_ptr<connection> conn, std::uint32_t id);
    stream(stream&& other) noexcept;
    stream& operator=(stream&& other) noexcept;
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    ~stream();

    bool is_open() const { return conn_ != nullptr && !ended_; }
    const capabilities& caps() const;

    // Sends an event; its decision is awaited with wait(). One event at a time per stream.
    // `end_stream`: no event follows on this stream. The timeout runs from now.
    // False (nothing sent) when the event is larger than the agent's frame limit.
    bool start(agent_protocol::frame_type type, const google::protobuf::MessageLite& event, bool end_stream,
               std::chrono::milliseconds timeout);
    // Waits for the decision of the started event. `client` (may be null) is watched: a client
    // that closes its side meanwhile cancels the stream (CANCEL reason CLIENT_GONE).
    awaitable<call_status> wait(boost::asio::ip::tcp::socket* client, v1::Decision& out);
    // start() then wait().
    awaitable<call_status> call(agent_protocol::frame_type type, const google::protobuf::MessageLite& event,
                                bool end_stream, std::chrono::milliseconds timeout,
                                boost::asio::ip::tcp::socket* client, v1::Decision& out) {
        if (!start(type, event, end_stream, timeout)) co_return call_status::too_large;
        co_return co_await wait(client, out);
    }
    // Time from the last start() to its decision.
    std::chrono::microseconds latency() const { return latency_; }
    // Sends the stream's final event, which gets no answer (REQUEST_COMPLETE).
    void notify_end(agent_protocol::frame_type type, const google::protobuf::MessageLite& event);
    void cancel(v1::Cancel::Reason reason);

private:
    struct pending;  // the event awaiting its decision (channel.cpp)
    std::shared_ptr<connection> conn_;
    std::unique_ptr<pending> pending_;
    std::uint32_t id_ = 0;
    bool ended_ = false;
    std::chrono::microseconds latency_{0};
};

class channel : public std::enable_shared_from_this<channel> {
public:
    // `target`: the Unix socket path, or "tcp://ip:port" (resolve_target()).
    channel(boost::asio::io_context& io, config::agent_config cfg, std::string target,
            std::shared_ptr<agent_state> state, observability::agent_slot& metrics, std::uint32_t worker);
    ~channel();

    void start();
    // No new streams; open ones finish; connections are DRAINed and closed, no reconnect.
    void retire();
    // Worker shutdown: closes everything now.
    void shutdown();

    const config::agent_config& cfg() const { return cfg_; }
    agent_state& state() { return *state_; }
    observability::agent_slot& metrics() { return metrics_; }

    // Opens a stream on a ready connection, waiting up to `wait` when none is ready but one
    // is connecting. An empty stream when none becomes ready.
    awaitable<stream> open_stream(std::chrono::milliseconds wait);

private:
    friend class connection;
    friend class stream;
    awaitable<void> run_slot(std::size_t index);
    connection* pick() const;
    void notify_ready();

    boost::asio::io_context& io_;
    const config::agent_config cfg_;
    const std::string target_;
    const std::shared_ptr<agent_state> state_;
    observability::agent_slot& metrics_;
    const std::uint32_t worker_;
    const config_tree tree_;
    std::string hello_;  // the encoded HELLO frame every connection starts with
    std::vector<std::shared_ptr<connection>> slots_;
    std::vector<std::unique_ptr<boost::asio::steady_timer>> backoff_timers_;
    std::vector<boost::asio::steady_timer*> ready_waiters_;
    bool retired_ = false;
    bool stopped_ = false;
};

}  // namespace sentinel::agent
