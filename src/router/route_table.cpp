#include "router/route_table.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <tuple>
#include <unordered_map>

#include "router/matchers.hpp"

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

// ---- index ------------------------------------------------------------------------------

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// Positions in evaluation order, ascending.
using candidates = std::vector<std::uint32_t>;

// The first path segment that every path accepted by a matcher must have: "api" for "/api/v1"
// (exact), "/api/" or "/api/x" (prefix, or a regex's literal prefix). None for "/api" as a
// prefix or regex prefix, which also accepts "/apix".
bool segment_of_literal(std::string_view literal, bool whole_path, std::string_view& segment) {
    if (literal.empty() || literal.front() != '/') return false;
    const std::size_t slash = literal.find('/', 1);
    if (slash == std::string_view::npos && !whole_path) return false;
    segment = literal.substr(1, slash == std::string_view::npos ? std::string_view::npos : slash - 1);
    return true;
}

bool segment_of_request(std::string_view path, std::string_view& segment) {
    return segment_of_literal(path, true, segment);
}

// Routes sharing a host constraint, split by the first path segment they require; routes
// that do not pin one (no path matcher, "/" prefix, unanchored regex, ...) are `generic`.
struct bucket {
    string_map<candidates> by_segment;
    candidates generic;

    void add(const compiled_route& route, std::uint32_t position) {
        const auto& m = route.cfg->match;
        bool pinned = !m.paths.empty() || !m.path_prefixes.empty() || !route.path_regexes.empty();
        std::vector<std::string_view> segments;
        auto pin = [&](std::string_view literal, bool whole_path) {
            std::string_view segment;
            if (segment_of_literal(literal, whole_path, segment))
                segments.push_back(segment);
            else
                pinned = false;
        };
        for (const auto& p : m.paths) pin(p, true);
        for (const auto& p : m.path_prefixes) pin(p, false);
        for (const auto& re : route.path_regexes) pin(re.literal_prefix, false);
        if (!pinned) {
            generic.push_back(position);
            return;
        }
        std::sort(segments.begin(), segments.end());
        segments.erase(std::unique(segments.begin(), segments.end()), segments.end());
        for (const auto s : segments) by_segment[std::string(s)].push_back(position);
    }
};

}  // namespace

struct route_table::index {
    std::vector<compiled_route> routes;  // in evaluation order
    string_map<bucket> exact_hosts;       // lowercased host
    string_map<bucket> wildcard_suffixes;  // "*.a.com" under "a.com"
    bucket any_host;

    // Lowers `best` to `position` of the first candidate in `list` that accepts the request;
    // lists are sorted, so nothing at or past `best` can improve on it.
    void scan(const candidates& list, const prepared_request& request, std::uint32_t& best) const {
        for (const std::uint32_t position : list) {
            if (position >= best) return;
            if (!detail::check(routes[position], request)) {
                best = position;
                return;
            }
        }
    }

    void scan(const bucket& b, const prepared_request& request, bool has_segment, std::string_view segment,
              std::uint32_t& best) const {
        if (has_segment && !b.by_segment.empty()) {
            const auto it = b.by_segment.find(segment);
            if (it != b.by_segment.end()) scan(it->second, request, best);
        }
        scan(b.generic, request, best);
    }
};

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

    auto idx = std::make_unique<index>();
    ordered_.reserve(routes.size());
    idx->routes.reserve(routes.size());
    for (const std::size_t i : order) {
        ordered_.push_back(&routes[i]);
        idx->routes.push_back(detail::compile(routes[i], errors_));
    }
    for (std::uint32_t position = 0; position < idx->routes.size(); ++position) {
        const auto& route = idx->routes[position];
        if (route.cfg->match.hosts.empty()) {
            idx->any_host.add(route, position);
            continue;
        }
        // A route naming the same host twice is added to that bucket once.
        std::vector<bucket*> buckets;
        for (const auto& h : route.exact_hosts) buckets.push_back(&idx->exact_hosts[h]);
        for (const auto& s : route.wildcard_suffixes) buckets.push_back(&idx->wildcard_suffixes[s.substr(1)]);
        std::sort(buckets.begin(), buckets.end());
        buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
        for (bucket* b : buckets) b->add(route, position);
    }
    index_ = std::move(idx);
}

route_table::route_table(route_table&&) noexcept = default;
route_table& route_table::operator=(route_table&&) noexcept = default;
route_table::~route_table() = default;

const config::route_config* route_table::match(const request_view& request) const {
    const prepared_request prepared(request);
    std::string_view segment;
    const bool has_segment = segment_of_request(request.path, segment);
    std::uint32_t best = UINT32_MAX;
    const index& idx = *index_;

    if (!prepared.host_too_long) {
        const std::string_view host = prepared.host;
        if (!idx.exact_hosts.empty()) {
            const auto it = idx.exact_hosts.find(host);
            if (it != idx.exact_hosts.end()) idx.scan(it->second, prepared, has_segment, segment, best);
        }
        if (!idx.wildcard_suffixes.empty()) {
            // "a.b.c.com" may match "*.b.c.com", "*.c.com" and "*.com"; the first label must
            // stay non-empty, so the search starts after position 0.
            for (std::size_t dot = host.find('.', 1); dot != std::string_view::npos; dot = host.find('.', dot + 1)) {
                const auto it = idx.wildcard_suffixes.find(host.substr(dot + 1));
                if (it != idx.wildcard_suffixes.end()) idx.scan(it->second, prepared, has_segment, segment, best);
            }
        }
    }
    idx.scan(idx.any_host, prepared, has_segment, segment, best);
    return best == UINT32_MAX ? nullptr : ordered_[best];
}

const config::route_config* route_table::match_linear(const request_view& request) const {
    const prepared_request prepared(request);
    for (std::size_t i = 0; i < index_->routes.size(); ++i)
        if (!detail::check(index_->routes[i], prepared)) return ordered_[i];
    return nullptr;
}

std::vector<explain_step> route_table::explain(const request_view& request) const {
    const prepared_request prepared(request);
    std::vector<explain_step> steps;
    for (std::size_t i = 0; i < index_->routes.size(); ++i) {
        const auto& route = index_->routes[i];
        const detail::rejection why = detail::check(route, prepared);
        steps.push_back({ordered_[i], i, !why, why ? detail::describe(route, prepared, why) : std::string()});
        if (!why) break;
    }
    return steps;
}

}  // namespace sentinel::router
