#include "router/route_index.hpp"

#include <algorithm>

#include "http/http1/message.hpp"

namespace sentinel::router::detail {

namespace {

constexpr std::uint32_t none = UINT32_MAX;

// Below this many routes keyed by one header, trying them in turn is as cheap as a lookup.
constexpr std::size_t min_discriminated = 4;

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// The exact header matcher a route can be looked up by, if any.
const config::value_matcher* exact_header(const compiled_route& route, std::string_view lowered_name) {
    for (const auto& m : route.headers)
        if (m.cfg->kind == config::value_match_kind::exact && !m.cfg->values.empty() &&
            http1::iequals(m.cfg->name, lowered_name))
            return m.cfg;
    return nullptr;
}

// A route can land twice under one key ("/a/" as a prefix and as a regex's literal prefix);
// one entry remains, proven when either was.
void append(candidates& list, candidate c) {
    if (!list.empty() && list.back().position == c.position)
        list.back().unproven &= c.unproven;
    else
        list.push_back(c);
}

}  // namespace

void candidate_set::finish(const std::vector<compiled_route>& routes) {
    // The header name most of these routes pin an exact value for.
    std::map<std::string, std::size_t> counts;
    for (const candidate& c : plain) {
        std::vector<std::string> names;
        for (const auto& m : routes[c.position].headers)
            if (m.cfg->kind == config::value_match_kind::exact && !m.cfg->values.empty())
                names.push_back(lowercase(m.cfg->name));
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        for (auto& n : names) ++counts[std::move(n)];
    }
    const auto best = std::max_element(counts.begin(), counts.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    if (best == counts.end() || best->second < min_discriminated) return;
    discriminator = best->first;
    candidates rest;
    for (const candidate& c : plain) {
        const config::value_matcher* m = exact_header(routes[c.position], discriminator);
        if (m == nullptr) {
            rest.push_back(c);
            continue;
        }
        for (const auto& v : m->values) append(by_value[v], c);
    }
    plain = std::move(rest);
}

void bucket::add(const compiled_route& route, std::uint32_t position) {
    const auto& m = route.cfg->match;
    const std::uint32_t other = m.methods.empty() && m.headers.empty() && m.query.empty() ? 0 : unproven_other;
    for (const auto& p : m.paths) {
        append(exact_paths[p].plain, {position, other});
        exact_path_lengths.add(p.size());
    }
    auto add_prefix = [&](std::string_view key, std::uint32_t unproven) {
        auto it = pending_prefixes.find(key);
        if (it == pending_prefixes.end()) it = pending_prefixes.emplace(std::string(key), candidate_set{}).first;
        append(it->second.plain, {position, unproven});
    };
    for (const auto& p : m.path_prefixes) add_prefix(p, other);
    // Every full match of a regex starts with its literal prefix ("" when it has none), but
    // not every path with that prefix matches: the regex still has to run.
    for (const auto& re : route.path_regexes) add_prefix(re.literal_prefix, other | unproven_path);
    if (m.paths.empty() && m.path_prefixes.empty() && m.path_regexes.empty()) add_prefix("", other);
}

void bucket::finish(const std::vector<compiled_route>& routes) {
    for (auto& [path, set] : exact_paths) set.finish(routes);
    // std::map iterates in sorted order, and a key sorts after all of its prefixes, so a
    // stack of the keys that prefix the current one yields each key's parent.
    std::vector<std::uint32_t> stack;
    for (auto& [key, set] : pending_prefixes) {
        const auto i = static_cast<std::uint32_t>(prefix_keys.size());
        while (!stack.empty() && !std::string_view(key).starts_with(prefix_keys[stack.back()])) stack.pop_back();
        parent.push_back(stack.empty() ? none : stack.back());
        stack.push_back(i);
        prefix_keys.push_back(key);
        set.finish(routes);
        prefix_sets.push_back(std::move(set));
    }
    pending_prefixes.clear();
}

route_index::route_index(std::vector<compiled_route> routes) : routes_(std::move(routes)) {
    for (std::uint32_t position = 0; position < routes_.size(); ++position) {
        const auto& route = routes_[position];
        if (route.cfg->match.hosts.empty()) {
            any_host_.add(route, position);
            continue;
        }
        // A route naming the same host twice is added to that bucket once.
        std::vector<bucket*> buckets;
        for (const auto& h : route.exact_hosts) buckets.push_back(&exact_hosts_[h]);
        for (const auto& s : route.wildcard_suffixes) {
            buckets.push_back(&wildcard_suffixes_[s.substr(1)]);
            wildcard_lengths_.add(s.size() - 1);
        }
        std::sort(buckets.begin(), buckets.end());
        buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
        for (bucket* b : buckets) b->add(route, position);
    }
    for (auto& [host, b] : exact_hosts_) b.finish(routes_);
    for (auto& [suffix, b] : wildcard_suffixes_) b.finish(routes_);
    any_host_.finish(routes_);
}

// Lists are sorted, so once a position reaches `best` nothing further in the list can win.
void route_index::scan(const candidates& list, const prepared_request& request, std::uint32_t& best) const {
    for (const candidate& c : list) {
        if (c.position >= best) return;
        if (c.unproven == 0 || accepts_rest(routes_[c.position], request, (c.unproven & unproven_path) != 0)) {
            best = c.position;
            return;
        }
    }
}

void route_index::scan(const candidate_set& set, const prepared_request& request, std::uint32_t& best) const {
    scan(set.plain, request, best);
    if (set.discriminator.empty()) return;
    for (const auto& h : request.request.headers) {
        if (!http1::iequals(h.name, set.discriminator)) continue;
        const auto it = set.by_value.find(h.value);
        if (it != set.by_value.end()) scan(it->second, request, best);
    }
}

void route_index::scan(const bucket& b, const prepared_request& request, std::uint32_t& best) const {
    const std::string_view path = request.request.path;
    if (b.exact_path_lengths.may_contain(path.size())) {
        const auto it = b.exact_paths.find(path);
        if (it != b.exact_paths.end()) scan(it->second, request, best);
    }
    if (b.prefix_keys.empty()) return;
    // The greatest key <= path; the longest key that prefixes the path is it or one of its
    // ancestors (any key between that one and the path would have to start with it).
    const auto above = std::upper_bound(b.prefix_keys.begin(), b.prefix_keys.end(), path,
                                        [](std::string_view p, const std::string& key) { return p < key; });
    if (above == b.prefix_keys.begin()) return;
    auto i = static_cast<std::uint32_t>(above - b.prefix_keys.begin() - 1);
    while (i != none && !path.starts_with(b.prefix_keys[i])) i = b.parent[i];
    // Longest prefix first: it tends to hold the earliest routes, which cuts the rest short.
    for (; i != none; i = b.parent[i]) scan(b.prefix_sets[i], request, best);
}

std::uint32_t route_index::find(const prepared_request& request) const {
    std::uint32_t best = none;
    if (!request.host_too_long) {
        const std::string_view host = request.host;
        if (!exact_hosts_.empty()) {
            const auto it = exact_hosts_.find(host);
            if (it != exact_hosts_.end()) scan(it->second, request, best);
        }
        if (!wildcard_suffixes_.empty()) {
            // "a.b.c.com" may match "*.b.c.com", "*.c.com" and "*.com"; the first label must
            // stay non-empty, so the search starts after position 0.
            for (std::size_t dot = host.find('.', 1); dot != std::string_view::npos; dot = host.find('.', dot + 1)) {
                if (!wildcard_lengths_.may_contain(host.size() - dot - 1)) continue;
                const auto it = wildcard_suffixes_.find(host.substr(dot + 1));
                if (it != wildcard_suffixes_.end()) scan(it->second, request, best);
            }
        }
    }
    scan(any_host_, request, best);
    return best;
}

}  // namespace sentinel::router::detail
