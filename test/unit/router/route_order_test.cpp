// Evaluation order: priority, then the documented specificity fields, then file order.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "route_test_util.hpp"

namespace sentinel::router {
namespace {

using namespace test;

std::vector<std::string> order_of(const route_table& table) {
    std::vector<std::string> ids;
    for (const auto* r : table.ordered()) ids.push_back(r->id);
    return ids;
}

TEST(RouteOrder, SpecificityFieldsInOrder) {
    std::vector<config::route_config> routes{
        route("any", 0, {}),
        route("method", 0, {.methods = {"GET"}}),
        route("one-header", 0, {.headers = {present("a")}}),
        route("two-matchers", 0, {.headers = {present("a")}, .query = {present("q")}}),
        route("short-prefix", 0, {.path_prefixes = {"/a"}}),
        route("long-prefix", 0, {.path_prefixes = {"/a/b/"}}),
        route("regex", 0, {.path_regexes = {"/a/.*"}}),
        route("exact-path", 0, {.paths = {"/a"}}),
        route("wild-short", 0, {.hosts = {"*.com"}}),
        route("wild-long", 0, {.hosts = {"*.example.com"}}),
        route("exact-host", 0, {.hosts = {"example.com"}}),
        route("exact-host-path", 0, {.hosts = {"example.com"}, .paths = {"/a"}}),
        route("prioritised", 1, {}),
    };
    const std::vector<std::string> expected{
        "prioritised", "exact-host-path", "exact-host", "wild-long", "wild-short", "exact-path", "regex",
        "long-prefix", "short-prefix", "two-matchers", "one-header", "method", "any"};
    route_table table(routes);
    EXPECT_EQ(order_of(table), expected);
}

TEST(RouteOrder, MixedMatchersRankAsTheirLeastSpecific) {
    std::vector<config::route_config> routes{
        route("exact-or-root", 0, {.paths = {"/a"}, .path_prefixes = {"/"}}),
        route("prefix", 0, {.path_prefixes = {"/b/"}}),
        route("exact-or-regex", 0, {.paths = {"/c"}, .path_regexes = {"/c/.*"}}),
        route("host-or-wild", 0, {.hosts = {"a.com", "*.long-name.com"}}),
        route("host-or-shorter-wild", 0, {.hosts = {"*.z.com", "*.long-name.com"}}),
    };
    route_table table(routes);
    const std::vector<std::string> expected{"host-or-wild", "host-or-shorter-wild", "exact-or-regex", "prefix",
                                            "exact-or-root"};
    EXPECT_EQ(order_of(table), expected);
}

TEST(RouteOrder, NegativePriorityGoesLast) {
    std::vector<config::route_config> routes{route("fallback", -5, {.hosts = {"a.com"}, .paths = {"/"}}),
                                             route("catch-all", 0, {})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "a.com", "/"), "catch-all");
}

TEST(RouteOrder, EqualKeysKeepFileOrderWhateverTheInputPermutation) {
    // Ties are broken by file order only, so shuffling the file changes the winner
    // exactly as the file order changed, and building twice never differs.
    std::vector<config::route_config> routes;
    for (int i = 0; i < 20; ++i)
        routes.push_back(route("r" + std::to_string(i), i % 3, {.path_prefixes = {i % 2 ? "/x" : "/y"}}));
    std::mt19937 rng(7);
    for (int round = 0; round < 10; ++round) {
        std::shuffle(routes.begin(), routes.end(), rng);
        route_table a(routes);
        route_table b(routes);
        EXPECT_EQ(order_of(a), order_of(b));
        for (std::size_t i = 1; i < a.ordered().size(); ++i) {
            const auto* prev = a.ordered()[i - 1];
            const auto* cur = a.ordered()[i];
            if (prev->priority == cur->priority && prev->match.path_prefixes == cur->match.path_prefixes) {
                EXPECT_LT(prev, cur) << "equal routes must keep file order";
            }
        }
    }
}

}  // namespace
}  // namespace sentinel::router
