// Strict HTTP/1.1 head parsers (RFC 9110/9112). See docs/architecture/http1_codec.md for the
// rules and why each one exists; the short version: anything two implementations could read
// differently (framing, line endings, whitespace, folding) is rejected, never repaired.
#include "http/http1/parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "http/http1/chars.hpp"

namespace sentinel::http1 {
namespace {

using namespace detail;

// RFC 9112 §2.2 lets a server skip empty lines before a request line (clients send a stray
// CRLF after a POST body). A few are tolerated; an endless stream of them is an attack.
constexpr int max_leading_empty_lines = 4;
// Content-Length and chunk sizes above this are rejected: no real body is that large and it
// keeps every length representable as a signed 64-bit offset for the caller.
constexpr std::uint64_t max_body_length = std::numeric_limits<std::int64_t>::max();

enum class scan : std::uint8_t { ok, need_more, bad, too_large };

std::size_t saturating_add(std::size_t a, std::size_t b) {
    return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                           : a + b;
}

struct line_end {
    scan result;
    std::size_t cr = 0;  // index of the CR that ends the line when result == ok
};

// Finds the CRLF ending the line that starts at `pos`, whose content may be at most `max_len`
// bytes. Looks at no more than max_len + 2 bytes, so an over-long line is rejected while it is
// still arriving and a huge buffer costs no more than the limit to scan.
line_end find_line(std::string_view data, std::size_t pos, std::size_t max_len) {
    const std::size_t avail = data.size() - pos;
    const std::size_t window = std::min(avail, saturating_add(max_len, 2));
    const auto* lf = static_cast<const char*>(std::memchr(data.data() + pos, '\n', window));
    if (lf == nullptr) {
        if (avail >= saturating_add(max_len, 2)) return {scan::too_large};
        // Content is already one byte over unless that byte is the CR of the line end.
        if (avail == max_len + 1 && data[pos + max_len] != '\r') return {scan::too_large};
        return {scan::need_more};
    }
    const auto lf_index = static_cast<std::size_t>(lf - data.data());
    // Bare LF: RFC 9112 §2.2 allows accepting it, but a peer that disagrees would see a
    // different message boundary, so CRLF is required everywhere.
    if (lf_index == pos || data[lf_index - 1] != '\r') return {scan::bad};
    const std::size_t cr = lf_index - 1;
    if (cr - pos > max_len) return {scan::too_large};
    return {scan::ok, cr};
}

struct fields_end {
    scan result;
    std::size_t end = 0;  // index just past the empty line when result == ok
};

// Parses field lines from `pos` up to and including the empty line that ends the head. The
// head (from `head_start`) may not exceed max_header_bytes nor hold more than max_headers.
fields_end parse_fields(std::string_view data, std::size_t pos, std::size_t head_start,
                        const limits& lim, std::vector<header>& headers) {
    const std::size_t head_limit = saturating_add(head_start, lim.max_header_bytes);
    const char* const base = data.data();
    for (;;) {
        if (pos >= data.size()) return {scan::need_more};
        // The line plus its CRLF must fit in what is left of the head budget.
        if (head_limit < saturating_add(pos, 2)) return {scan::too_large};
        const line_end line = find_line(data, pos, head_limit - pos - 2);
        if (line.result != scan::ok) return {line.result};
        if (line.cr == pos) return {scan::ok, pos + 2};
        if (headers.size() >= lim.max_headers) return {scan::too_large};

        const char* p = base + pos;
        const char* const e = base + line.cr;
        // obs-fold (RFC 9112 §5.2): a line starting with whitespace continues the previous
        // value for some peers and starts nothing for others; reject it.
        if (is_ows(*p)) return {scan::bad};
        const char* n = p;
        while (n < e && is_tchar(*n)) ++n;
        // Empty name, or anything but ':' after it — notably "Name :", which some peers
        // trim and others keep as a different field (RFC 9112 §5.1).
        if (n == p || n == e || *n != ':') return {scan::bad};
        const char* v = n + 1;
        while (v < e && is_ows(*v)) ++v;
        const char* ve = skip_field_bytes(v, e);
        if (ve != e) return {scan::bad};  // CR, LF, NUL or another CTL inside the value
        while (ve > v && is_ows(ve[-1])) --ve;
        headers.push_back(header{std::string_view(p, static_cast<std::size_t>(n - p)),
                                 std::string_view(v, static_cast<std::size_t>(ve - v))});
        pos = line.cr + 2;
    }
}

// HTTP-version is exactly "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
// Returns the major*10+minor, or -1 when malformed.
int parse_version(std::string_view v) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
        !is_digit(v[7]))
        return -1;
    return (v[5] - '0') * 10 + (v[7] - '0');
}

