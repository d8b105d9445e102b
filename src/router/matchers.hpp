// Internal to src/router: a route's matchers compiled once when a table is built, and the
// single predicate (`check`) that the linear scan, the index and route-explain all share, so
// the three can never disagree about what a matcher means. Not included outside the router,
// which keeps re2.h out of the proxy's translation units.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/model/config.hpp"
#include "router/route_table.hpp"

namespace re2 {
class RE2;
}

namespace sentinel::router::detail {

// One RE2 plus the literal range every full match lies in, used to skip the regex cheaply
// and to index regex routes by the literal prefix they require.
struct compiled_regex {
    std::unique_ptr<re2::RE2> re;  // null when the pattern did not compile: never matches
    std::string min, max;          // PossibleMatchRange; both empty when unknown
    std::string literal_prefix;    // every full match starts with this

    compiled_regex();
    compiled_regex(compiled_regex&&) noexcept;
    compiled_regex& operator=(compiled_regex&&) noexcept;
    ~compiled_regex();

    bool full_match(std::string_view text) const;
};

struct compiled_value_matcher {
    const config::value_matcher* cfg = nullptr;
    std::vector<compiled_regex> regexes;  // kind == regex only, parallel to cfg->values
};

struct compiled_route {
    const config::route_config* cfg = nullptr;
    std::vector<std::string> exact_hosts;        // lowercased
    std::vector<std::string> wildcard_suffixes;  // lowercased, with the leading dot: ".a.com"
    std::vector<compiled_regex> path_regexes;
    std::vector<compiled_value_matcher> headers;
    std::vector<compiled_value_matcher> query;
};

// Compiles `route`; regex errors are appended to `errors` ("route "x": path-regex "(": ...").
compiled_route compile(const config::route_config& route, std::vector<std::string>& errors);

// Hosts longer than this never match a host-constrained route (a DNS name is at most 253
// bytes), which lets the host be lowercased into a stack buffer with no allocation.
inline constexpr std::size_t max_host_length = 255;

// The request as the matchers see it: host lowercased with the port stripped. Built once per
// lookup on the stack; not copyable because `host` points into `buffer_`.
class prepared_request {
public:
    explicit prepared_request(const request_view& request);
    prepared_request(const prepared_request&) = delete;
    prepared_request& operator=(const prepared_request&) = delete;

    const request_view& request;
    std::string_view host;  // lowercased, no port; empty when too long
    bool host_too_long = false;

private:
    std::array<char, max_host_length> buffer_;
};

// Which matcher turned a route down (the first failing one, in the order they are checked:
// method, host, path, headers, query). `index` is the header/query matcher's position.
enum class matcher_kind : std::uint8_t { none, method, host, path, header, query };
struct rejection {
    matcher_kind kind = matcher_kind::none;
    std::uint32_t index = 0;
    explicit operator bool() const { return kind != matcher_kind::none; }
};

rejection check(const compiled_route& route, const prepared_request& request);
// check() without the host matcher, and without the path matcher unless `check_path`: for
// the index, which has proven those already.
bool accepts_rest(const compiled_route& route, const prepared_request& request, bool check_path);

// Why `route` turned the request down, for people: `host "www.a.com" did not match
// "api.a.com"`, `header "x-env": absent`. Defined in explain.cpp.
std::string describe(const compiled_route& route, const prepared_request& request, rejection why);

// Query strings: `a=1&b=2`. Names and values compare after percent-decoding (%XX, and '+' as
// a space); a malformed escape stays literal. `decoded_equals` decodes while comparing
// (no buffer); `decode` returns `raw` itself when there is nothing to decode.
bool decoded_equals(std::string_view raw, std::string_view expected);
std::string_view decode(std::string_view raw, std::string& scratch);

// Calls f(raw_name, raw_value) for each non-empty `name[=value]` pair; stops when f returns true.
template <class F>
bool any_query_param(std::string_view query, F&& f) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        const std::size_t eq = pair.find('=');
        const std::string_view name = pair.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (f(name, value)) return true;
    }
    return false;
}

}  // namespace sentinel::router::detail
