// One downstream HTTP/1.1 connection: reads requests, runs each through the request
// pipeline (pipeline.cpp), writes responses strictly in order. Owns the socket, the read
// buffer and the connection's deadline (an entry in the worker's deadline wheel).
//
// An accepted connection that negotiates HTTP/2 (ALPN h2, or the h2c preface) is served by
// an h2_connection instead, and each HTTP/2 stream is an http1_connection in *stream mode*:
// it has no socket of its own, reads the stream's request as HTTP/1.1 bytes and writes its
// response as HTTP/1.1 bytes through the h2_connection, and runs exactly one request through
// the same pipeline (docs/architecture/http2.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/byte_buffer.hpp"
#include "http/http1/message.hpp"
#include "net/cidr.hpp"
#include "observability/metrics.hpp"
#include "observability/tracing.hpp"
#include "proxy/agent_phase.hpp"
#include "proxy/worker_context.hpp"
#include "tls/tls_context.hpp"
#include "upstream/connection_pool.hpp"

namespace sentinel::proxy {

using tcp = boost::asio::ip::tcp;
template <typename T>
using awaitable = boost::asio::awaitable<T>;

// What one request/response exchange produced; feeds the access log and metrics.
struct stream_record {
    std::chrono::steady_clock::time_point start;
    int status = 0;
    std::uint64_t bytes_sent = 0;      // response bytes written downstream (head + body)
    std::uint64_t bytes_received = 0;  // request bytes read (head + body)
    const config::route_config* route = nullptr;
    std::string upstream_endpoint;     // "ip:port" of the endpoint used, empty if none
    std::string method;  // copied: the read buffer moves on
    std::string host, path, query, user_agent;  // filled only when there is an access log
    char request_id[128];
    std::size_t request_id_len = 0;
    bool upstream_reused = false;
    std::string trace_id;  // filled by tracing when the request is traced; logged when non-empty
    observability::tracing::request_trace trace;  // W3C context and SERVER span (tracing on)
    std::uint32_t retries = 0;  // upstream tries after the first (route retry policy)
    // Upstream timings (negative: not measured): connect of a new connection (TCP + TLS), and
    // request start to the upstream response head.
    std::chrono::microseconds upstream_connect{-1};
    std::chrono::microseconds upstream_header{-1};
    bool sampled = true;      // the access log's sample-percent draw for this request
    bool local_error = false;  // a local reply with status >= 400 (always-log-errors)

