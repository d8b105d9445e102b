#include "proxy/forwarding.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "http/http1/serializer.hpp"
#include "http/websocket/handshake.hpp"

namespace sentinel::proxy {

namespace {

using http1::iequals;

bool listed(const std::vector<std::string>& names, std::string_view name) {
    return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
}

bool listed(const std::vector<config::header_value>& headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const config::header_value& h) { return iequals(h.name, name); });
}

// The field names listed by a message's Connection headers, gathered once per message so
// filtering stays linear in the number of fields. "close" and "keep-alive" are skipped: they
// name no field.
class connection_tokens {
public:
    explicit connection_tokens(const std::vector<http1::header>& all) : all_(all) {
        for (const auto& h : all) {
            if (!iequals(h.name, "connection")) continue;
            std::string_view rest = h.value;
            while (!rest.empty()) {
                const auto comma = rest.find(',');
                std::string_view token = rest.substr(0, comma);
                while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
                while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
                if (!token.empty() && !iequals(token, "close") && !iequals(token, "keep-alive")) {
                    if (count_ == tokens_.size()) overflow_ = true;
                    else tokens_[count_++] = token;
                }
                rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
        }
    }
    bool contains(std::string_view name) const {
        if (overflow_) return http1::named_in_connection(all_, name);
        for (std::size_t i = 0; i < count_; ++i)
            if (iequals(tokens_[i], name)) return true;
        return false;
    }

private:
    const std::vector<http1::header>& all_;
    std::array<std::string_view, 8> tokens_{};
    std::size_t count_ = 0;
    bool overflow_ = false;
};

// Fields that never cross the proxy as received: hop-by-hop ones, those named by Connection,
// the framing fields (re-derived from the parsed framing), and those the route replaces.
bool dropped(const connection_tokens& named, const http1::header& h, const config::header_ops& ops) {
    return http1::is_hop_by_hop(h.name) || iequals(h.name, "content-length") || named.contains(h.name) ||
           (!ops.remove.empty() && listed(ops.remove, h.name)) || (!ops.set.empty() && listed(ops.set, h.name));
}

void apply_route_additions(std::string& out, const config::header_ops& ops) {
    for (const auto& h : ops.set) http1::append_header(out, h.name, h.value);
    for (const auto& h : ops.add) http1::append_header(out, h.name, h.value);
}

void append_length(std::string& out, std::uint64_t length) {
    char digits[24];
    const auto n = fmt::format_to_n(digits, sizeof digits, "{}", length).size;
    http1::append_header(out, "Content-Length", std::string_view(digits, n));
}

// Any mention of h2c, in any case: the HTTP/2 upgrade is never relayed (an h2c upgrade would
// hand the upstream connection to a protocol the proxy does not parse).
bool mentions_h2c(const http1::request_head& request) {
    for (const auto& h : request.headers) {
        if (!iequals(h.name, "upgrade")) continue;
        for (std::size_t i = 0; i + 3 <= h.value.size(); ++i)
            if (iequals(h.value.substr(i, 3), "h2c")) return true;
    }
    return false;
}

}  // namespace

upgrade_kind relayed_upgrade(const http1::request_head& request, const config::route_config& route) {
    if (!request.has_upgrade) return upgrade_kind::none;
    if (websocket::requests_websocket(request.headers))
        return route.websocket.enabled ? upgrade_kind::websocket : upgrade_kind::none;
    if (!route.allow_upgrade || mentions_h2c(request)) return upgrade_kind::none;
    return upgrade_kind::other;
}

