#include "router/route_table.hpp"

#include <algorithm>

#include "http/http1/message.hpp"

namespace sentinel::router {

namespace {

using http1::iequals;

// "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        const std::string_view suffix = pattern.substr(1);  // ".example.com"
        return host.size() > suffix.size() &&
               iequals(host.substr(host.size() - suffix.size()), suffix);
    }
    return iequals(pattern, host);
}

// Specificity score used only to order routes of equal priority.
std::uint64_t specificity(const config::route_config& route) {
    const auto& m = route.match;
    std::uint64_t host_rank = 0;
    if (!m.hosts.empty()) {
        const bool any_wildcard = std::any_of(m.hosts.begin(), m.hosts.end(),
                                              [](const std::string& h) { return h.starts_with("*."); });
        host_rank = any_wildcard ? 1 : 2;
    }
    std::uint64_t path_rank = 0;
    if (!m.paths.empty()) {
        path_rank = 0xFFFF;
    } else if (!m.path_prefixes.empty()) {
        std::size_t shortest = SIZE_MAX;
        for (const auto& p : m.path_prefixes) shortest = std::min(shortest, p.size());
        path_rank = std::min<std::size_t>(shortest + 1, 0xFFFE);
    }
    const std::uint64_t method_rank = m.methods.empty() ? 0 : 1;
    return (host_rank << 20) | (path_rank << 1) | method_rank;
}

}  // namespace

std::string_view strip_port(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(0, close + 1);
    }
    const auto colon = host.rfind(':');
    return colon == std::string_view::npos ? host : host.substr(0, colon);
}

route_table::route_table(const std::vector<config::route_config>& routes) {
    ordered_.reserve(routes.size());
    for (const auto& r : routes) ordered_.push_back(&r);
    std::stable_sort(ordered_.begin(), ordered_.end(), [](const auto* a, const auto* b) {
        if (a->priority != b->priority) return a->priority > b->priority;
        return specificity(*a) > specificity(*b);
    });
}

bool route_table::matches(const config::route_config& route, const request_view& request) {
    const auto& m = route.match;
    if (!m.methods.empty() &&
        std::none_of(m.methods.begin(), m.methods.end(),
                     [&](const std::string& x) { return x == request.method; }))
        return false;
    if (!m.hosts.empty()) {
        const std::string_view host = strip_port(request.host);
        if (std::none_of(m.hosts.begin(), m.hosts.end(),
                         [&](const std::string& h) { return host_matches(h, host); }))
            return false;
    }
    if (!m.paths.empty() || !m.path_prefixes.empty()) {
        const bool exact = std::any_of(m.paths.begin(), m.paths.end(),
                                       [&](const std::string& p) { return request.path == p; });
        const bool prefix = std::any_of(m.path_prefixes.begin(), m.path_prefixes.end(),
                                        [&](const std::string& p) { return request.path.starts_with(p); });
        if (!exact && !prefix) return false;
    }
    return true;
}

const config::route_config* route_table::match(const request_view& request) const {
    for (const auto* route : ordered_)
        if (matches(*route, request)) return route;
    return nullptr;
}

}  // namespace sentinel::router