bool parse_port(std::string_view port) {
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
        if (!is_digit(c)) return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535;
}

// uri-host [":" port] restricted to what a routable name can be: DNS-style reg-name
// (alnum - . _ ~), IPv4 or a bracketed IPv6 literal. Userinfo, percent-encoding and
// sub-delims are refused because the router compares hosts textually.
bool valid_host(std::string_view h, bool require_port) {
    if (h.empty()) return false;
    std::size_t i = 0;
    if (h[0] == '[') {
        i = 1;
        while (i < h.size() && (is(h[i], cc_hex) || h[i] == ':' || h[i] == '.')) ++i;
        if (i == 1 || i >= h.size() || h[i] != ']') return false;
        ++i;
    } else {
        while (i < h.size() && is(h[i], cc_host)) ++i;
        if (i == 0) return false;
    }
    if (i == h.size()) return !require_port;
    return h[i] == ':' && parse_port(h.substr(i + 1));
}

// Percent signs in a path must start a %HH escape: the router decodes paths, and a peer that
// passes "%zz" through would match routes differently.
bool valid_percent_encoding(std::string_view s) {
    for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 3)) {
        if (i + 2 >= s.size() || !is(s[i + 1], cc_hex) || !is(s[i + 2], cc_hex)) return false;
    }
    return true;
}

void split_path_query(std::string_view t, std::string_view& path, std::string_view& query) {
    const auto q = t.find('?');
    path = t.substr(0, q);
    query = q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

// absolute-form (RFC 9112 §3.2.2): only http/https, an authority without userinfo (RFC 9110
// §4.2.4), and an empty path meaning "/".
bool parse_absolute_form(std::string_view t, std::string_view& authority, std::string_view& path,
                         std::string_view& query) {
    std::size_t i = 0;
    while (i < t.size() && (is(t[i], cc_host) && t[i] != '_' && t[i] != '~')) ++i;
    const auto scheme = t.substr(0, i);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return false;
    if (t.substr(i, 3) != "://") return false;
    auto rest = t.substr(i + 3);
    const auto auth_end = rest.find_first_of("/?");
    authority = rest.substr(0, auth_end);
    if (!valid_host(authority, false)) return false;
    rest = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);
    split_path_query(rest, path, query);
    if (path.empty()) path = "/";  // static storage: valid forever, like the input views
    return true;
}

bool parse_content_length(std::string_view v, std::uint64_t& out) {
    if (v.empty()) return false;
    std::uint64_t value = 0;
    for (char c : v) {
        if (!is_digit(c)) return false;  // also rejects lists ("5, 5"), signs and spaces
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (value > (max_body_length - d) / 10) return false;
        value = value * 10 + d;
    }
    out = value;
    return true;
}

// What the framing and connection-management fields of a head say, gathered in one pass over
// the parsed header vector (a handful of length compares per field).
struct head_fields {
    bool malformed = false;     // unparsable CL/TE value
    int cl_count = 0;
    bool cl_differs = false;
    std::uint64_t content_length = 0;
    bool has_te = false;
    int chunked_count = 0;
    bool chunked_last = false;
    bool other_coding = false;
    int host_count = 0;
    std::string_view host;
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool conn_upgrade = false;
    bool upgrade = false;
    bool expect_continue = false;
};

void scan_transfer_encoding(std::string_view value, head_fields& f) {
    f.has_te = true;
    for_each_list_element(value, [&](std::string_view coding) {
        std::size_t n = 0;
        while (n < coding.size() && is_tchar(coding[n])) ++n;
        // Empty elements are legal list syntax but serve only to confuse; refuse them here.
        if (n == 0) {
            f.malformed = true;
            return false;
        }
        const auto name = coding.substr(0, n);
        const auto params = trim_ows(coding.substr(n));
        if (!params.empty() && params.front() != ';') {
            f.malformed = true;
            return false;
        }
        if (iequals(name, "chunked")) {
            if (!params.empty()) {  // chunked takes no parameters (RFC 9112 §7.1)
                f.malformed = true;
                return false;
            }
            ++f.chunked_count;
            f.chunked_last = true;
        } else {
            f.other_coding = true;
            f.chunked_last = false;
        }
        return true;
    });
}

