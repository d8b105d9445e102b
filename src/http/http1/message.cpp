// Shared helpers of the HTTP/1 codec: error → status mapping, case-insensitive compares and
// the hop-by-hop rules the proxy applies when forwarding.
#include "http/http1/message.hpp"

#include "http/http1/chars.hpp"

namespace sentinel::http1 {

void request_head::clear() {
    method = {};
    target = {};
    path = {};
    query = {};
    host = {};
    version_minor = 1;
    headers.clear();  // keeps the capacity: no allocation after the first requests
    framing = body_framing::none;
    content_length = 0;
    keep_alive = true;
    expect_continue = false;
    has_upgrade = false;
    upgrade_field = false;
    absolute_form = false;
}

void response_head::clear() {
    status = 0;
    reason = {};
    version_minor = 1;
    headers.clear();
    framing = body_framing::none;
    content_length = 0;
    keep_alive = true;
}

int status_of(parse_error error) {
    switch (error) {
        case parse_error::none: return 0;
        case parse_error::bad_request: return 400;
        case parse_error::uri_too_long: return 414;
        case parse_error::headers_too_large: return 431;
        case parse_error::not_implemented: return 501;
        case parse_error::version_not_supported: return 505;
        case parse_error::bad_response: return 502;
    }
    return 400;
}

namespace {
// ASCII-only fold: header names and tokens are ASCII, and the locale must not matter.
inline unsigned char fold(char c) {
    const auto u = static_cast<unsigned char>(c);
    return static_cast<unsigned char>(u - 'A') < 26 ? static_cast<unsigned char>(u + 32) : u;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (fold(a[i]) != fold(b[i])) return false;
    return true;
}

bool is_hop_by_hop(std::string_view name) {
    // Dispatch on length first: this runs for every field of every proxied message.
    switch (name.size()) {
    case 2: return iequals(name, "te");
    case 7: return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16: return iequals(name, "proxy-connection");
    case 17: return iequals(name, "transfer-encoding");
    case 18: return iequals(name, "proxy-authenticate");
    case 19: return iequals(name, "proxy-authorization");
    default: return false;
    }
}

bool named_in_connection(const std::vector<header>& headers, std::string_view name) {
    for (const auto& h : headers) {
        if (!iequals(h.name, "connection")) continue;
        const bool listed = !detail::for_each_list_element(
            h.value, [&](std::string_view element) { return !iequals(element, name); });
        if (listed) return true;
    }
    return false;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!detail::is_tchar(c)) return false;
    return true;
}

bool is_field_value(std::string_view s) {
    if (!s.empty() && (detail::is_ows(s.front()) || detail::is_ows(s.back()))) return false;
    for (char c : s)
        if (!detail::is(c, detail::cc_field)) return false;
    return true;
}

}  // namespace sentinel::http1
