// Every matcher kind, hit and miss, and how kinds and values combine.
#include <gtest/gtest.h>

#include "route_test_util.hpp"
#include "router/matchers.hpp"

namespace sentinel::router {
namespace {

using namespace test;
using http1::header;

std::string with_headers(const route_table& table, std::vector<header> headers, std::string_view path = "/") {
    return matched(table, request_view{"GET", "h", path, headers});
}

std::string with_query(const route_table& table, std::string_view query) {
    return matched(table, request_view{"GET", "h", "/", {}, query});
}

TEST(RouteMatchers, NoMatchersMatchEverything) {
    std::vector<config::route_config> routes{route("all", 0, {})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "DELETE", "", "*"), "all");
    EXPECT_EQ(matched(table, "GET", "x.y", "/a/b"), "all");
}

TEST(RouteMatchers, ExactHostAndWildcard) {
    std::vector<config::route_config> routes{route("exact", 0, {.hosts = {"API.example.com"}}),
                                             route("wild", 0, {.hosts = {"*.Example.com"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "api.EXAMPLE.com:443", "/"), "exact");
    EXPECT_EQ(matched(table, "GET", "www.example.com", "/"), "wild");
    EXPECT_EQ(matched(table, "GET", "a.b.c.example.com", "/"), "wild");
    EXPECT_EQ(matched(table, "GET", "example.com", "/"), "<none>");
    EXPECT_EQ(matched(table, "GET", ".example.com", "/"), "<none>");
    EXPECT_EQ(matched(table, "GET", "wwwexample.com", "/"), "<none>");
    EXPECT_EQ(matched(table, "GET", "example.com.evil", "/"), "<none>");
    EXPECT_EQ(matched(table, "GET", "", "/"), "<none>");
}

TEST(RouteMatchers, OverlongHostsMatchOnlyHostlessRoutes) {
    std::vector<config::route_config> routes{route("wild", 0, {.hosts = {"*.com"}}),
                                             route("any", 0, {.path_prefixes = {"/"}})};
    route_table table(routes);
    const std::string long_host = std::string(300, 'a') + ".com";
    EXPECT_EQ(matched(table, "GET", long_host, "/"), "any");
    EXPECT_EQ(matched(table, "GET", std::string(200, 'a') + ".com", "/"), "wild");
}

TEST(RouteMatchers, ExactPathPrefixAndRegex) {
    std::vector<config::route_config> routes{
        route("exact", 0, {.paths = {"/login"}}),
        route("regex", 0, {.path_regexes = {"/users/[0-9]+"}}),
        route("prefix", 0, {.path_prefixes = {"/static/"}}),
    };
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "h", "/login"), "exact");
    EXPECT_EQ(matched(table, "GET", "h", "/login/"), "<none>");
    EXPECT_EQ(matched(table, "GET", "h", "/users/42"), "regex");
    // Full match: a regex is not a prefix or substring search.
    EXPECT_EQ(matched(table, "GET", "h", "/users/42/x"), "<none>");
    EXPECT_EQ(matched(table, "GET", "h", "/x/users/42"), "<none>");
    EXPECT_EQ(matched(table, "GET", "h", "/static/a.css"), "prefix");
    EXPECT_EQ(matched(table, "GET", "h", "/static"), "<none>");
}

TEST(RouteMatchers, RegexAlternationIsAnchoredAsAWhole) {
    std::vector<config::route_config> routes{route("r", 0, {.path_regexes = {"/a|/b"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "GET", "h", "/a"), "r");
    EXPECT_EQ(matched(table, "GET", "h", "/b"), "r");
    EXPECT_EQ(matched(table, "GET", "h", "/ab"), "<none>");
    EXPECT_EQ(matched(table, "GET", "h", "/a/b"), "<none>");
}

TEST(RouteMatchers, InvalidRegexNeverMatchesAndIsReported) {
    std::vector<config::route_config> routes{route("bad", 0, {.path_regexes = {"(", "/ok"}}),
                                             route("hdr", 0, {.headers = {regex("x", {"["})}})};
    route_table table(routes);
    ASSERT_EQ(table.errors().size(), 2u);
    EXPECT_NE(table.errors()[0].find("route \"bad\": path-regex \"(\""), std::string::npos) << table.errors()[0];
    EXPECT_EQ(matched(table, "GET", "h", "("), "<none>");
    EXPECT_EQ(matched(table, "GET", "h", "/ok"), "bad");
    EXPECT_EQ(with_headers(table, {{"x", "["}}), "<none>");
}

TEST(RouteMatchers, Methods) {
    std::vector<config::route_config> routes{route("m", 0, {.methods = {"GET", "HEAD"}})};
    route_table table(routes);
    EXPECT_EQ(matched(table, "HEAD", "h", "/"), "m");
    EXPECT_EQ(matched(table, "POST", "h", "/"), "<none>");
    EXPECT_EQ(matched(table, "get", "h", "/"), "<none>");  // methods are case-sensitive
}

TEST(RouteMatchers, HeaderExact) {
    std::vector<config::route_config> routes{route("r", 0, {.headers = {exact("X-Env", {"prod", "canary"})}})};
    route_table table(routes);
    EXPECT_EQ(with_headers(table, {{"x-env", "prod"}}), "r");
    EXPECT_EQ(with_headers(table, {{"X-ENV", "canary"}}), "r");
    EXPECT_EQ(with_headers(table, {{"x-env", "Prod"}}), "<none>");  // values are case-sensitive
    EXPECT_EQ(with_headers(table, {{"x-env", "dev"}}), "<none>");
    EXPECT_EQ(with_headers(table, {}), "<none>");
    // Several fields of that name: any one may match.
    EXPECT_EQ(with_headers(table, {{"x-env", "dev"}, {"x-other", "prod"}, {"X-Env", "prod"}}), "r");
}

TEST(RouteMatchers, HeaderRegexPresentAbsent) {
    std::vector<config::route_config> routes{
        route("re", 0, {.path_prefixes = {"/re"}, .headers = {regex("user-agent", {".*curl.*", "wget/[0-9.]+"})}}),
        route("present", 0, {.path_prefixes = {"/present"}, .headers = {present("authorization")}}),
        route("absent", 0, {.path_prefixes = {"/absent"}, .headers = {absent("cookie")}}),
    };
    route_table table(routes);
    EXPECT_EQ(with_headers(table, {{"User-Agent", "curl/8.0"}}, "/re"), "re");
    EXPECT_EQ(with_headers(table, {{"User-Agent", "wget/1.21"}}, "/re"), "re");
    EXPECT_EQ(with_headers(table, {{"User-Agent", "xwget/1.21"}}, "/re"), "<none>");
    EXPECT_EQ(with_headers(table, {}, "/re"), "<none>");
    EXPECT_EQ(with_headers(table, {{"Authorization", ""}}, "/present"), "present");
    EXPECT_EQ(with_headers(table, {{"Authorizations", "x"}}, "/present"), "<none>");
    EXPECT_EQ(with_headers(table, {}, "/absent"), "absent");
    EXPECT_EQ(with_headers(table, {{"Cookie", "a=b"}}, "/absent"), "<none>");
    EXPECT_EQ(with_headers(table, {{"x", "1"}, {"COOKIE", ""}}, "/absent"), "<none>");
}

TEST(RouteMatchers, HeaderMatchersAreAnded) {
    std::vector<config::route_config> routes{
        route("r", 0, {.headers = {exact("a", {"1"}), exact("b", {"2"}), absent("c")}})};
    route_table table(routes);
    EXPECT_EQ(with_headers(table, {{"a", "1"}, {"b", "2"}}), "r");
    EXPECT_EQ(with_headers(table, {{"a", "1"}}), "<none>");
    EXPECT_EQ(with_headers(table, {{"a", "1"}, {"b", "2"}, {"c", ""}}), "<none>");
}

TEST(RouteMatchers, QueryKinds) {
    std::vector<config::route_config> routes{
        route("both", 0, {.query = {exact("v", {"2", "3"}), regex("id", {"[0-9]+"})}}),
        route("present", 0, {.query = {present("debug")}}),
        route("absent", 0, {.methods = {"GET"}, .query = {absent("nocache")}}),
    };
    route_table table(routes);
    EXPECT_EQ(with_query(table, "v=2&id=17"), "both");
    EXPECT_EQ(with_query(table, "id=17&x=1&v=3"), "both");
    EXPECT_EQ(with_query(table, "v=2&id=17x"), "absent");
    EXPECT_EQ(with_query(table, "v=2&id=17x&nocache"), "<none>");
    EXPECT_EQ(with_query(table, "V=2&id=17&nocache=1"), "<none>");  // names are case-sensitive
    EXPECT_EQ(with_query(table, "debug&nocache"), "present");
    EXPECT_EQ(with_query(table, "debug=&nocache"), "present");
    EXPECT_EQ(with_query(table, "&&v=1&v=2&&id=0&"), "both");  // any one of repeated names
}

TEST(RouteMatchers, QueryIsPercentDecoded) {
    std::vector<config::route_config> routes{
        route("r", 0, {.query = {exact("full name", {"a b+c"}), regex("q", {"x y/.*"})}})};
    route_table table(routes);
    EXPECT_EQ(with_query(table, "full+name=a+b%2Bc&q=x+y%2Fz"), "r");
    EXPECT_EQ(with_query(table, "full%20name=a%20b%2bc&q=x%20y/"), "r");
    EXPECT_EQ(with_query(table, "full+name=a+b+c&q=x+y/"), "<none>");
    // A malformed escape stays literal rather than failing the request.
    std::vector<config::route_config> literal{route("pct", 0, {.query = {exact("p", {"100%", "%zz", "%4"})}})};
    route_table t2(literal);
    EXPECT_EQ(with_query(t2, "p=100%"), "pct");
    EXPECT_EQ(with_query(t2, "p=%zz"), "pct");
    EXPECT_EQ(with_query(t2, "p=%4"), "pct");
    EXPECT_EQ(with_query(t2, "p=%41"), "<none>");
}

TEST(RouteMatchers, DecodeHelpers) {
    std::string scratch;
    EXPECT_EQ(detail::decode("plain", scratch), "plain");
    EXPECT_EQ(detail::decode("a+b%20c%2f%zz%", scratch), "a b c/%zz%");
    EXPECT_TRUE(detail::decoded_equals("%41%42", "AB"));
    EXPECT_FALSE(detail::decoded_equals("%41%42", "ABC"));
    EXPECT_FALSE(detail::decoded_equals("%41%42x", "AB"));
    EXPECT_TRUE(detail::decoded_equals("", ""));
}

TEST(RouteMatchers, KindsAreAndedValuesOred) {
    std::vector<config::route_config> routes{route(
        "r", 0,
        {.hosts = {"a.com", "*.b.com"}, .paths = {"/x"}, .path_prefixes = {"/p/"}, .path_regexes = {"/r[0-9]"},
         .methods = {"GET", "PUT"}, .headers = {present("h")}, .query = {exact("q", {"1", "2"})}})};
    route_table table(routes);
    const std::vector<header> h{{"h", "v"}};
    auto req = [&](std::string_view method, std::string_view host, std::string_view path, std::string_view query,
                   bool with_header = true) {
        return matched(table, request_view{method, host, path, with_header ? std::span<const header>(h)
                                                                            : std::span<const header>(), query});
    };
    EXPECT_EQ(req("GET", "a.com", "/x", "q=1"), "r");
    EXPECT_EQ(req("PUT", "z.b.com", "/p/1", "q=2"), "r");
    EXPECT_EQ(req("GET", "a.com", "/r7", "q=2"), "r");
    EXPECT_EQ(req("POST", "a.com", "/x", "q=1"), "<none>");
    EXPECT_EQ(req("GET", "b.com", "/x", "q=1"), "<none>");
    EXPECT_EQ(req("GET", "a.com", "/y", "q=1"), "<none>");
    EXPECT_EQ(req("GET", "a.com", "/x", "q=3"), "<none>");
    EXPECT_EQ(req("GET", "a.com", "/x", "q=1", false), "<none>");
}

}  // namespace
}  // namespace sentinel::router
