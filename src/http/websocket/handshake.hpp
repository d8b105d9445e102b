// RFC 6455 §4 opening handshake, as a proxy checks it: the client's request (§4.2.1) before it
// is relayed, and the server's 101 (the checks §4.1 asks of a client) before it reaches the
// client. Sentinel does not terminate WebSockets: the key travels to the upstream unchanged and
// the upstream computes the accept value; checking it here means a tunnel is only ever opened
// to a server that really speaks WebSocket for this request. No I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "http/http1/message.hpp"

namespace sentinel::websocket {

// The only protocol version there is (§4.4); anything else is answered 426 with this value in
// Sec-WebSocket-Version.
inline constexpr std::string_view supported_version = "13";

// Whether an Upgrade field lists the "websocket" protocol (case-insensitive, §4.2.1 item 3).
// Looks at the fields only: HTTP version, method and Connection are check_request's job, so a
// malformed handshake is refused rather than passed on as a plain request.
bool requests_websocket(const std::vector<http1::header>& headers);

// Why a handshake request is refused; everything but `ok` and `unsupported_version` is a 400.
enum class request_problem : std::uint8_t {
    ok,
    method,               // not GET (§4.1 item 2)
    http_version,         // not HTTP/1.1 (HTTP/1.0 cannot upgrade: RFC 9110 §7.8)
    connection,           // Connection does not list "upgrade"
    key,                  // Sec-WebSocket-Key missing, repeated, or not the base64 of 16 bytes
    version,              // Sec-WebSocket-Version missing, repeated or not a number 0-255
    unsupported_version,  // a well-formed version other than 13: 426 (§4.2.2 item 4)
};

// Checks a request for which requests_websocket() is true. On `ok`, `key` views the
// Sec-WebSocket-Key value inside `request`.
request_problem check_request(const http1::request_head& request, std::string_view& key);

// True for the canonical base64 of exactly 16 bytes: 22 alphabet characters, "==", and the
// unused low bits of the last character zero (RFC 4648 §3.5 lets a decoder refuse the rest).
bool valid_key(std::string_view key);

// Sec-WebSocket-Accept for `key` (§4.2.2 item 5.4): base64(SHA-1(key + the RFC's GUID)).
using accept_value = std::array<char, 28>;
accept_value compute_accept(std::string_view key);

// Why an upstream's 101 is refused (the client would have to fail the connection, §4.1).
enum class response_problem : std::uint8_t {
    ok,
    upgrade,     // Upgrade is not exactly "websocket"
    connection,  // Connection does not list "upgrade"
    accept,      // Sec-WebSocket-Accept missing, repeated or not the value for the request's key
};

response_problem check_response(const http1::response_head& response, std::string_view expected_accept);

}  // namespace sentinel::websocket
