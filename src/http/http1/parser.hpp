// Strict HTTP/1.1 head parsers (RFC 9110/9112). No I/O, no allocation beyond the reused
// header vector. The caller passes all unconsumed bytes received so far; a head is parsed
// in one pass once complete, and partial input is checked against the limits so an
// over-long line or head is rejected before it is fully received.
#pragma once

#include <string_view>

#include "http/http1/message.hpp"

namespace sentinel::http1 {

enum class parse_status : std::uint8_t { need_more, done, error };

struct parse_outcome {
    parse_status status = parse_status::need_more;
    parse_error error = parse_error::none;  // set when status == error
    std::size_t consumed = 0;               // bytes of the head (incl. final CRLF) when done
};

// Parses a request head. Leading empty lines (CRLF) before the request line are skipped as
// RFC 9112 §2.2 allows (at most a few; they count toward consumed). The views in `out` point
// into `data` and stay valid as long as those bytes do.
parse_outcome parse_request(std::string_view data, const limits& lim, request_head& out);

// Parses a response head for a request with `request_method` (HEAD and CONNECT change
// framing). 1xx responses are returned as heads too (framing none); the caller reads the
// final response after them.
parse_outcome parse_response(std::string_view data, const limits& lim,
                             std::string_view request_method, response_head& out);

}  // namespace sentinel::http1