    std::string_view id() const { return {request_id, request_id_len}; }
};

class h2_connection;

class http1_connection final : public registered_connection,
                               public std::enable_shared_from_this<http1_connection> {
public:
    http1_connection(worker_context& worker, tcp::socket socket, std::string listener_key);
    // Stream mode: HTTP/2 stream `stream_id` of `parent`'s connection, served by `h2`.
    http1_connection(http1_connection& parent, h2_connection& h2, std::int32_t stream_id);
    ~http1_connection() override;

    // Serves requests until the connection ends. Spawned once per accepted connection.
    awaitable<void> run();
    // Stream mode: serves the stream's one request.
    awaitable<void> run_stream();
    // Stream mode: wakes the pipeline waiting in wait_event() (the h2 connection calls it).
    void wake();
    awaitable<void> wait_event();
    void drain() override;
    void abort() override;

    // ----- used by the pipeline (pipeline.cpp) -----
    worker_context& worker() { return worker_; }
    tcp::socket& socket() { return socket_; }
    // The client's socket, watched for a disconnect while agents decide; null for an HTTP/2
    // stream (a reset reaches the pipeline through abort()).
    tcp::socket* client_socket() { return h2_ == nullptr ? &socket_ : nullptr; }
    // "HTTP/1.1", "HTTP/1.0" or "HTTP/2" (the access log's protocol field).
    std::string_view protocol() const;
    byte_buffer& input() { return in_; }
    http1::request_head& request() { return request_; }
    std::size_t head_size() const { return head_size_; }  // bytes of the parsed head in input()
    std::string& scratch() { return out_; }  // reusable serialisation buffer
    std::string& upstream_head() { return up_head_; }
    // The path used for routing and forwarding: the request's, or its normalised form.
    std::string_view route_path() const { return route_path_; }
    void set_route_path(std::string_view path) { route_path_ = path; }
    std::string& normalized_path() { return normalized_path_; }
    stream_record& record() { return record_; }
    // A security decision on this connection (docs/architecture/observability.md, "Audit
    // log"): counted in sentinel_audit_events_total{reason} and, with an audit-log block,
    // written with the request id (when a request was read), client, listener and route.
    // The auth, rate-limit and agent phases call it with their reason when they refuse.
    void audit(observability::audit_reason reason, std::string_view details,
               std::string_view decision = "blocked");
    const snapshot& snap() const { return *snap_; }
    // The agents of the request being served (agent_phase.cpp).
    request_agents& agents() { return agents_; }
    // Moves the parsed head out of the read buffer into `storage` (the request's views then
    // point there), so the body can be read into the buffer while the head stays usable.
    void detach_head(std::string& storage);
    const config::listener_config* listener() const { return listener_; }
    const std::string& peer_text() const { return peer_text_; }
    // TLS listeners: the handshake's facts (empty/absent on plain connections).
    bool secure() const { return secure_; }
    std::string_view scheme() const { return secure_ ? "https" : "http"; }
    const tls::peer_certificate& client_certificate() const { return client_cert_; }
    std::string_view tls_version() const { return tls_version_; }
    std::string_view tls_sni() const;
    // The listener's security headers when they apply to responses of `route` (null route:
    // a reply before routing), else null.
    const config::security_headers_config* security_headers(const config::route_config* route) const {
        if (!secure_ || listener_ == nullptr || !listener_->tls) return nullptr;
        const auto& s = listener_->tls->security_headers;
        return s.enabled && (route == nullptr || route->security_headers) ? &s : nullptr;
    }
    bool peer_trusted() const { return peer_trusted_; }
    bool keep_alive() const { return keep_alive_; }
    void set_keep_alive(bool on) { keep_alive_ = keep_alive_ && on; }

    // Deadline on the connection's current operation; `upstream` (if any) is cancelled too
    // when it expires. expired() tells which timeout fired after an aborted operation.
    void set_deadline(observability::timeout_kind kind, std::chrono::milliseconds after,
                      upstream::pooled_connection* upstream = nullptr);
    void clear_deadline();
    bool expired() const { return expired_; }
    observability::timeout_kind expired_kind() const { return expired_kind_; }

    // Reads more bytes into `input()`. Returns bytes read; 0 on EOF or error (`ec` says which).
    awaitable<std::size_t> read_some(boost::system::error_code& ec);
    // Writes `data` then `more` downstream in one gather write; false on error or timeout.
    awaitable<bool> write(std::string_view data, std::string_view more = {});

    // Sends a small local reply ("<status> <reason>\n") with X-Request-Id. With `close`,
    // marks the connection to end after it (lingering close happens in run()).
    awaitable<void> send_local_reply(int status, observability::local_reply_reason reason,
                                     bool close);
    // Any locally generated response: `headers` first (a Content-Type among them replaces
    // `content_type`), then the route's set/add operations, Content-Length, X-Request-Id,
    // and Connection: close when the connection will end. Counts nothing: callers do.
    awaitable<void> send_response(int status, std::string_view content_type, std::string_view body,
                                  const std::vector<config::header_value>& headers = {},
                                  const config::header_ops* route_ops = nullptr,
                                  bool head_only = false);

private:
    // Takes the worker's newest snapshot and this connection's listener settings from it;
    // false when a reload removed the listener.
    bool refresh_snapshot();
    awaitable<bool> read_proxy_header();
    // https listeners: the TLS handshake (bytes already read, e.g. after a PROXY header, are
    // handed to it), bounded by client-header. False when it fails.
    awaitable<bool> tls_handshake();
    // True when the connection speaks HTTP/2: ALPN chose h2, or (plain listeners) the first
    // bytes are the h2c connection preface. Reads at most the preface's 24 bytes.
    awaitable<bool> wants_http2();
    // accept_request phase: true when `request_` holds a parsed head.
    awaitable<bool> read_request_head();
    void on_deadline();
    awaitable<void> lingering_close();
    void begin_record();
    void finish_record();
    void append_access_log(const config::access_log_config& cfg, std::chrono::microseconds elapsed);
    void ensure_request_id();
    void begin_trace();   // tracing: reads traceparent/tracestate, decides sampling
    void finish_trace();  // tracing: the SERVER span of a sampled request

    worker_context& worker_;
    tcp::socket socket_;
    // Declared before tls_ so it is destroyed after it: an SSL must not outlive its context.
    std::shared_ptr<const tls::server_context> tls_context_;
    using tls_stream = boost::asio::ssl::stream<tcp::socket&>;
    std::unique_ptr<tls_stream> tls_;  // null on plain connections: all I/O goes to socket_
    bool tls_error_ = false;           // a TLS-level error ended the connection
    bool secure_ = false;              // TLS (the parent's, for a stream)
    tls::peer_certificate client_cert_;
    std::string_view tls_version_;
    std::string listener_key_;
    std::shared_ptr<const snapshot> snap_;  // the snapshot of the request being served
    const config::listener_config* listener_ = nullptr;
    byte_buffer in_;
    http1::request_head request_;
    stream_record record_;
    request_agents agents_;
    std::string out_;      // reused: local replies and downstream response heads
    std::string up_head_;  // reused: the upstream request head (kept for a stale retry)
    std::string tls_gather_;  // reused: head + small body joined into one TLS record
    std::size_t head_size_ = 0;
    std::string_view route_path_;
    std::string normalized_path_;

    net::ip_address peer_{};
    std::string peer_text_;
    bool peer_trusted_ = false;
    bool keep_alive_ = true;
    bool idle_ = true;  // between requests, no byte of the next one received
    std::uint64_t requests_ = 0;

    // HTTP/2: the h2 connection this accepted connection runs (while it does), or, in stream
    // mode, the one serving this stream.
    h2_connection* h2_ = nullptr;
    const http1_connection* parent_ = nullptr;  // stream mode: the accepted connection
    std::int32_t stream_id_ = 0;
    std::unique_ptr<boost::asio::steady_timer> wake_;  // stream mode: wait_event()

    struct deadline_entry final : runtime::deadline_wheel::entry {
        explicit deadline_entry(http1_connection& c) : conn(c) {}
        void expire() override { conn.on_deadline(); }
        http1_connection& conn;
    };
    deadline_entry deadline_{*this};
    observability::timeout_kind deadline_kind_{};
    upstream::pooled_connection* deadline_upstream_ = nullptr;
    bool expired_ = false;
    observability::timeout_kind expired_kind_{};
};

// The request pipeline (pipeline.cpp): route → request filters → select endpoint →
// upstream request → response filters. Returns once the response is fully written.
awaitable<void> run_pipeline(http1_connection& conn);

}  // namespace sentinel::proxy
