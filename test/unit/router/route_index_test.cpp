// The index is only an optimisation: for random route sets and random requests it must pick
// exactly the route the linear scan picks, and explain() must end on that same route.
#include <gtest/gtest.h>

#include <random>

#include "route_test_util.hpp"

namespace sentinel::router {
namespace {

using namespace test;
using http1::header;

template <class T>
const T& pick(std::mt19937& rng, const std::vector<T>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
}

template <class T>
std::vector<T> some(std::mt19937& rng, const std::vector<T>& from, int max) {
    std::vector<T> out(std::uniform_int_distribution<int>(0, max)(rng));
    for (auto& v : out) v = pick(rng, from);
    return out;
}

// Small vocabularies, so that routes overlap and collide often.
const std::vector<std::string> hosts{"a.com", "A.com", "b.com", "x.a.com", "*.a.com", "*.x.a.com",
                                     "*.com", "c.org", "*.A.COM", "[::1]"};
const std::vector<std::string> exact_paths{"/", "/api", "/api/v1", "/api/v1/users", "/static/x.css", "*", "//"};
const std::vector<std::string> prefixes{"/", "/api", "/api/", "/api/v1/", "/st", "/static/", "//", "/users/"};
const std::vector<std::string> regexes{"/api/v[0-9]+/.*", "/static/.*\\.css", "/(api|static)/.*",
                                       "/api/[a-z]+",     "(?i)/API/.*",      "/users/[0-9]+", "/a.*", "/.*",
                                       "[/]api/v1",       "/(",               "(/api)?/v1/x", "/api/v1/users"};
const std::vector<std::string> methods{"GET", "POST", "PUT"};
const std::vector<std::string> header_names{"x-env", "X-Tenant"};
const std::vector<std::string> header_values{"prod", "dev", "Prod", ""};
const std::vector<std::string> value_regexes{"p.*", "d[a-z]+", ".*", "("};
const std::vector<std::string> query_names{"a", "b c", "id"};
const std::vector<std::string> query_values{"1", "x y", "", "a+b"};

config::value_matcher random_matcher(std::mt19937& rng, const std::vector<std::string>& names,
                                     const std::vector<std::string>& values) {
    config::value_matcher m;
    m.name = pick(rng, names);
    m.kind = static_cast<config::value_match_kind>(std::uniform_int_distribution<int>(0, 3)(rng));
    if (m.kind == config::value_match_kind::exact) m.values = some(rng, values, 2);
    if (m.kind == config::value_match_kind::regex) m.values = some(rng, value_regexes, 2);
    return m;
}

// `tenant_routing`: most routes also pin an exact X-Env value, which makes the index look
// them up by that header.
std::vector<config::route_config> random_routes(std::mt19937& rng, int count, bool tenant_routing = false) {
    std::vector<config::route_config> routes;
    std::uniform_int_distribution<int> percent(0, 99);
    for (int i = 0; i < count; ++i) {
        config::route_match m;
        if (percent(rng) < 60) m.hosts = some(rng, hosts, 2);
        if (percent(rng) < 30) m.paths = some(rng, exact_paths, 2);
        if (percent(rng) < 50) m.path_prefixes = some(rng, prefixes, 2);
        if (percent(rng) < 25) m.path_regexes = some(rng, regexes, 2);
        if (percent(rng) < 25) m.methods = some(rng, methods, 2);
        if (percent(rng) < 25) m.headers.push_back(random_matcher(rng, header_names, header_values));
        if (percent(rng) < 10) m.headers.push_back(random_matcher(rng, header_names, header_values));
        if (percent(rng) < 25) m.query.push_back(random_matcher(rng, query_names, query_values));
        if (tenant_routing && percent(rng) < 80)
            m.headers.insert(m.headers.begin(), {percent(rng) < 50 ? "x-env" : "X-ENV", config::value_match_kind::exact,
                                                 some(rng, header_values, 2)});
        // Mostly narrow routes: a table full of catch-alls would match every request at once.
        if (m.hosts.empty() && m.paths.empty() && m.path_prefixes.empty() && m.path_regexes.empty())
            m.paths.push_back(pick(rng, exact_paths));
        const int priority = percent(rng) < 80 ? 0 : std::uniform_int_distribution<int>(-1, 1)(rng);
        routes.push_back(route("r" + std::to_string(i), priority, std::move(m)));
    }
    return routes;
}

const std::vector<std::string> request_hosts{
    "a.com", "A.COM:8080", "x.a.com", "y.x.a.com", "b.com", "com", "c.org", "", "zz", ".a.com",
    "a..a.com", "[::1]:443", "y.X.A.com", std::string(300, 'q') + ".a.com"};
const std::vector<std::string> request_paths{"/", "/api", "/apix", "/api/", "/api/v1", "/api/v1/users",
                                             "/api/v2/x", "/API/x", "/static/x.css", "/static/", "/st",
                                             "*", "//", "//x", "/users/12", "/users/", "/v1/x", "", "/a"};
const std::vector<std::string> request_queries{"", "a=1", "a=1&b+c=x+y", "a=%31", "b%20c=x%20y&id=7",
                                               "a", "id=&a=a%2Bb", "a=2&a=1"};

void agrees_with_linear_scan(bool tenant_routing) {
    std::mt19937 rng(tenant_routing ? 77 : 20240607);
    std::size_t matched_count = 0, total = 0;
    for (int table_round = 0; table_round < 300; ++table_round) {
        const auto routes = random_routes(rng, std::uniform_int_distribution<int>(1, 30)(rng), tenant_routing);
        const route_table table(routes);
        for (int request_round = 0; request_round < 200; ++request_round) {
            std::vector<header> headers;
            const int header_count = std::uniform_int_distribution<int>(0, 3)(rng);
            for (int h = 0; h < header_count; ++h)
                headers.push_back({pick(rng, header_names), pick(rng, header_values)});
            const request_view request{pick(rng, methods), pick(rng, request_hosts), pick(rng, request_paths),
                                       headers, pick(rng, request_queries)};
            const auto* linear = table.match_linear(request);
            const auto* indexed = table.match(request);
            ASSERT_EQ(id_of(indexed), id_of(linear))
                << "table round " << table_round << ": " << request.method << " " << request.host << " "
                << request.path << "?" << request.query;
            const auto steps = table.explain(request);
            ASSERT_FALSE(steps.empty());
            ASSERT_EQ(steps.back().matched, linear != nullptr);
            if (linear) {
                ASSERT_EQ(steps.back().route, linear);
            }
            for (std::size_t i = 0; i + 1 < steps.size(); ++i) ASSERT_FALSE(steps[i].reason.empty());
            matched_count += linear != nullptr;
            ++total;
        }
    }
    // The vocabularies must produce both outcomes often, or the property says little.
    EXPECT_GT(matched_count, total / 10);
    EXPECT_LT(matched_count, total * 4 / 5);
}

TEST(RouteIndex, AgreesWithLinearScanOnRandomTables) { agrees_with_linear_scan(false); }
TEST(RouteIndex, AgreesWithLinearScanOnHeaderKeyedTables) { agrees_with_linear_scan(true); }

TEST(RouteIndex, HeaderKeyedRoutes) {
    std::vector<config::route_config> routes;
    for (int i = 0; i < 10; ++i)
        routes.push_back(route("t" + std::to_string(i), 0,
                               {.path_prefixes = {"/t/"}, .headers = {exact("X-Tenant", {"t" + std::to_string(i), "all"})}}));
    routes.push_back(route("t3-post", 0, {.path_prefixes = {"/t/"}, .methods = {"POST"},
                                          .headers = {exact("x-tenant", {"t3"})}}));
    routes.push_back(route("other", 0, {.path_prefixes = {"/t/"}, .headers = {present("x-other")}}));
    routes.push_back(route("rest", -1, {}));
    route_table table(routes);
    auto req = [&](std::string_view method, std::vector<http1::header> h) {
        return matched(table, request_view{method, "h", "/t/x", h});
    };
    EXPECT_EQ(req("GET", {{"x-tenant", "t7"}}), "t7");
    EXPECT_EQ(req("GET", {{"X-TENANT", "t3"}}), "t3");
    EXPECT_EQ(req("POST", {{"x-tenant", "t3"}}), "t3-post");
    EXPECT_EQ(req("GET", {{"x-tenant", "T3"}}), "rest");
    EXPECT_EQ(req("GET", {{"x-tenant", "nope"}, {"x-tenant", "t9"}}), "t9");
    EXPECT_EQ(req("GET", {{"x-tenant", "t9"}, {"x-tenant", "t2"}}), "t2");  // earliest route wins
    EXPECT_EQ(req("GET", {{"x-tenant", "all"}}), "t0");
    EXPECT_EQ(req("GET", {{"x-other", "1"}, {"x-tenant", "t5"}}), "t5");
    EXPECT_EQ(req("GET", {{"x-other", "1"}}), "other");
}

TEST(RouteIndex, ManyHostsAndPrefixes) {
    std::vector<config::route_config> routes;
    for (int h = 0; h < 50; ++h)
        for (int p = 0; p < 10; ++p)
            routes.push_back(route("h" + std::to_string(h) + "p" + std::to_string(p), 0,
                                   {.hosts = {(h % 5 == 0 ? "*.w" : "h") + std::to_string(h) + ".test"},
                                    .path_prefixes = {"/s" + std::to_string(p) + "/"}}));
    routes.push_back(route("fallback", 0, {.path_prefixes = {"/"}}));
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "h7.test", "/s3/x"), "h7p3");
    EXPECT_EQ(matched(table, "GET", "a.b.w10.test", "/s9/"), "h10p9");
    EXPECT_EQ(matched(table, "GET", "w10.test", "/s9/"), "fallback");
    EXPECT_EQ(matched(table, "GET", "h7.test", "/s3"), "fallback");
}

}  // namespace
}  // namespace sentinel::router
