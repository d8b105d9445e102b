// One proxy connection on the agent side: handshake, stream table, event dispatch (inline or on
// the worker pool) and the serialized write queue. Internal to the SDK; agents see server.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agents/protocol/frame.hpp"
#include "agents/sdk/cpp/handler.hpp"
#include "agents/sdk/cpp/server.hpp"

namespace sentinel::agent_sdk {

// What connections share with their server. Everything here is used on the I/O thread only,
// except the atomics (read by server::stats from any thread) and `pool`.
//
// The I/O side is deliberately one thread: frames are tiny and parsing them costs less than a
// hand-off, while handlers that are slow get the pool. One thread also makes the io_context
// itself the "strand" of every connection, so connection state needs no lock.
struct server_core {
    server_core(server_options o, handler_factory f) : options(std::move(o)), make_handler(std::move(f)) {}

    server_options options;
    handler_factory make_handler;
    v1::Health health;  // the last status reported
    std::function<void(std::uint64_t)> connection_closed;
    std::function<void()> stream_ended;

    std::atomic<std::size_t> connections{0};
    std::atomic<std::size_t> open_streams{0};
    std::atomic<std::uint64_t> protocol_errors{0};
    std::atomic<std::uint64_t> dropped_decisions{0};

    // Declared after what connections touch in their destructor: destroying the io_context
    // destroys the handlers still queued on it, and with them the last connections.
    boost::asio::io_context io{1};
    std::unique_ptr<boost::asio::thread_pool> pool;  // null: handlers run inline; joined before `io` dies
};

class connection : public std::enable_shared_from_this<connection> {
public:
    using socket_type = boost::asio::generic::stream_protocol::socket;

    connection(server_core& core, socket_type socket, std::uint64_t id);
    ~connection();

    void start();
    std::uint64_t id() const noexcept { return id_; }
    std::size_t open_streams() const noexcept { return streams_.size(); }

    void send_health(const v1::Health& health);
    // Shutdown: DRAIN on a connection that completed its handshake, close any other.
    void drain(std::string_view reason);
    void close();

private:
    using event = std::variant<v1::RequestHeaders, v1::BodyChunk, v1::ResponseHeaders, v1::WebSocketFrame,
                               v1::RequestComplete>;
    struct outcome {
        v1::Decision decision;
        bool ran = false;     // false: skipped, the stream was cancelled before its turn
        std::string failure;  // the handler threw
    };
    enum class phase {
        awaiting_hello,
        ready,       // events flow
        no_streams,  // validate_only HELLO or rejected config: only PING/PONG/DRAIN until the proxy closes
        closing,     // a final HELLO_ACK is being written
    };

    boost::asio::awaitable<void> read_loop();
    bool handle_frame(const agent_protocol::frame_view& f);
    bool handle_hello(std::string_view payload);
    bool handle_control(const agent_protocol::frame_view& f);
    bool handle_stream_frame(const agent_protocol::frame_view& f);
    bool parse_event(const agent_protocol::frame_view& f, event& out);
    void dispatch(std::shared_ptr<stream_context> s, agent_protocol::frame_type type, event ev);
    outcome invoke(stream_context& s, agent_protocol::frame_type type, event& ev) noexcept;
    void finish(const std::shared_ptr<stream_context>& s, agent_protocol::frame_type type, outcome o);
    void end_stream(std::uint32_t stream_id);
    bool protocol_error(std::string_view why);

    template <class Message>
    void queue(agent_protocol::frame_type type, std::uint32_t stream_id, const Message& m);
    void schedule_write();
    void write_now();

    server_core& core_;
    socket_type socket_;
    const std::uint64_t id_;
    phase phase_ = phase::awaiting_hello;
    bool closed_ = false;

    std::unique_ptr<handler> handler_;
    std::uint32_t subscribed_ = 0;  // bit per v1::EventType
    std::uint32_t max_streams_ = 0;
    std::uint32_t peer_max_frame_ = agent_protocol::default_max_frame_size;
    std::unordered_map<std::uint32_t, std::shared_ptr<stream_context>> streams_;

    std::vector<char> in_;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;

    // Frames are appended to `out_pending_` while a write of `out_inflight_` is in progress, so
    // everything queued meanwhile leaves in one write and nothing interleaves.
    std::string out_pending_;
    std::string out_inflight_;
    bool writing_ = false;
    bool write_scheduled_ = false;
    bool close_after_write_ = false;
    boost::asio::steady_timer writable_;  // the read loop waits on it while the queue is full
    boost::asio::steady_timer handshake_timer_;
};

}  // namespace sentinel::agent_sdk
