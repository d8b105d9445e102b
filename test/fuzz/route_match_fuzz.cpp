// Route matching on hostile requests: the indexed lookup must always agree with the
// reference linear scan, whatever the host, path, query (percent-decoding) and headers.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "router/route_table.hpp"

namespace {

using namespace sentinel;

config::value_matcher vm(std::string name, config::value_match_kind kind, std::vector<std::string> values = {}) {
    return {std::move(name), kind, std::move(values)};
}

const router::route_table& table() {
    static const std::vector<config::route_config> routes = [] {
        std::vector<config::route_config> r(10);
        for (std::size_t i = 0; i < r.size(); ++i) r[i].id = "r" + std::to_string(i);
        r[0].match.hosts = {"api.example.com"};
        r[0].match.path_prefixes = {"/v1/", "/v2/"};
        r[1].match.hosts = {"*.example.com"};
        r[1].match.path_regexes = {"^/u/[0-9]+$"};
        r[2].match.headers = {vm("x-env", config::value_match_kind::exact, {"prod", "stg"})};
        r[2].match.path_prefixes = {"/h"};
        r[3].match.headers = {vm("user-agent", config::value_match_kind::regex, {"curl/.*"}),
                              vm("x-debug", config::value_match_kind::absent)};
        r[4].match.query = {vm("v", config::value_match_kind::exact, {"2", "a b"}),
                            vm("nc", config::value_match_kind::absent)};
        r[5].match.query = {vm("id", config::value_match_kind::regex, {"[0-9]+"}),
                            vm("f", config::value_match_kind::present)};
        r[6].match.paths = {"/exact"};
        r[6].match.methods = {"GET", "HEAD"};
        r[7].match.hosts = {"*.a.example.com", "b.example.com"};
        r[7].priority = 5;
        r[7].match.headers = {vm("x-tenant", config::value_match_kind::present)};
        r[8].match.path_regexes = {"/static/.*\\.css"};
        r[9].match.path_prefixes = {"/"};
        r[9].priority = -1;
        return r;
    }();
    static const router::route_table t(routes);
    return t;
}

// Splits on '\n': method, host, path, query, then "name:value" headers.
std::vector<std::string_view> fields(std::string_view in) {
    std::vector<std::string_view> out;
    while (out.size() < 12) {
        const auto nl = in.find('\n');
        out.push_back(in.substr(0, nl));
        if (nl == std::string_view::npos) break;
        in.remove_prefix(nl + 1);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto f = fields({reinterpret_cast<const char*>(data), size});
    std::vector<http1::header> headers;
    for (std::size_t i = 4; i < f.size(); ++i) {
        const auto colon = f[i].find(':');
        if (colon == std::string_view::npos) continue;
        headers.push_back({f[i].substr(0, colon), f[i].substr(colon + 1)});
    }
    router::request_view req;
    req.method = f.size() > 0 ? f[0] : "";
    req.host = f.size() > 1 ? f[1] : "";
    req.path = f.size() > 2 ? f[2] : "/";
    req.query = f.size() > 3 ? f[3] : "";
    req.headers = headers;
    const auto& t = table();
    if (t.match(req) != t.match_linear(req)) std::abort();
    return 0;
}
