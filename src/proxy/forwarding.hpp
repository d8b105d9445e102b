// Header rewriting between the two sides (no I/O): which fields cross the proxy, which are
// dropped as hop-by-hop, what Sentinel adds (X-Forwarded-*, X-Request-Id), and the route's
// own set/add/remove operations.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/decision.hpp"
#include "config/model/config.hpp"
#include "http/http1/message.hpp"

namespace sentinel::proxy {

// Which upgrade of a request the route relays (RFC 9110 §7.8; docs/architecture/websocket.md).
enum class upgrade_kind : std::uint8_t {
    none,       // nothing relayed: no upgrade asked, h2c, or a protocol the route does not take
    websocket,  // `websocket #true` and an Upgrade listing websocket: sent as `Upgrade: websocket`
    other,      // `allow-upgrade #true` and any other protocol: sent as the client asked
};

// The upgrade relayed for `request` on `route`. A WebSocket upgrade goes only through
// `websocket` (where the handshake was checked), never through `allow-upgrade`, and h2c never.
upgrade_kind relayed_upgrade(const http1::request_head& request, const config::route_config& route);

struct forward_context {
    std::string_view request_id;
    std::string_view peer;       // client address text (after PROXY protocol)
    bool peer_trusted = false;   // peer is in the listener's trusted-proxies
    std::string_view scheme;     // "http" / "https" of the listener
    upgrade_kind upgrade = upgrade_kind::none;  // relayed_upgrade(): adds Connection/Upgrade
    std::string_view path;       // non-empty: the normalised path to send instead of the target's
    std::string_view default_host;  // Host for requests without one (HTTP/1.0): the endpoint
    std::string_view host_override;  // non-empty: the Host sent upstream (route `rewrite { host }`)
    // The verified client certificate (TLS listeners), sent under the route's header names.
    std::string_view client_cert_subject;
    std::string_view client_cert_fingerprint;
    // Tracing on: the incoming traceparent/tracestate are replaced by these (traceparent's
    // parent id is the upstream try's span; tracestate is sent only when non-empty).
    bool trace = false;
    std::string_view traceparent;
    std::string_view tracestate;
    // The route's agents' request header changes (applied after the route's own), and the
    // length of a body they inspected (sent with Content-Length instead of the client's framing).
    const agent::header_edits* agent_edits = nullptr;
    std::optional<std::uint64_t> body_length;
};

// Serialises the request head sent upstream into `out` (cleared first).
void build_upstream_head(std::string& out, const http1::request_head& request,
                         const config::route_config& route, const forward_context& ctx);

struct response_framing {
    bool chunked = false;          // send "Transfer-Encoding: chunked"
    bool content_length = false;   // send "Content-Length: <length>"
    std::uint64_t length = 0;
    bool keep_alive = true;        // false: add "Connection: close"
    bool http10_keep_alive = false;  // HTTP/1.0 client kept alive: "Connection: keep-alive"
    std::string_view set_cookie;   // non-empty: one more Set-Cookie field (sticky sessions)
    const config::security_headers_config* security = nullptr;  // TLS listener's, when they apply
    const agent::header_edits* agent_edits = nullptr;  // the route's agents' response changes
};

// Appends the TLS security headers (HSTS, X-Content-Type-Options, Referrer-Policy,
// X-Frame-Options) that `present` (the response's own fields, may be null) does not have.
void append_security_headers(std::string& out, const config::security_headers_config& security,
                             const std::vector<http1::header>* present);

// Serialises the response head sent downstream into `out` (cleared first).
void build_downstream_head(std::string& out, const http1::response_head& response,
                           const config::route_config& route, std::string_view request_id,
                           const response_framing& framing);

// Serialises an interim (1xx) response to forward downstream.
void build_interim_head(std::string& out, const http1::response_head& response);

}  // namespace sentinel::proxy
