#include "proxy/websocket_phase.hpp"

#include <string>

#include <boost/asio/use_awaitable.hpp>

#include "observability/event_log.hpp"
#include "proxy/http1_connection.hpp"

namespace sentinel::proxy {

namespace {

using observability::local_reply_reason;
using observability::websocket_refusal;

websocket_refusal refusal_of(websocket::request_problem p) {
    using websocket::request_problem;
    switch (p) {
    case request_problem::method: return websocket_refusal::method;
    case request_problem::http_version: return websocket_refusal::http_version;
    case request_problem::connection: return websocket_refusal::connection;
    case request_problem::key: return websocket_refusal::key;
    case request_problem::unsupported_version: return websocket_refusal::unsupported_version;
    case request_problem::version:
    case request_problem::ok: break;
    }
    return websocket_refusal::version;
}

const char* describe(websocket::response_problem p) {
    switch (p) {
    case websocket::response_problem::upgrade: return "Upgrade is not \"websocket\"";
    case websocket::response_problem::connection: return "Connection does not list \"upgrade\"";
    case websocket::response_problem::accept: return "Sec-WebSocket-Accept does not match the key";
    case websocket::response_problem::ok: break;
    }
    return "";
}

void count(http1_connection& conn, const config::route_config& route, websocket_refusal why) {
    conn.worker().route_metrics(conn.snap(), &route).websocket_refused[static_cast<std::size_t>(why)].inc();
}

}  // namespace

boost::asio::awaitable<bool> admit_websocket(http1_connection& conn, const config::route_config& route,
                                             websocket_admission& out) {
    const auto& request = conn.request();
    // Only requests with an Upgrade field are looked at: the common request pays one flag test.
    if (!request.upgrade_field || !websocket::requests_websocket(request.headers)) co_return true;
    if (!route.websocket.enabled) {
        count(conn, route, websocket_refusal::not_enabled);
        co_return true;
    }

    std::string_view key;
    const auto problem = websocket::check_request(request, key);
    websocket_counter* counter = problem == websocket::request_problem::ok ? conn.snap().websockets_for(route) : nullptr;
    if (counter != nullptr && counter->try_acquire(route.websocket.max_connections)) {
        out.admit(*counter, websocket::compute_accept(key));
        co_return true;
    }

    // Refused. A failed handshake leaves the client waiting for a 101 that never comes: the
    // connection ends after the reply (and a body it may have announced is never read).
    conn.input().consume(conn.head_size());
    conn.set_keep_alive(false);
    if (problem == websocket::request_problem::ok) {
        count(conn, route, websocket_refusal::max_connections);
        observability::event_log::warn("WebSocket max-connections reached: upgrade refused",
                                       {{"route", route.id},
                                        {"max_connections", std::to_string(route.websocket.max_connections)}});
        co_await conn.send_local_reply(503, local_reply_reason::websocket_max_connections, true);
        co_return false;
    }
    count(conn, route, refusal_of(problem));
    if (problem == websocket::request_problem::unsupported_version) {
        // RFC 6455 §4.2.2: name the version this server speaks.
        conn.worker().metrics.count_local(local_reply_reason::upgrade_required);
        conn.record().local_error = true;
        static const std::vector<config::header_value> version{
            {"Sec-WebSocket-Version", std::string(websocket::supported_version)}};
        co_await conn.send_response(426, "text/plain; charset=utf-8", "426 Upgrade Required\n", version);
        co_return false;
    }
    co_await conn.send_local_reply(400, local_reply_reason::bad_request, true);
    co_return false;
}

bool websocket_response_ok(http1_connection& conn, const config::route_config& route,
                           const websocket_admission& admission, const http1::response_head& response) {
    const auto problem = websocket::check_response(response, admission.expected_accept());
    if (problem == websocket::response_problem::ok) return true;
    count(conn, route, websocket_refusal::upstream_handshake);
    observability::event_log::warn("upstream 101 is not a valid WebSocket handshake: answered 502",
                                   {{"route", route.id},
                                    {"endpoint", conn.record().upstream_endpoint},
                                    {"reason", describe(problem)}});
    return false;
}

}  // namespace sentinel::proxy
