// explain(): every route passed over before the match, each with the matcher that refused it.
#include <gtest/gtest.h>

#include "route_test_util.hpp"

namespace sentinel::router {
namespace {

using namespace test;
using http1::header;

std::vector<std::string> reasons(const std::vector<explain_step>& steps) {
    std::vector<std::string> out;
    for (const auto& s : steps) out.push_back(s.route->id + ": " + (s.matched ? "MATCH" : s.reason));
    return out;
}

TEST(RouteExplain, ListsEveryRejectionUpToTheMatch) {
    std::vector<config::route_config> routes{
        route("api", 0, {.hosts = {"api.example.com"}, .path_prefixes = {"/"}}),
        route("users", 0, {.path_regexes = {"/users/[0-9]+"}}),
        route("login", 0, {.paths = {"/login"}, .methods = {"POST"}}),
        route("env", 0, {.path_prefixes = {"/"}, .headers = {present("x-env")}}),
        route("canary", 0, {.path_prefixes = {"/"}, .headers = {exact("x-canary", {"1", "yes"})}, .query = {absent("no")}}),
        route("q", 0, {.path_prefixes = {"/"}, .query = {regex("v", {"[0-9]+"})}}),
        route("anon", 0, {.path_prefixes = {"/"}, .headers = {absent("cookie")}}),
        route("rest", 0, {.path_prefixes = {"/"}}),
        route("never", -1, {}),
    };
    route_table table(routes);
    const std::vector<header> headers{{"X-Canary", "no"}, {"x-canary", "0"}, {"Cookie", "a=b"}};
    const auto steps = table.explain({"GET", "www.example.com:80", "/login", headers, "v=x%20y"});
    const std::vector<std::string> expected{
        R"(api: host "www.example.com" did not match "api.example.com")",
        R"(login: method "GET" did not match "POST")",
        R"(users: path "/login" did not match regex "/users/[0-9]+")",
        R"(canary: header "x-canary": "no", "0" did not match "1", "yes")",
        R"(env: header "x-env": absent)",
        R"(q: query "v": "x y" did not match regex "[0-9]+")",
        R"(anon: header "cookie": present, must be absent)",
        "rest: MATCH",
    };
    EXPECT_EQ(reasons(steps), expected);
    EXPECT_EQ(steps.back().position, 7u);
}

TEST(RouteExplain, NoMatchListsEveryRoute) {
    std::vector<config::route_config> routes{route("a", 0, {.paths = {"/c"}, .path_prefixes = {"/a/", "/b"}}),
                                             route("h", 0, {.hosts = {"*.x.com"}})};
    route_table table(routes);
    const auto steps = table.explain({"GET", "x.com", "/z\n"});
    const std::vector<std::string> expected{
        R"(h: host "x.com" did not match "*.x.com")",
        R"(a: path "/z\x0a" did not match exact "/c", prefix "/a/", prefix "/b")",
    };
    EXPECT_EQ(reasons(steps), expected);
}

}  // namespace
}  // namespace sentinel::router
