// The request pipeline, phase by phase (see docs/architecture/life_of_a_request.md):
//
//   accept_request   http1_connection::read_request_head   (parse, limits → 400/414/431/501/505)
//   route            snapshot::routes.match                 (no match → 404)
//   request_filters  limits on the request                  (body over max-body → 413)
//                    admit_websocket (websocket_phase.cpp)  (WebSocket handshake checks → 400/426,
//                                                            route's max-connections → 503)
//   agents           run_request_agents (agent_phase.cpp)   (block, redirect, header/body changes;
//                                                            failure-mode closed → 503)
//   local actions    respond / redirect / builtin           (answered here)
//   select_endpoint  upstream_exchange::choose              (balancer, sticky, health, breaker,
//                                                            backups; caps → 503)
//   upstream_request upstream_exchange::run                 (connect, send, retries; a 101 is
//                                                            checked and becomes a tunnel)
//   response_filters run_response_agents, then header        (agents' block/changes, route ops,
//                    rewriting in forwarding.cpp             X-Request-Id)
//   log              http1_connection::finish_record        (metrics, access log)
#include <boost/asio/use_awaitable.hpp>

#include "proxy/http1_connection.hpp"
#include "proxy/status_page.hpp"
#include "proxy/upstream_exchange.hpp"
#include "proxy/websocket_phase.hpp"
#include "router/path.hpp"
#include "router/route_table.hpp"

namespace sentinel::proxy {

using observability::local_reply_reason;

namespace {

awaitable<void> send_fixed_response(http1_connection& conn, const config::route_config& route,
                                    local_reply_reason reason, int status, std::string_view body,
                                    const std::vector<config::header_value>& headers,
                                    std::string_view content_type) {
    auto& request = conn.request();
    conn.worker().metrics.count_local(reason);
    // A body we will not read would be parsed as the next request: close instead.
    if (request.framing != http1::body_framing::none) conn.set_keep_alive(false);
    if (request.version_minor == 0) conn.set_keep_alive(false);
    co_await conn.send_response(status, content_type, body, headers, &route.response_headers,
                                request.method == "HEAD");
    conn.input().consume(conn.head_size());
}

// The redirect target: the request's URL with the parts the route names replaced.
std::string redirect_location(const config::redirect_action& r, const http1::request_head& request,
                              std::string_view path, std::string_view request_scheme) {
    const std::string_view scheme = r.scheme ? std::string_view(*r.scheme) : request_scheme;
    const std::string_view authority = request.host;
    std::string_view host = router::strip_port(authority);
    std::string_view port;
    if (host.size() < authority.size()) port = authority.substr(host.size() + 1);
    std::string out;
    if (r.host) host = *r.host;
    // A new scheme or host drops the request's port: it belonged to the old one.
    if (r.scheme || r.host) port = {};
    std::string port_text;
    if (r.port) {
        const bool default_port = (scheme == "http" && *r.port == 80) || (scheme == "https" && *r.port == 443);
        if (!default_port) port_text = std::to_string(*r.port);
        port = port_text;
    }
    if (!host.empty()) {
        out.append(scheme).append("://").append(host);
        if (!port.empty()) out.append(":").append(port);
    }
    out.append(r.path ? std::string_view(*r.path) : path);
    if (r.keep_query && !request.query.empty()) out.append("?").append(request.query);
    return out;
}

}  // namespace

awaitable<void> run_pipeline(http1_connection& conn) {
    const snapshot& snap = conn.snap();
    auto& request = conn.request();
    auto& record = conn.record();

    // route (on the path with dot segments removed, so /public/../admin cannot pass as /public/)
    conn.set_route_path(request.path);
    switch (router::normalize_path(request.path, conn.normalized_path())) {
    case router::path_status::clean: break;
    case router::path_status::normalized: conn.set_route_path(conn.normalized_path()); break;
    case router::path_status::invalid:
        conn.audit(observability::audit_reason::path_traversal, request.path.substr(0, 256));
        conn.input().consume(conn.head_size());
        co_await conn.send_local_reply(400, local_reply_reason::bad_request, true);
        co_return;
    }
    const config::route_config* route =
        snap.routes.match({request.method, request.host, conn.route_path(), request.headers, request.query});
    record.route = route;
    if (route == nullptr) {
        if (request.framing != http1::body_framing::none) conn.set_keep_alive(false);
        conn.input().consume(conn.head_size());
        co_await conn.send_local_reply(404, local_reply_reason::no_route, !conn.keep_alive());
        co_return;
    }

    // request_filters: a declared body over the limit is refused before any byte of it is read
    // (and before any 100 Continue is sent).
    if (request.framing == http1::body_framing::content_length && request.content_length > snap.max_body) {
        conn.input().consume(conn.head_size());
        co_await conn.send_local_reply(413, local_reply_reason::body_too_large, true);
        co_return;
    }

    // request_filters: a WebSocket handshake is checked and takes one of the route's slots
    // before agents or upstreams see it. The slot is held until the tunnel ends.
    websocket_admission websocket;
    if (request.upgrade_field && !co_await admit_websocket(conn, *route, websocket)) co_return;

    // agents: the route's external agents see the request (and, if they ask, its body)
    if (!snap.agents_for(*route).empty() && !co_await run_request_agents(conn, *route)) co_return;

    // local actions
    if (route->respond) {
        const auto& r = *route->respond;
        co_await send_fixed_response(conn, *route, local_reply_reason::fixed_response, r.status, r.body,
                                     r.headers, "text/plain; charset=utf-8");
        co_return;
    }
    if (route->redirect) {
        const std::string location = redirect_location(*route->redirect, request, conn.route_path(), conn.scheme());
        const std::vector<config::header_value> headers{{"Location", location}};
        co_await send_fixed_response(conn, *route, local_reply_reason::redirect, route->redirect->status, {},
                                     headers, "text/plain; charset=utf-8");
        co_return;
    }
    if (route->builtin) {
        const std::string page = render_status_page(conn.worker(), snap);
        co_await send_fixed_response(conn, *route, local_reply_reason::builtin, 200, page, {},
                                     "text/html; charset=utf-8");
        co_return;
    }

    // select_endpoint + upstream_request + response_filters
    const upstream::upstream_group* group = snap.upstream_for(*route);
    if (group == nullptr) {
        if (request.framing != http1::body_framing::none) conn.set_keep_alive(false);
        conn.input().consume(conn.head_size());
        co_await conn.send_local_reply(503, local_reply_reason::upstream_unavailable, !conn.keep_alive());
        co_return;
    }

    upstream_exchange exchange(conn, *route, *group, websocket);
    co_await exchange.run();
}

}  // namespace sentinel::proxy