void build_upstream_head(std::string& out, const http1::request_head& request,
                         const config::route_config& route, const forward_context& ctx) {
    out.clear();
    const auto& ops = route.request_headers;
    // Absolute-form targets are sent upstream in origin form; Host carries the authority.
    // A normalised path (dot segments removed) replaces the one received.
    if (request.absolute_form || !ctx.path.empty()) {
        std::string target(!ctx.path.empty() ? ctx.path : request.path.empty() ? std::string_view("/") : request.path);
        if (!request.query.empty()) target.append("?").append(request.query);
        http1::append_request_line(out, request.method, target);
    } else {
        http1::append_request_line(out, request.method, request.target);
    }

    const connection_tokens named(request.headers);
    std::string_view forwarded_for, forwarded_proto, forwarded_host, upgrade;
    bool has_host = false;
    std::string joined_for;
    for (const auto& h : request.headers) {
        if (iequals(h.name, "upgrade")) upgrade = h.value;
        if (iequals(h.name, "x-forwarded-for")) {
            // Several X-Forwarded-For fields form one list (RFC 9110 §5.3).
            if (forwarded_for.empty()) {
                forwarded_for = h.value;
            } else {
                joined_for.assign(forwarded_for).append(", ").append(h.value);
                forwarded_for = joined_for;
            }
            continue;
        }
        if (iequals(h.name, "x-forwarded-proto")) { forwarded_proto = h.value; continue; }
        if (iequals(h.name, "x-forwarded-host")) { forwarded_host = h.value; continue; }
        if (iequals(h.name, "x-request-id") || iequals(h.name, "expect")) continue;
        if (ctx.trace && (iequals(h.name, "traceparent") || iequals(h.name, "tracestate"))) continue;
        // Client-certificate headers come only from the verified handshake, never the client.
        if ((route.client_cert_subject_header && iequals(h.name, *route.client_cert_subject_header)) ||
            (route.client_cert_fingerprint_header && iequals(h.name, *route.client_cert_fingerprint_header)))
            continue;
        if (dropped(named, h, ops)) continue;
        if (ctx.agent_edits != nullptr && ctx.agent_edits->drops(h.name)) continue;
        if (iequals(h.name, "host")) {
            // Re-added below: from the absolute-form authority, or the route's rewrite.
            if (request.absolute_form || !ctx.host_override.empty()) continue;
            has_host = true;
        }
        http1::append_header(out, h.name, h.value);
    }
    // HTTP/1.1 upstream requests need a Host: an HTTP/1.0 client may not have sent one.
    if (!ctx.host_override.empty()) http1::append_header(out, "Host", ctx.host_override);
    else if (!has_host) http1::append_header(out, "Host", request.host.empty() ? ctx.default_host : request.host);

    // Only a trusted peer may extend the forwarding chain; anyone else starts it afresh.
    if (ctx.peer_trusted && !forwarded_for.empty()) {
        std::string chain(forwarded_for);
        chain.append(", ").append(ctx.peer);
        http1::append_header(out, "X-Forwarded-For", chain);
    } else {
        http1::append_header(out, "X-Forwarded-For", ctx.peer);
    }
    http1::append_header(out, "X-Forwarded-Proto",
                         ctx.peer_trusted && !forwarded_proto.empty() ? forwarded_proto : ctx.scheme);
    const std::string_view host = ctx.peer_trusted && !forwarded_host.empty() ? forwarded_host : request.host;
    if (!host.empty()) http1::append_header(out, "X-Forwarded-Host", host);
    http1::append_header(out, "X-Request-Id", ctx.request_id);
    if (ctx.trace) {
        http1::append_header(out, "traceparent", ctx.traceparent);
        if (!ctx.tracestate.empty()) http1::append_header(out, "tracestate", ctx.tracestate);
    }
    if (route.client_cert_subject_header && !ctx.client_cert_subject.empty())
        http1::append_header(out, *route.client_cert_subject_header, ctx.client_cert_subject);
    if (route.client_cert_fingerprint_header && !ctx.client_cert_fingerprint.empty())
        http1::append_header(out, *route.client_cert_fingerprint_header, ctx.client_cert_fingerprint);
    apply_route_additions(out, ops);
    if (ctx.agent_edits != nullptr)
        for (const auto& [name, value] : ctx.agent_edits->add) http1::append_header(out, name, value);

    if (ctx.body_length)
        append_length(out, *ctx.body_length);
    else if (request.framing == http1::body_framing::content_length)
        append_length(out, request.content_length);
    else if (request.framing == http1::body_framing::chunked)
        http1::append_header(out, "Transfer-Encoding", "chunked");
    if (ctx.upgrade != upgrade_kind::none) {
        http1::append_header(out, "Connection", "upgrade");
        http1::append_header(out, "Upgrade", ctx.upgrade == upgrade_kind::websocket ? "websocket" : upgrade);
    }
    http1::append_head_end(out);
}

