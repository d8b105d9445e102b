// Internal to src/router: the lookup structure built with a route_table. It only narrows the
// candidates; every candidate still goes through detail::check(), and the lowest position
// (earliest in evaluation order) that passes wins, so the result is by construction the one
// the linear scan finds. docs/architecture/routing.md explains the layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/matchers.hpp"

namespace sentinel::router::detail {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// A route reached through the index, and what the index has not already proven about it.
// Reaching a route through an exact-host or wildcard bucket proves its host matcher, and
// through an exact path or a prefix key proves its path matcher, so most candidates of a
// large table are accepted from this entry alone, without touching the cold route data.
struct candidate {
    std::uint32_t position = 0;  // in evaluation order
    std::uint32_t unproven = 0;  // bits below; 0 = the route accepts the request
};
inline constexpr std::uint32_t unproven_path = 1;    // reached through a regex's literal prefix
inline constexpr std::uint32_t unproven_other = 2;   // has method, header or query matchers

// Ascending by position.
using candidates = std::vector<candidate>;

// The lengths of a hash map's keys: most lookups of a key that is not there end here, without
// hashing the key or touching the map's cold nodes. Lengths past 255 share one bit.
class length_filter {
public:
    void add(std::size_t n) { bits_[std::min<std::size_t>(n, 255) / 64] |= 1ull << (std::min<std::size_t>(n, 255) % 64); }
    bool may_contain(std::size_t n) const {
        return (bits_[std::min<std::size_t>(n, 255) / 64] >> (std::min<std::size_t>(n, 255) % 64)) & 1;
    }

private:
    std::uint64_t bits_[4] = {};
};

// Candidates for one host bucket and one path key. When several of them differ only by an
// exact header value (tenant routing: 100 routes on "/tenant/" keyed by X-Tenant), those are
// looked up by that header's value instead of being tried one by one.
struct candidate_set {
    candidates plain;
    std::string discriminator;  // lowercased header name; empty when none
    string_map<candidates> by_value;

    void finish(const std::vector<compiled_route>& routes);
};

// Routes sharing one host constraint (an exact host, a wildcard suffix, or none), by path:
// exact paths in a hash map; prefixes (and each regex's literal prefix, and "" for routes
// without a path matcher) in a sorted array where `parent` links each key to its longest
// proper prefix, so the keys that prefix a path are one binary search plus a parent walk.
struct bucket {
    string_map<candidate_set> exact_paths;
    length_filter exact_path_lengths;
    std::vector<std::string> prefix_keys;  // sorted
    std::vector<std::uint32_t> parent;     // into prefix_keys; none = UINT32_MAX
    std::vector<candidate_set> prefix_sets;

    // Filled while adding, turned into the arrays above by finish().
    std::map<std::string, candidate_set, std::less<>> pending_prefixes;

    void add(const compiled_route& route, std::uint32_t position);
    void finish(const std::vector<compiled_route>& routes);
};

class route_index {
public:
    explicit route_index(std::vector<compiled_route> routes);

    const std::vector<compiled_route>& routes() const { return routes_; }
    // Position of the first route in evaluation order that accepts the request, or UINT32_MAX.
    std::uint32_t find(const prepared_request& request) const;

private:
    void scan(const candidates& list, const prepared_request& request, std::uint32_t& best) const;
    void scan(const candidate_set& set, const prepared_request& request, std::uint32_t& best) const;
    void scan(const bucket& b, const prepared_request& request, std::uint32_t& best) const;

    std::vector<compiled_route> routes_;  // in evaluation order
    string_map<bucket> exact_hosts_;        // lowercased host
    string_map<bucket> wildcard_suffixes_;  // "*.a.com" under "a.com"
    length_filter wildcard_lengths_;
    bucket any_host_;
};

}  // namespace sentinel::router::detail
