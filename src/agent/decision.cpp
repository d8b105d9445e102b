#include "agent/decision.hpp"

#include <algorithm>

#include "config/values.hpp"
#include "http/http1/message.hpp"

namespace sentinel::agent {

namespace {

// The config's own rules for header names and values, plus the proxy's field size bounds.
bool valid_name(std::string_view n) { return n.size() <= 256 && config::is_http_token(n); }
bool valid_value(std::string_view v) { return v.size() <= 8192 && config::is_header_value(v); }

// Fields an agent may not touch: the proxy derives them (framing, hop-by-hop, Host).
bool protected_name(std::string_view n) {
    return http1::is_hop_by_hop(n) || http1::iequals(n, "content-length") || http1::iequals(n, "host");
}

std::optional<std::string> check_mutations(const google::protobuf::RepeatedPtrField<v1::HeaderMutation>& ms,
                                           const char* side) {
    for (const auto& m : ms) {
        if (!v1::HeaderMutation::Op_IsValid(m.op())) return std::string(side) + " header mutation with an unknown op";
        if (!valid_name(m.name())) return std::string(side) + " header mutation with an invalid name";
        if (protected_name(m.name()))
            return std::string(side) + " header mutation of \"" + m.name() + "\", which the proxy owns";
        if (m.op() != v1::HeaderMutation::REMOVE && !valid_value(m.value()))
            return std::string(side) + " header \"" + m.name() + "\" with CR, LF or NUL in its value";
    }
    return std::nullopt;
}

}  // namespace

void header_edits::apply(const v1::HeaderMutation& m) {
    const std::string& name = m.name();
    auto same = [&](const std::pair<std::string, std::string>& f) { return http1::iequals(f.first, name); };
    if (m.op() != v1::HeaderMutation::ADD) {
        if (!drops(name)) drop.push_back(name);
        add.erase(std::remove_if(add.begin(), add.end(), same), add.end());
    }
    if (m.op() != v1::HeaderMutation::REMOVE) add.emplace_back(name, m.value());
}

bool header_edits::drops(std::string_view name) const {
    return std::any_of(drop.begin(), drop.end(), [&](const std::string& d) { return http1::iequals(d, name); });
}

std::optional<std::string> check_decision(const v1::Decision& d, decision_point at, bool more_body) {
    if (at == decision_point::websocket_frame) {
        // After the upgrade only the frame itself can change: pass it, replace its payload, or
        // end the connection.
        if (d.action_case() != v1::Decision::kAllow && d.action_case() != v1::Decision::kBlock)
            return "a WebSocket frame can only be allowed or blocked";
        if (d.request_headers_size() > 0 || d.response_headers_size() > 0)
            return "header mutations on a WebSocket frame";
        return std::nullopt;
    }
    const bool body_point = at == decision_point::request_body || at == decision_point::response_body;
    const bool request_side = at == decision_point::request_headers || at == decision_point::request_body;
    switch (d.action_case()) {
    case v1::Decision::ACTION_NOT_SET: return "decision without an action";
    case v1::Decision::kAllow: break;
    case v1::Decision::kNeedMoreBody:
        if (!more_body) return "need_more_body where no more body can be sent (body mode NONE, or no body left)";
        break;
    case v1::Decision::kBlock: {
        const auto& b = d.block();
        if (b.status() != 0 && (b.status() < 400 || b.status() > 599)) return "block status outside 400-599";
        for (const auto& h : b.headers())
            if (!valid_name(h.name()) || protected_name(h.name()) || !valid_value(h.value()))
                return "block reply header \"" + h.name() + "\" is invalid or owned by the proxy";
        break;
    }
    case v1::Decision::kRedirect: {
        const auto& r = d.redirect();
        const auto s = r.status();
        if (s != 0 && s != 301 && s != 302 && s != 303 && s != 307 && s != 308)
            return "redirect status must be 301, 302, 303, 307 or 308";
        if (r.location().empty() || !valid_value(r.location())) return "redirect without a valid location";
        break;
    }
    }
    if (!request_side && d.request_headers_size() > 0)
        return "request header mutations after the request went upstream";
    if (auto e = check_mutations(d.request_headers(), "request")) return e;
    if (auto e = check_mutations(d.response_headers(), "response")) return e;
    if (d.has_replace_body() && !body_point) return "replace_body on an event that carries no body";
    return std::nullopt;
}

int block_status(const v1::Block& b) { return b.status() == 0 ? 403 : static_cast<int>(b.status()); }
int redirect_status(const v1::Redirect& r) { return r.status() == 0 ? 302 : static_cast<int>(r.status()); }

}  // namespace sentinel::agent