void build_downstream_head(std::string& out, const http1::response_head& response,
                           const config::route_config& route, std::string_view request_id,
                           const response_framing& framing) {
    out.clear();
    const auto& ops = route.response_headers;
    http1::append_status_line(out, response.status, response.reason);
    const bool bodyless = !framing.chunked && !framing.content_length;
    const connection_tokens named(response.headers);
    for (const auto& h : response.headers) {
        if (iequals(h.name, "x-request-id")) continue;
        // HEAD and 304 responses keep the upstream's Content-Length: it describes the
        // representation, not this message's body.
        if (bodyless && iequals(h.name, "content-length") && !named.contains(h.name) &&
            !listed(ops.remove, h.name)) {
            http1::append_header(out, h.name, h.value);
            continue;
        }
        if (dropped(named, h, ops)) continue;
        if (framing.agent_edits != nullptr && framing.agent_edits->drops(h.name)) continue;
        http1::append_header(out, h.name, h.value);
    }
    http1::append_header(out, "X-Request-Id", request_id);
    if (!framing.set_cookie.empty()) http1::append_header(out, "Set-Cookie", framing.set_cookie);
    if (framing.security != nullptr) append_security_headers(out, *framing.security, &response.headers);
    apply_route_additions(out, ops);
    if (framing.agent_edits != nullptr)
        for (const auto& [name, value] : framing.agent_edits->add) http1::append_header(out, name, value);
    if (framing.content_length) append_length(out, framing.length);
    if (framing.chunked) http1::append_header(out, "Transfer-Encoding", "chunked");
    if (!framing.keep_alive) http1::append_header(out, "Connection", "close");
    else if (framing.http10_keep_alive) http1::append_header(out, "Connection", "keep-alive");
    http1::append_head_end(out);
}

void append_security_headers(std::string& out, const config::security_headers_config& security,
                             const std::vector<http1::header>* present) {
    auto has = [&](std::string_view name) {
        if (present == nullptr) return false;
        for (const auto& h : *present)
            if (iequals(h.name, name)) return true;
        return false;
    };
    if (security.hsts_max_age.count() > 0 && !has("strict-transport-security")) {
        char value[64];
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(security.hsts_max_age).count();
        const auto n = fmt::format_to_n(value, sizeof value, "max-age={}{}", seconds,
                                        security.hsts_include_subdomains ? "; includeSubDomains" : "").size;
        http1::append_header(out, "Strict-Transport-Security", std::string_view(value, n));
    }
    if (!security.content_type_options.empty() && !has("x-content-type-options"))
        http1::append_header(out, "X-Content-Type-Options", security.content_type_options);
    if (!security.referrer_policy.empty() && !has("referrer-policy"))
        http1::append_header(out, "Referrer-Policy", security.referrer_policy);
    if (!security.frame_options.empty() && !has("x-frame-options"))
        http1::append_header(out, "X-Frame-Options", security.frame_options);
}

void build_interim_head(std::string& out, const http1::response_head& response) {
    out.clear();
    http1::append_status_line(out, response.status, response.reason);
    const connection_tokens named(response.headers);
    for (const auto& h : response.headers)
        if (!http1::is_hop_by_hop(h.name) && !named.contains(h.name)) http1::append_header(out, h.name, h.value);
    http1::append_head_end(out);
}

}  // namespace sentinel::proxy
