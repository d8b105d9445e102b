// Serialises message heads for the wire. Appends to a caller-owned buffer that is reused
// across requests, so serialising allocates only when the buffer has to grow.
#pragma once

#include <string>
#include <string_view>

#include "http/http1/message.hpp"

namespace sentinel::http1 {

// "<method> <target> HTTP/1.1\r\n"
void append_request_line(std::string& out, std::string_view method, std::string_view target);
// "HTTP/1.1 <status> <reason>\r\n"; an empty reason uses the standard one (reason_phrase()).
void append_status_line(std::string& out, int status, std::string_view reason = {});
// "<name>: <value>\r\n"
void append_header(std::string& out, std::string_view name, std::string_view value);
// "\r\n"
void append_head_end(std::string& out);

// Standard reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise).
std::string_view reason_phrase(int status);

}  // namespace sentinel::http1
