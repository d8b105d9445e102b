// Route lookup. The first route, in evaluation order, whose matchers all accept the request
// wins. Evaluation order is fixed when the table is built, so the same config always routes
// the same way:
//   1. explicit `priority`, higher first;
//   2. specificity, most specific first, compared field by field:
//      a. host:    exact hosts > wildcard hosts (longer suffix first) > no host matcher;
//      b. path:    exact paths > path regexes > path prefixes (longer first) > no path matcher;
//      c. the number of header and query matchers, more first;
//      d. a method matcher > none;
//   3. file order.
// A route listing several hosts or paths ranks as its least specific one (a route matching
// "/a" exactly or anything under "/" ranks as the "/" prefix), because that is how broadly
// it can match. docs/architecture/routing.md has the full semantics and the index design.
//
// Matching semantics: different matcher kinds are ANDed, the values of one matcher are ORed,
// and a route without matchers matches everything. Hosts compare case-insensitively without
// the port ("*.a.com" matches any deeper subdomain, not "a.com"); paths compare exactly;
// path regexes (RE2) must match the whole path; methods compare exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/model/config.hpp"
#include "http/http1/message.hpp"

namespace sentinel::router {

namespace detail {
class route_index;
}

struct request_view {
    std::string_view method;
    std::string_view host;  // Host header; a port suffix and case are ignored when matching
    std::string_view path;  // normalised (see path.hpp), without the query
    std::span<const http1::header> headers = {};
    std::string_view query = {};  // raw, without '?'
};

// One route of the evaluation order, as seen by route-explain.
struct explain_step {
    const config::route_config* route = nullptr;
    std::size_t position = 0;  // index in ordered()
    bool matched = false;
    std::string reason;  // why it did not match, e.g. `header "x-env": absent`; empty if matched
};

class route_table {
public:
    // Keeps pointers into `routes`, which must outlive the table (the snapshot owns both).
    // Regexes are compiled here; an invalid one never matches and is listed in errors().
    explicit route_table(const std::vector<config::route_config>& routes);
    route_table(route_table&&) noexcept;
    route_table& operator=(route_table&&) noexcept;
    ~route_table();

    // The matching route, or null (404). Uses the index built with the table; allocation-free
    // except that a query regex matcher may grow a thread-local decode buffer once.
    const config::route_config* match(const request_view& request) const;
    // Same result as match() by scanning every route in order; for tests and explain.
    const config::route_config* match_linear(const request_view& request) const;
    // Every route in evaluation order up to and including the match (all of them when none
    // matches), each with the reason it was passed over.
    std::vector<explain_step> explain(const request_view& request) const;

    // Routes in evaluation order (for route-explain and the status page).
    const std::vector<const config::route_config*>& ordered() const { return ordered_; }
    // Patterns that failed to compile ("route "x": path-regex "(": missing )"). The validator
    // should have refused them; this keeps a bad pattern from silently matching.
    const std::vector<std::string>& errors() const { return errors_; }

private:
    std::vector<const config::route_config*> ordered_;
    std::vector<std::string> errors_;
    std::unique_ptr<const detail::route_index> index_;
};

// "api.example.com:8080" → "api.example.com"; "[::1]:80" → "[::1]".
std::string_view strip_port(std::string_view host);

}  // namespace sentinel::router
