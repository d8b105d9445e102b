#include "router/route_table.hpp"

#include <gtest/gtest.h>

#include "route_test_util.hpp"

namespace sentinel::router {
namespace {

using namespace test;

TEST(RouteTable, PriorityWinsOverFileOrder) {
    std::vector<config::route_config> routes{route("low", 0, {.path_prefixes = {"/"}}),
                                             route("high", 10, {.path_prefixes = {"/"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "a", "/x"), "high");
}

TEST(RouteTable, SpecificityOrdersEqualPriorities) {
    std::vector<config::route_config> routes{
        route("any", 0, {.path_prefixes = {"/"}}),
        route("short", 0, {.path_prefixes = {"/v1/"}}),
        route("long", 0, {.path_prefixes = {"/v1/users/"}}),
        route("exact", 0, {.paths = {"/v1/users/me"}}),
        route("host", 0, {.hosts = {"api.example.com"}, .path_prefixes = {"/"}}),
        route("wild", 0, {.hosts = {"*.example.com"}, .path_prefixes = {"/"}}),
    };
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "other", "/v1/users/me"), "exact");
    EXPECT_EQ(matched(table, "GET", "other", "/v1/users/42"), "long");
    EXPECT_EQ(matched(table, "GET", "other", "/v1/x"), "short");
    EXPECT_EQ(matched(table, "GET", "other", "/x"), "any");
    EXPECT_EQ(matched(table, "GET", "api.example.com", "/v1/users/me"), "host");
    EXPECT_EQ(matched(table, "GET", "www.example.com", "/x"), "wild");
}

TEST(RouteTable, EqualRoutesKeepFileOrder) {
    std::vector<config::route_config> routes{route("first", 0, {.path_prefixes = {"/a"}}),
                                             route("second", 0, {.path_prefixes = {"/b"}}),
                                             route("third", 0, {.path_prefixes = {"/a"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "h", "/a"), "first");
}

TEST(RouteTable, MatcherKindsAndValuesOr) {
    std::vector<config::route_config> routes{
        route("r", 0, {.hosts = {"a.com", "b.com"}, .path_prefixes = {"/x", "/y"}, .methods = {"GET", "POST"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "a.com", "/x1"), "r");
    EXPECT_EQ(matched(table, "POST", "b.com", "/y"), "r");
    EXPECT_EQ(matched(table, "PUT", "a.com", "/x"), "<none>");
    EXPECT_EQ(matched(table, "GET", "c.com", "/x"), "<none>");
    EXPECT_EQ(matched(table, "GET", "a.com", "/z"), "<none>");
}

TEST(RouteTable, HostIgnoresPortAndCase) {
    std::vector<config::route_config> routes{route("r", 0, {.hosts = {"Api.Example.com"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "api.example.COM:8080", "/"), "r");
    EXPECT_EQ(matched(table, "GET", "api.example.com.evil", "/"), "<none>");
}

TEST(RouteTable, WildcardNeedsASubdomain) {
    std::vector<config::route_config> routes{route("w", 0, {.hosts = {"*.example.com"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "a.b.example.com", "/"), "w");
    EXPECT_EQ(matched(table, "GET", "example.com", "/"), "<none>");
    EXPECT_EQ(matched(table, "GET", "badexample.com", "/"), "<none>");
}

TEST(RouteTable, StripPort) {
    EXPECT_EQ(strip_port("a.com:80"), "a.com");
    EXPECT_EQ(strip_port("a.com"), "a.com");
    EXPECT_EQ(strip_port("[::1]:8080"), "[::1]");
    EXPECT_EQ(strip_port("[::1]"), "[::1]");
}

}  // namespace
}  // namespace sentinel::router
