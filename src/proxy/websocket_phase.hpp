// The WebSocket steps of the request pipeline (docs/architecture/websocket.md). On a route with
// `websocket #true` a handshake is checked (RFC 6455 §4.2.1) and admitted under the route's
// cap before agents or upstreams see it; the upstream's 101 is checked before the client sees
// it (upstream_exchange); the tunnel itself runs in upstream_relay.cpp with the route's idle
// timeout. A WebSocket upgrade on a route without `websocket` is only counted here: forwarding
// sends it on as a plain request, without its Upgrade.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "config/model/config.hpp"
#include "http/http1/message.hpp"
#include "http/websocket/handshake.hpp"
#include "proxy/websocket_registry.hpp"

namespace sentinel::proxy {

class http1_connection;

// A handshake admitted on a route: one of the route's max-connections slots, held until this
// is destroyed (after the exchange, so the whole tunnel), and the Sec-WebSocket-Accept the
// upstream's 101 must carry (computed up front: the request head is gone by then).
class websocket_admission {
public:
    websocket_admission() = default;
    ~websocket_admission() {
        if (counter_ != nullptr) counter_->release();
    }
    websocket_admission(const websocket_admission&) = delete;
    websocket_admission& operator=(const websocket_admission&) = delete;

    void admit(websocket_counter& counter, const websocket::accept_value& accept) {
        counter_ = &counter;
        accept_ = accept;
    }
    bool admitted() const { return counter_ != nullptr; }
    std::string_view expected_accept() const { return {accept_.data(), accept_.size()}; }

private:
    websocket_counter* counter_ = nullptr;  // the snapshot's, which outlives the request
    websocket::accept_value accept_{};
};

// request_filters: for a request asking for a WebSocket upgrade on a route with `websocket`,
// checks the handshake (400, or 426 with Sec-WebSocket-Version: 13) and takes a slot under the
// route's max-connections (503). False when the request was answered; the connection then
// closes. Other requests pass untouched (a WebSocket upgrade on a route without `websocket`
// is counted as not_enabled).
boost::asio::awaitable<bool> admit_websocket(http1_connection& conn, const config::route_config& route,
                                             websocket_admission& out);

// The upstream answered 101 to an admitted handshake: true when the answer is a WebSocket
// one for this key. Otherwise counts the refusal and logs it; the caller answers 502 and
// closes the upstream connection.
bool websocket_response_ok(http1_connection& conn, const config::route_config& route,
                           const websocket_admission& admission, const http1::response_head& response);

}  // namespace sentinel::proxy
