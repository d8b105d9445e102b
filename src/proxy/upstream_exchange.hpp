// The select_endpoint, upstream_request and response phases for one stream: pick an endpoint
// (balancer, sticky cookie, health, breaker, backups), get a pooled or new connection, send
// the request head and body, read the response head, retry on another endpoint when the
// route's policy and the upstream's budget allow, then stream the response back and return
// the connection to the pool when it is reusable.
#pragma once

#include <memory>
#include <optional>

#include "http/http1/chunked.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/http1_connection.hpp"
#include "proxy/websocket_phase.hpp"
#include "upstream/connection_pool.hpp"
#include "upstream/upstream_group.hpp"

namespace sentinel::proxy {

class upstream_exchange {
public:
    // `websocket`: the pipeline's admission of a WebSocket handshake (not admitted for any
    // other request).
    upstream_exchange(http1_connection& down, const config::route_config& route,
                      const upstream::upstream_group& group, const websocket_admission& websocket);
    ~upstream_exchange();
    // The exchange; returns once any request body pump beside it ended too.
    awaitable<void> run();

private:
    // How one try ended. `done`: a reply was already sent (or the client is gone) — final.
    enum class outcome { ok, stale, connect_failed, connect_timeout, refused, reset, timeout, bad_response, done };

    struct choice {
        const upstream::endpoint* endpoint = nullptr;
        const upstream::upstream_group* group = nullptr;  // the group it belongs to (backup upstream)
    };
    choice choose();
    bool sticky_choice(choice& out);
    awaitable<outcome> try_endpoint(const choice& c);
    awaitable<bool> read_replay_body();
    bool retryable(outcome result) const;
    awaitable<void> backoff(std::uint32_t retry);
    awaitable<void> reply_failure(outcome result);

    awaitable<outcome> connect(const upstream::endpoint& endpoint);
    // TLS upstreams: the handshake on the just-connected `up_`, still under the
    // upstream-connect deadline. A failure (verification included) is a connect failure.
    awaitable<outcome> tls_handshake(const upstream::endpoint& endpoint);
    // Reads into `up_->buffer` / writes to the upstream, through TLS when the connection has it.
    awaitable<std::size_t> read_some_upstream(boost::system::error_code& ec);
    awaitable<bool> write_upstream(std::string_view first, std::string_view second = {});
    awaitable<outcome> send_request();
    awaitable<outcome> send_content_length_body(std::uint64_t remaining);
    // The rest of a chunked body, validated and relayed byte for byte; after a start agents
    // held (`held_start`, already sent as one chunk) it is re-chunked from the decoded data.
    awaitable<outcome> send_chunked_body(bool held_start);
    awaitable<void> exchange();
    // HTTP/2 upstreams, a request body of unknown length (gRPC streaming calls): the body is
    // relayed beside the response instead of before it, so a server may answer (and a client
    // wait for the answer) before the request ends: full-duplex streams.
    awaitable<void> duplex_pump(std::shared_ptr<upstream::multiplexed_stream> stream);
    awaitable<outcome> read_response_head();
    awaitable<bool> relay_response_body();
    // Agents asked for the response body: reads it (decoded) up to their limit and lets them
    // decide; false when a decision (or an upstream failure) replaced the response.
    awaitable<bool> inspect_response_body();
    // After a 101: relays bytes both ways until either side closes or nothing moved in either
    // direction for the idle time (upstream-body-idle; the route's websocket idle-timeout for
    // a WebSocket).
    awaitable<void> tunnel();
    awaitable<void> pump_to_upstream();
    awaitable<void> pump_to_downstream();
    // The tunnel of a WebSocket connection whose frames agents inspect: relays frame by frame
    // in one direction, each data frame decided by the agents (agent_phase.cpp) first.
    awaitable<void> frame_pump(bool from_client);
    awaitable<bool> send_close(std::uint16_t code);
    awaitable<std::size_t> read_upstream(boost::system::error_code& ec);
    awaitable<bool> write_downstream(std::string_view first, std::string_view second = {});
    awaitable<void> fail(int status, observability::local_reply_reason reason);
    awaitable<void> client_body_failed();  // 408 if the client stalled, else just close
    void release_endpoint();
    // Tracing: one CLIENT span per try. begin gives the try its span id (patched into the
    // traceparent of the kept upstream head on retries); a finished try's span is emitted
    // when the next try starts or, for the last one, when the exchange ends (so a relayed
    // response's span covers its body).
    void trace_try_begin(std::uint32_t retries);
    void trace_try_end(outcome result);
    void emit_try_span(bool exchange_ended);

    http1_connection& down_;
    const config::route_config& route_;
    const upstream::upstream_group& group_;
    const snapshot& snap_;
    const websocket_admission& websocket_;
    std::unique_ptr<upstream::pooled_connection> up_;
    http1::response_head response_;
    std::size_t response_head_size_ = 0;
    bool body_started_ = false;      // a request body byte was sent: only a replay can retry
    bool request_complete_ = false;  // the whole request (head + body) was sent
    upgrade_kind upgrade_kind_ = upgrade_kind::none;  // which Upgrade was relayed
    bool upgrade_ = false;           // Upgrade relayed to the upstream
    // The idle deadline of upstream reads and writes: upstream-body-idle, or the route's
    // websocket idle-timeout once a WebSocket tunnel runs.
    observability::timeout_kind idle_kind_ = observability::timeout_kind::upstream_body_idle;
    std::chrono::milliseconds idle_after_{0};
    bool idempotent_ = false;
    bool pump_running_ = false;  // duplex_pump() is relaying the request body
    std::weak_ptr<upstream::multiplexed_stream> pump_stream_;
    bool response_relayed_ = false;  // the whole response reached the client
    std::unique_ptr<boost::asio::steady_timer> pump_done_;

    // Request body kept for retries (content-length bodies up to retry.max-body).
    std::string replay_;
    bool replayable_ = false;  // a retry can resend the whole request
    bool held_partial_ = false;  // agents hold the first part of the body; the rest follows
    // The response body as agents inspected it (decoded, replacements applied); when not
    // `response_done_` the upstream's remaining body follows it.
    std::string response_head_copy_;
    std::string held_response_;
    bool response_held_ = false;
    bool response_done_ = false;
    http1::chunked_decoder response_decoder_;

    upstream::pick_context pick_;
    std::uint64_t tried_[4] = {};     // per endpoint set: primary, backup, backup upstream's two
    std::optional<std::uint64_t> sticky_token_;  // from the request's sticky cookie
    std::string set_cookie_;          // sticky cookie to set on the response
    choice current_;                  // endpoint of the try in progress
    bool counted_in_flight_ = false;  // group_.state->in_flight includes this request
    bool retry_slot_ = false;         // holds a slot of the retry budget
    std::chrono::steady_clock::time_point try_start_;
    std::string tls_gather_;  // TLS: two small buffers joined into one record
    struct {
        bool pending = false;  // a sampled try whose span is not emitted yet
        std::uint8_t id[8] = {};
        std::uint64_t start = 0, end = 0;
        std::uint32_t attempt = 0;
        outcome result = outcome::ok;
        int status = 0;
        const upstream::endpoint* endpoint = nullptr;
        const upstream::upstream_group* group = nullptr;
    } try_span_;
};

}  // namespace sentinel::proxy