void scan_fields(const std::vector<header>& headers, head_fields& f) {
    for (const auto& h : headers) {
        switch (h.name.size()) {
            case 4:
                if (iequals(h.name, "host")) {
                    ++f.host_count;
                    f.host = h.value;
                }
                break;
            case 6:
                // Only 100-continue means anything; other expectations are ignored, which
                // RFC 9110 §10.1.1 permits (417 is not a status this codec produces).
                if (iequals(h.name, "expect") && iequals(h.value, "100-continue"))
                    f.expect_continue = true;
                break;
            case 7:
                if (iequals(h.name, "upgrade")) f.upgrade = true;
                break;
            case 10:
                if (iequals(h.name, "connection")) {
                    for_each_list_element(h.value, [&](std::string_view option) {
                        if (iequals(option, "close")) f.conn_close = true;
                        else if (iequals(option, "keep-alive")) f.conn_keep_alive = true;
                        else if (iequals(option, "upgrade")) f.conn_upgrade = true;
                        return true;
                    });
                }
                break;
            case 14:
                if (iequals(h.name, "content-length")) {
                    std::uint64_t value = 0;
                    if (!parse_content_length(h.value, value)) f.malformed = true;
                    if (f.cl_count > 0 && value != f.content_length) f.cl_differs = true;
                    f.content_length = value;
                    ++f.cl_count;
                }
                break;
            case 17:
                if (iequals(h.name, "transfer-encoding")) scan_transfer_encoding(h.value, f);
                break;
            default:
                break;
        }
    }
}

parse_outcome fail(parse_error e) { return {parse_status::error, e, 0}; }
constexpr parse_outcome need_more{parse_status::need_more, parse_error::none, 0};

// While the request line is incomplete, the method must already look like one: a TLS
// ClientHello or other binary sent to a plain port is answered now, not after 8 KiB.
bool partial_method_ok(std::string_view partial) {
    for (std::size_t i = 0; i < partial.size(); ++i) {
        if (is_tchar(partial[i])) continue;
        return partial[i] == ' ' && i > 0;
    }
    return true;
}

}  // namespace

parse_outcome parse_request(std::string_view data, const limits& lim, request_head& out) {
    out.clear();
    std::size_t pos = 0;
    for (int skipped = 0;; ++skipped) {
        if (pos >= data.size()) return need_more;
        if (data[pos] != '\r') break;
        if (pos + 1 >= data.size()) return need_more;
        if (data[pos + 1] != '\n' || skipped == max_leading_empty_lines)
            return fail(parse_error::bad_request);
        pos += 2;
    }
    const std::size_t head_start = pos;

    const line_end line = find_line(data, pos, lim.max_request_line);
    switch (line.result) {
        case scan::ok: break;
        case scan::too_large: return fail(parse_error::uri_too_long);
        case scan::bad: return fail(parse_error::bad_request);
        case scan::need_more:
            if (data.size() - head_start > lim.max_header_bytes)
                return fail(parse_error::headers_too_large);
            if (!partial_method_ok(data.substr(pos))) return fail(parse_error::bad_request);
            return need_more;
    }
    const char* const b = data.data();
    const std::size_t cr = line.cr;

    // method SP request-target SP HTTP-version: exactly one SP each (RFC 9112 §3).
    std::size_t p = pos;
    while (p < cr && is_tchar(b[p])) ++p;
    if (p == pos || p == cr || b[p] != ' ') return fail(parse_error::bad_request);
    out.method = std::string_view(b + pos, p - pos);
    const std::size_t t = ++p;
    while (p < cr && is(b[p], cc_target)) ++p;
    // No SP after the target: an HTTP/0.9 request or a forbidden byte in the target.
    if (p == cr || p == t || b[p] != ' ') return fail(parse_error::bad_request);
    out.target = std::string_view(b + t, p - t);
    const int version = parse_version(std::string_view(b + p + 1, cr - p - 1));
    if (version < 0) return fail(parse_error::bad_request);
    if (version != 10 && version != 11) return fail(parse_error::version_not_supported);
    out.version_minor = version % 10;

    std::string_view authority;  // absolute-form or CONNECT: must agree with Host
    const auto target = out.target;
    if (out.method == "CONNECT") {
        // authority-form (RFC 9110 §9.3.6): host and a port, nothing else.
        if (!valid_host(target, true)) return fail(parse_error::bad_request);
        authority = target;
    } else if (target.front() == '/') {
        split_path_query(target, out.path, out.query);
    } else if (target == "*") {
        if (out.method != "OPTIONS") return fail(parse_error::bad_request);
        out.path = target;
    } else {
        if (!parse_absolute_form(target, authority, out.path, out.query))
            return fail(parse_error::bad_request);
        out.absolute_form = true;
    }
    if (!valid_percent_encoding(out.path)) return fail(parse_error::bad_request);

    const fields_end fields = parse_fields(data, cr + 2, head_start, lim, out.headers);
    switch (fields.result) {
        case scan::ok: break;
        case scan::need_more: return need_more;
        case scan::too_large: return fail(parse_error::headers_too_large);
        case scan::bad: return fail(parse_error::bad_request);
    }

    head_fields f;
    scan_fields(out.headers, f);
    // Framing (RFC 9112 §6.1, §6.3): any ambiguity is a smuggling vector, so several
    // Content-Length fields are refused even when equal, and so is TE on HTTP/1.0.
    if (f.malformed || f.cl_count > 1 || (f.cl_count > 0 && f.has_te) ||
        (f.has_te && out.version_minor == 0) || f.chunked_count > 1)
        return fail(parse_error::bad_request);
    if (f.other_coding) return fail(parse_error::not_implemented);

    if (f.host_count > 1 || (f.host_count == 0 && out.version_minor == 1))
        return fail(parse_error::bad_request);
    if (f.host_count == 1 && !valid_host(f.host, false)) return fail(parse_error::bad_request);
    if (!authority.empty()) {
        if (f.host_count == 1 && !iequals(f.host, authority)) return fail(parse_error::bad_request);
        out.host = authority;
    } else {
        out.host = f.host;
    }

    if (f.chunked_count == 1) {
        out.framing = body_framing::chunked;
    } else if (f.cl_count == 1) {
        out.content_length = f.content_length;
        out.framing = f.content_length > 0 ? body_framing::content_length : body_framing::none;
    }
    out.keep_alive = !f.conn_close && (out.version_minor == 1 || f.conn_keep_alive);
    out.expect_continue = f.expect_continue;
    // RFC 9110 §7.8: Upgrade is ignored on HTTP/1.0 and only meaningful when Connection
    // names it (otherwise an intermediary could have forwarded it by mistake).
    out.has_upgrade = out.version_minor == 1 && f.upgrade && f.conn_upgrade;
    out.upgrade_field = f.upgrade;
    return {parse_status::done, parse_error::none, fields.end};
}

