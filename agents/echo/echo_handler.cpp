#include "agents/echo/echo_handler.hpp"

#include <algorithm>
#include <utility>

#include "agents/sdk/cpp/config.hpp"
#include "agents/sdk/cpp/decision.hpp"

namespace sentinel::echo_agent {

namespace {

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

// The proxy rejects a whole decision whose header values hold CR, LF or NUL (PROTOCOL.md §6) or
// pass 8 KiB (its field-value limit). What we echo is mostly proxy-checked already, but a long
// path or free-form metadata from other agents is not, so values are percent-encoded and cut
// rather than trusted: a clipped diagnostic header beats a failed request.
constexpr std::size_t max_value = 8192;
constexpr std::size_t max_prefix = 200;

std::string field_value(std::string_view v) {
    std::string out;
    out.reserve(std::min(v.size(), max_value));
    static constexpr char hex[] = "0123456789ABCDEF";
    for (const unsigned char c : v) {
        if (out.size() + 3 > max_value) break;
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

}  // namespace

bool valid_header_prefix(std::string_view prefix) {
    // The proxy takes names up to 256 bytes; the longest suffix we add is "Request-Id".
    return !prefix.empty() && prefix.size() <= max_prefix && std::all_of(prefix.begin(), prefix.end(), [](char c) { return is_tchar(c); });
}

std::vector<config_error> echo_handler::configure(const v1::ConfigNode& config) {
    std::vector<config_error> errors;
    agent_sdk::for_each_key(config, {"header-prefix", "response-header"}, errors, [&](const v1::ConfigNode& node) {
        if (node.name() == "header-prefix") {
            auto v = agent_sdk::string_value(node, errors);
            if (!v) return;
            if (!valid_header_prefix(*v)) {
                errors.push_back({node.path(), "header-prefix \"" + *v +
                                                   "\" is not a valid header-name prefix (1-200 letters, digits or "
                                                   "!#$%&'*+-.^_`|~)"});
                return;
            }
            prefix_ = std::move(*v);
        } else {
            if (auto v = agent_sdk::bool_value(node, errors)) response_header_ = *v;
        }
    });
    return errors;
}

v1::Capabilities echo_handler::capabilities() const {
    v1::Capabilities c;
    c.add_events(v1::REQUEST_HEADERS);
    return c;
}

v1::Decision echo_handler::on_request_headers(stream_context&, const v1::RequestHeaders& event) {
    v1::Decision d = agent_sdk::allow();
    auto set = [&](std::string_view suffix, std::string_view value) {
        agent_sdk::set_request_header(d, prefix_ + std::string(suffix), field_value(value));
    };
    const auto& conn = event.connection();
    set("Agent", version_);
    set("Method", event.method());
    set("Path", event.path());
    set("Client", conn.client_address());
    set("Route", event.route());
    set("Request-Id", event.request_id());
    set("Tls", conn.tls_version().empty() ? std::string_view("none") : std::string_view(conn.tls_version()));
    set("Header-Count", std::to_string(event.headers_size()));
    if (!event.metadata().empty()) {
        // Sorted: protobuf maps have no order, and a test (or a person) compares this text.
        std::vector<std::pair<std::string_view, std::string_view>> kv(event.metadata().begin(),
                                                                      event.metadata().end());
        std::sort(kv.begin(), kv.end());
        std::string joined;
        for (const auto& [k, v] : kv) {
            if (!joined.empty()) joined += ';';
            joined.append(k).append("=").append(v);
        }
        set("Metadata", joined);
    }
    if (response_header_) agent_sdk::set_response_header(d, prefix_ + "Agent", field_value(version_));
    (*d.mutable_metadata())["echo.seen"] = "1";
    return d;
}

}  // namespace sentinel::echo_agent
