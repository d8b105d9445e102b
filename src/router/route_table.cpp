#include "router/route_table.hpp"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "router/matchers.hpp"
#include "router/route_index.hpp"

namespace sentinel::router {

namespace {

using detail::compiled_route;
using detail::prepared_request;

// ---- evaluation order -------------------------------------------------------------------

// The fields of the specificity order (see route_table.hpp), each "bigger = evaluated
// earlier". A route ranks as its least specific host and path, because that bounds how much
// traffic it can take.
struct order_key {
    std::int32_t priority = 0;
    int host_class = 0;           // 2 exact, 1 wildcard, 0 none
    std::size_t host_length = 0;  // wildcard: the shortest suffix
    int path_class = 0;           // 3 exact, 2 regex, 1 prefix, 0 none
    std::size_t path_length = 0;  // prefix: the shortest prefix
    std::size_t value_matchers = 0;
    int method = 0;

    auto tie() const {
        return std::tie(priority, host_class, host_length, path_class, path_length, value_matchers, method);
    }
};

order_key order_of(const config::route_config& route) {
    const auto& m = route.match;
    order_key key;
    key.priority = route.priority;
    if (!m.hosts.empty()) {
        key.host_class = 2;
        for (const auto& h : m.hosts) {
            if (!h.starts_with("*.")) continue;
            key.host_length = key.host_class == 2 ? h.size() - 1 : std::min(key.host_length, h.size() - 1);
            key.host_class = 1;
        }
    }
    if (!m.path_prefixes.empty()) {
        key.path_class = 1;
        key.path_length = SIZE_MAX;
        for (const auto& p : m.path_prefixes) key.path_length = std::min(key.path_length, p.size());
    } else if (!m.path_regexes.empty()) {
        key.path_class = 2;
    } else if (!m.paths.empty()) {
        key.path_class = 3;
    }
    key.value_matchers = m.headers.size() + m.query.size();
    key.method = m.methods.empty() ? 0 : 1;
    return key;
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
    std::vector<order_key> keys;
    keys.reserve(routes.size());
    for (const auto& r : routes) keys.push_back(order_of(r));
    std::vector<std::size_t> order(routes.size());
    std::iota(order.begin(), order.end(), 0);
    // stable_sort keeps file order among equal keys.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return keys[a].tie() > keys[b].tie(); });

    std::vector<compiled_route> compiled;
    compiled.reserve(routes.size());
    ordered_.reserve(routes.size());
    for (const std::size_t i : order) {
        ordered_.push_back(&routes[i]);
        compiled.push_back(detail::compile(routes[i], errors_));
    }
    index_ = std::make_unique<const detail::route_index>(std::move(compiled));
}

route_table::route_table(route_table&&) noexcept = default;
route_table& route_table::operator=(route_table&&) noexcept = default;
route_table::~route_table() = default;

const config::route_config* route_table::match(const request_view& request) const {
    const std::uint32_t position = index_->find(prepared_request(request));
    return position == UINT32_MAX ? nullptr : ordered_[position];
}

const config::route_config* route_table::match_linear(const request_view& request) const {
    const prepared_request prepared(request);
    for (std::size_t i = 0; i < index_->routes().size(); ++i)
        if (!detail::check(index_->routes()[i], prepared)) return ordered_[i];
    return nullptr;
}

std::vector<explain_step> route_table::explain(const request_view& request) const {
    const prepared_request prepared(request);
    std::vector<explain_step> steps;
    for (std::size_t i = 0; i < index_->routes().size(); ++i) {
        const auto& route = index_->routes()[i];
        const detail::rejection why = detail::check(route, prepared);
        steps.push_back({ordered_[i], i, !why, why ? detail::describe(route, prepared, why) : std::string()});
        if (!why) break;
    }
    return steps;
}

}  // namespace sentinel::router
