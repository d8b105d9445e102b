// Route lookup. Routes are ordered once, when a snapshot is built: explicit priority first,
// then specificity (exact host > wildcard host > any host; exact path > longer prefix >
// shorter prefix > any path; a method constraint > none), then file order. The first route
// whose matchers all accept the request wins, so the same config always routes the same way.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "config/model/config.hpp"

namespace sentinel::router {

struct request_view {
    std::string_view method;
    std::string_view host;  // Host header; a port suffix and case are ignored when matching
    std::string_view path;
};

class route_table {
public:
    explicit route_table(const std::vector<config::route_config>& routes);

    // The matching route, or null (404). Allocation-free.
    const config::route_config* match(const request_view& request) const;
    // Routes in evaluation order (for route-explain and the status page).
    const std::vector<const config::route_config*>& ordered() const { return ordered_; }

    static bool matches(const config::route_config& route, const request_view& request);

private:
    std::vector<const config::route_config*> ordered_;
};

// "api.example.com:8080" → "api.example.com"; "[::1]:80" → "[::1]".
std::string_view strip_port(std::string_view host);

}  // namespace sentinel::router