parse_outcome parse_response(std::string_view data, const limits& lim,
                             std::string_view request_method, response_head& out) {
    out.clear();
    const auto bad = fail(parse_error::bad_response);
    const line_end line = find_line(data, 0, lim.max_request_line);
    switch (line.result) {
        case scan::ok: break;
        case scan::too_large:
        case scan::bad: return bad;
        case scan::need_more: {
            if (data.size() > lim.max_header_bytes) return bad;
            const auto n = std::min<std::size_t>(data.size(), 5);
            return data.substr(0, n) == std::string_view("HTTP/").substr(0, n) ? need_more : bad;
        }
    }
    const char* const b = data.data();
    const std::size_t cr = line.cr;

    // HTTP-version SP 3DIGIT SP reason-phrase. A missing SP + reason is accepted: servers
    // send "HTTP/1.1 200\r\n" and the reason carries no meaning (RFC 9112 §4).
    if (cr < 12) return bad;
    const int version = parse_version(std::string_view(b, 8));
    if ((version != 10 && version != 11) || b[8] != ' ') return bad;
    out.version_minor = version % 10;
    if (b[9] < '1' || b[9] > '9' || !is_digit(b[10]) || !is_digit(b[11])) return bad;
    out.status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    if (cr > 12) {
        if (b[12] != ' ') return bad;
        for (std::size_t i = 13; i < cr; ++i)
            if (!is(b[i], cc_field)) return bad;
        out.reason = std::string_view(b + 13, cr - 13);
    }

    // Upstream heads are never answered with 431: every upstream failure is a 502.
    const fields_end fields = parse_fields(data, cr + 2, 0, lim, out.headers);
    if (fields.result == scan::need_more) return need_more;
    if (fields.result != scan::ok) return bad;

    head_fields f;
    scan_fields(out.headers, f);
    // Identical repeated Content-Length values are tolerated on responses (RFC 9110 §8.6):
    // upstream frameworks do emit them and the length is unambiguous.
    if (f.malformed || f.cl_differs || (f.cl_count > 0 && f.has_te) ||
        (f.has_te && out.version_minor == 0) || f.chunked_count > 1 || f.other_coding)
        return bad;
    out.content_length = f.content_length;

    const int s = out.status;
    if (s < 200 || s == 204 || s == 304 || request_method == "HEAD" ||
        (request_method == "CONNECT" && s < 300)) {
        out.framing = body_framing::none;
    } else if (f.chunked_count == 1) {
        out.framing = body_framing::chunked;
    } else if (f.cl_count > 0) {
        out.framing = f.content_length > 0 ? body_framing::content_length : body_framing::none;
    } else {
        out.framing = body_framing::until_close;
    }
    out.keep_alive = !f.conn_close && (out.version_minor == 1 || f.conn_keep_alive) &&
                     out.framing != body_framing::until_close;
    return {parse_status::done, parse_error::none, fields.end};
}

}  // namespace sentinel::http1
