// Helpers shared by the router tests: terse route construction and a lookup that returns the
// route id (or "<none>") and checks on the way that the index agrees with the linear scan.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "router/route_table.hpp"

namespace sentinel::router::test {

inline config::route_config route(std::string id, std::int32_t priority, config::route_match match) {
    config::route_config r;
    r.id = std::move(id);
    r.priority = priority;
    r.match = std::move(match);
    r.upstream = "u";
    return r;
}

inline config::value_matcher exact(std::string name, std::vector<std::string> values) {
    return {std::move(name), config::value_match_kind::exact, std::move(values)};
}
inline config::value_matcher regex(std::string name, std::vector<std::string> values) {
    return {std::move(name), config::value_match_kind::regex, std::move(values)};
}
inline config::value_matcher present(std::string name) {
    return {std::move(name), config::value_match_kind::present, {}};
}
inline config::value_matcher absent(std::string name) {
    return {std::move(name), config::value_match_kind::absent, {}};
}

inline std::string id_of(const config::route_config* r) { return r ? r->id : "<none>"; }

inline std::string matched(const route_table& table, const request_view& request) {
    const auto* indexed = table.match(request);
    EXPECT_EQ(id_of(indexed), id_of(table.match_linear(request)))
        << "index and linear scan disagree for " << request.method << " " << request.host << request.path;
    return id_of(indexed);
}

inline std::string matched(const route_table& table, std::string_view method, std::string_view host,
                           std::string_view path) {
    return matched(table, request_view{method, host, path});
}

}  // namespace sentinel::router::test
