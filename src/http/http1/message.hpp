// HTTP/1.1 message heads as views into the connection's read buffer (zero-copy).
// Codecs in this folder do no I/O: they take bytes and produce heads, body events or errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sentinel::http1 {

struct header {
    std::string_view name;   // as received (case preserved); compare with iequals()
    std::string_view value;  // leading/trailing OWS stripped
};

// How the body of a message is delimited (RFC 9112 §6.3).
enum class body_framing : std::uint8_t {
    none,            // no body (no CL/TE on a request; HEAD/1xx/204/304 responses; CL: 0)
    content_length,  // exactly `content_length` bytes
    chunked,         // chunked transfer coding, final
    until_close,     // response only: read until the upstream closes
};

// Why a message was rejected. Each maps to exactly one status (see status_of()).
enum class parse_error : std::uint8_t {
    none,
    bad_request,             // 400: any syntax/framing violation not listed below
    uri_too_long,            // 414: request line over limits::max_request_line
    headers_too_large,       // 431: header block over max_header_bytes or more than max_headers
    not_implemented,         // 501: a transfer coding other than chunked
    version_not_supported,   // 505: HTTP/2.0 or later on an HTTP/1 connection
    bad_response,            // 502 (upstream side): malformed or conflicting response framing
};

struct limits {
    std::size_t max_request_line = 8 * 1024;
    std::size_t max_header_bytes = 32 * 1024;  // whole head, request line included
    std::size_t max_headers = 100;
};

struct request_head {
    std::string_view method;
    std::string_view target;  // request-target as sent
    std::string_view path;    // origin-form path (absolute-form: the path part; "*" for OPTIONS *)
    std::string_view query;   // without '?', empty when absent
    std::string_view host;    // Host header value (or absolute-form authority when Host agrees)
    int version_minor = 1;    // HTTP/1.<minor>: 0 or 1
    std::vector<header> headers;  // reused across requests: clear() keeps the capacity
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;        // after version and Connection: close/keep-alive
    bool expect_continue = false;  // Expect: 100-continue
    bool has_upgrade = false;      // Upgrade header present and "upgrade" in Connection
    bool upgrade_field = false;    // an Upgrade header is present, whatever the version or
                                   // Connection (WebSocket handshakes are checked on it)
    bool absolute_form = false;

    void clear();
};

struct response_head {
    int status = 0;
    std::string_view reason;
    int version_minor = 1;
    std::vector<header> headers;
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;  // the upstream connection may be reused after this response

    void clear();
};

// The HTTP status a downstream parse error is answered with (400, 414, 431, 501, 505; 502 for
// bad_response).
int status_of(parse_error error);

// ASCII case-insensitive comparison for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

// True if `name` is a hop-by-hop header (RFC 9110 §7.6.1: Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate,
// Proxy-Authorization) — fields named by Connection are checked separately with
// named_in_connection().
bool is_hop_by_hop(std::string_view name);

// True if `name` is listed in any Connection header of `headers`.
bool named_in_connection(const std::vector<header>& headers, std::string_view name);

// True if `s` is a non-empty RFC 9110 token (valid method or field name). The serializer does
// not validate; callers check bytes that did not come from the parser (config, filters) here.
bool is_token(std::string_view s);

// True if `s` may be sent as a field value: no CTL except HTAB, no DEL, no leading/trailing
// whitespace (so CR/LF injection is impossible).
bool is_field_value(std::string_view s);

}  // namespace sentinel::http1
