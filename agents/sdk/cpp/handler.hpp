// What an agent implements: one class, one virtual method per event of the agent protocol
// (agents/protocol/PROTOCOL.md). The SDK (server.hpp) does the framing, the handshake, stream
// bookkeeping, concurrency and cancellation around it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent_sdk {

namespace v1 = sentinel::agent::v1;

// One problem in the agent's `config {}` block. `path` is ConfigNode.path of the offending node,
// copied unchanged: the proxy turns it into file:line:col.
struct config_error {
    std::string path;
    std::string message;
};

// The state of one stream (one request, for this agent) as handlers see it. It lives from the
// first event of the stream until the stream ends (PROTOCOL.md §4), and as long after as a
// handler still running on a worker thread holds it.
class stream_context {
public:
    stream_context(std::uint32_t stream_id, std::uint64_t connection_id) noexcept
        : stream_id_(stream_id), connection_id_(connection_id) {}
    stream_context(const stream_context&) = delete;
    stream_context& operator=(const stream_context&) = delete;

    std::uint32_t stream_id() const noexcept { return stream_id_; }
    // Which proxy connection the stream belongs to (for logs; unique within the process).
    std::uint64_t connection_id() const noexcept { return connection_id_; }

    // True once the proxy sent CANCEL or the connection closed. Any decision returned after
    // that is dropped, so a slow handler (a WAF scanning a body) may check this and give up.
    // Safe to call from any thread.
    bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }
    v1::Cancel::Reason cancel_reason() const noexcept {
        return static_cast<v1::Cancel::Reason>(cancel_reason_.load(std::memory_order_acquire));
    }

    // Per-stream user state, destroyed with the stream. Events of one stream are never handled
    // concurrently, so handlers need no lock to use it.
    template <class T, class... Args>
    T& emplace_state(Args&&... args) {
        auto p = std::make_shared<T>(std::forward<Args>(args)...);
        T& ref = *p;
        state_ = std::move(p);
        state_type_ = &typeid(T);
        return ref;
    }
    // The state set by emplace_state<T>, or nullptr (none yet, or of another type).
    template <class T>
    T* state() const noexcept {
        return state_type_ && *state_type_ == typeid(T) ? static_cast<T*>(state_.get()) : nullptr;
    }

    // Used by the SDK (and by tests that drive a handler directly).
    void cancel(v1::Cancel::Reason reason) noexcept {
        cancel_reason_.store(reason, std::memory_order_relaxed);
        cancelled_.store(true, std::memory_order_release);
    }

private:
    friend class connection;

    std::uint32_t stream_id_;
    std::uint64_t connection_id_;
    std::atomic<bool> cancelled_{false};
    std::atomic<int> cancel_reason_{v1::Cancel::ENDED};
    std::shared_ptr<void> state_;
    const std::type_info* state_type_ = nullptr;

    // Owned by the connection's I/O thread only.
    bool awaiting_decision_ = false;   // an event was dispatched and not answered yet
    bool end_after_decision_ = false;  // that event carried END_STREAM
    bool more_request_body_ = false;   // the last answer asked for more request body
    bool more_response_body_ = false;  // ... or more response body
};

// An agent. The server makes one handler per proxy connection (the configuration is bound to
// the connection, PROTOCOL.md §3): configure() runs once with the `config {}` block of that
// connection's HELLO, then the event methods run for its streams.
//
// Threading: with worker_threads = 0 every method runs on the I/O thread, one at a time. With
// worker_threads > 0 the event methods run on a thread pool: calls for *different* streams of
// one connection may overlap, so shared members must be immutable after configure() or locked.
// Calls for one stream never overlap and see each other's writes to the stream's state.
//
// A method that throws closes the connection (the proxy fails every stream on it at once
// instead of waiting for its timeout).
class handler {
public:
    virtual ~handler() = default;

    // Checks and applies the `config {}` block. An empty result accepts it. The default accepts
    // only an empty block, so a key no agent reads can never be silently ignored.
    virtual std::vector<config_error> configure(const v1::ConfigNode& config);

    // Sent in HELLO_ACK, after configure(). Default: REQUEST_HEADERS only, no bodies.
    virtual v1::Capabilities capabilities() const;

    // Each event that is answered returns its decision; the default allows. A decision with no
    // action set is sent as `allow`.
    virtual v1::Decision on_request_headers(stream_context& stream, const v1::RequestHeaders& event);
    virtual v1::Decision on_request_body(stream_context& stream, const v1::BodyChunk& event);
    virtual v1::Decision on_response_headers(stream_context& stream, const v1::ResponseHeaders& event);
    virtual v1::Decision on_response_body(stream_context& stream, const v1::BodyChunk& event);
    virtual v1::Decision on_websocket_frame(stream_context& stream, const v1::WebSocketFrame& event);
    // Not answered; the stream ends after it.
    virtual void on_request_complete(stream_context& stream, const v1::RequestComplete& event);
};

// Makes the handler of a new connection. Called on the I/O thread.
using handler_factory = std::function<std::unique_ptr<handler>()>;

}  // namespace sentinel::agent_sdk
