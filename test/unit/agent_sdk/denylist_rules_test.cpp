#include "agents/denylist/denylist_rules.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace sentinel::denylist {
namespace {

rule_set parse_ok(std::string_view text) {
    rule_set rs;
    std::vector<parse_error> errors;
    EXPECT_TRUE(rule_set::parse(text, rs, errors));
    for (const auto& e : errors) ADD_FAILURE() << format_error("list", e);
    return rs;
}

std::vector<std::string> parse_errors(std::string_view text) {
    rule_set rs;
    std::vector<parse_error> errors;
    EXPECT_FALSE(rule_set::parse(text, rs, errors)) << text;
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(format_error("deny.list", e));
    return out;
}

// The line of the rule that matches, or 0.
std::size_t match_line(const rule_set& rs, std::string_view client, std::string_view path = "/",
                       std::vector<header_view> headers = {}) {
    const rule* r = rs.match({client, path, headers});
    return r ? r->line : 0;
}

TEST(denylist_parse, reads_every_rule_kind_skipping_comments_and_blanks) {
    const auto rs = parse_ok(
        "# office and scanners\n"
        "\n"
        "ip 203.0.113.0/24\r\n"
        "  ip   198.51.100.7  \n"
        "ip 2001:db8:bad::/48\n"
        "path /admin\n"
        "header X-Debug  yes please \n"
        "\t# indented comment\n"
        "user-agent SQLMap\n"
        "user-agent curl/7.# not a comment\n");
    ASSERT_EQ(rs.size(), 7u);
    const auto& r = rs.rules();
    EXPECT_EQ(r[0].line, 3u);
    EXPECT_EQ(r[0].text, "ip 203.0.113.0/24");
    EXPECT_EQ(r[1].text, "ip 198.51.100.7");
    EXPECT_EQ(r[2].kind, rule_kind::ip);
    EXPECT_EQ(r[3].text, "path /admin");
    EXPECT_EQ(r[4].text, "header X-Debug yes please");
    EXPECT_EQ(r[5].kind, rule_kind::user_agent);
    EXPECT_EQ(r[6].text, "user-agent curl/7.# not a comment");
    EXPECT_EQ(r[6].line, 10u);
}

TEST(denylist_parse, empty_file_is_an_empty_list) {
    EXPECT_EQ(parse_ok("").size(), 0u);
    EXPECT_EQ(parse_ok("# nothing yet\n\n").size(), 0u);
    EXPECT_EQ(match_line(parse_ok(""), "203.0.113.1", "/admin"), 0u);
}

TEST(denylist_parse, errors_carry_line_and_column) {
    EXPECT_EQ(parse_errors("ip 10.0.0.0/8\n  bogus thing\n"),
              std::vector<std::string>{"deny.list:2:3: unknown rule \"bogus\"; expected ip, path, header or user-agent"});
    EXPECT_EQ(parse_errors("ip 203.0.113.5/24"),
              std::vector<std::string>{"deny.list:1:4: 203.0.113.5/24 has host bits set; the network is 203.0.113.0/24"});
    EXPECT_EQ(parse_errors("ip 10.0.0.0/33"),
              std::vector<std::string>{"deny.list:1:13: prefix length must be 0-32, got \"33\""});
    EXPECT_EQ(parse_errors("ip 2001:db8::/129"),
              std::vector<std::string>{"deny.list:1:15: prefix length must be 0-128, got \"129\""});
    EXPECT_EQ(parse_errors("ip 10.0.0.0/08"),
              std::vector<std::string>{"deny.list:1:13: prefix length must be 0-32, got \"08\""});
    EXPECT_EQ(parse_errors("ip 10.0.0.0/"), std::vector<std::string>{"deny.list:1:13: prefix length must be 0-32, got \"\""});
    EXPECT_EQ(parse_errors("ip 10.1.2.256"),
              std::vector<std::string>{"deny.list:1:4: \"10.1.2.256\" is not an IPv4 or IPv6 address"});
    EXPECT_EQ(parse_errors("ip 010.1.2.3"),
              std::vector<std::string>{"deny.list:1:4: \"010.1.2.3\" is not an IPv4 or IPv6 address"});
    EXPECT_EQ(parse_errors("ip fe80::1%eth0"),
              std::vector<std::string>{"deny.list:1:4: \"fe80::1%eth0\" is not an IPv4 or IPv6 address"});
    EXPECT_EQ(parse_errors("ip 10.0.0.1 10.0.0.2"),
              std::vector<std::string>{"deny.list:1:13: unexpected text after the address"});
    EXPECT_EQ(parse_errors("ip"),
              std::vector<std::string>{"deny.list:1:3: ip needs an address or a CIDR, e.g. ip 203.0.113.0/24"});
    EXPECT_EQ(parse_errors("path admin"), std::vector<std::string>{"deny.list:1:6: a path prefix starts with /"});
    EXPECT_EQ(parse_errors("path /a b"),
              std::vector<std::string>{"deny.list:1:9: unexpected text after the path (a path has no spaces)"});
    EXPECT_EQ(parse_errors("header X-Debug"),
              std::vector<std::string>{"deny.list:1:15: header X-Debug needs a value to match"});
    EXPECT_EQ(parse_errors("header X:Debug 1"),
              std::vector<std::string>{"deny.list:1:9: invalid character in the header name"});
    EXPECT_EQ(parse_errors("user-agent   "),
              std::vector<std::string>{"deny.list:1:14: user-agent needs a substring to look for"});
    EXPECT_EQ(parse_errors("path /a\x01"), std::vector<std::string>{"deny.list:1:8: control character in the line"});
}

TEST(denylist_parse, reports_every_bad_line_and_keeps_the_output_untouched) {
    rule_set rs = parse_ok("path /keep\n");
    std::vector<parse_error> errors;
    EXPECT_FALSE(rule_set::parse("path /x\nip nope\npath /y\nwhat\n", rs, errors));
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].line, 2u);
    EXPECT_EQ(errors[1].line, 4u);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs.rules()[0].text, "path /keep");
}

TEST(denylist_match, ipv4_cidrs_and_single_addresses) {
    const auto rs = parse_ok("ip 203.0.113.0/24\nip 198.51.100.7\nip 10.0.0.0/8\nip 0.0.0.0/0\n");
    EXPECT_EQ(match_line(rs, "203.0.113.0"), 1u);
    EXPECT_EQ(match_line(rs, "203.0.113.255"), 1u);
    EXPECT_EQ(match_line(rs, "198.51.100.7"), 2u);
    EXPECT_EQ(match_line(rs, "10.255.0.1"), 3u);
    EXPECT_EQ(match_line(rs, "203.0.114.1"), 4u);  // only the catch-all
    const auto narrow = parse_ok("ip 203.0.113.0/24\nip 198.51.100.7\n");
    EXPECT_EQ(match_line(narrow, "203.0.114.0"), 0u);
    EXPECT_EQ(match_line(narrow, "198.51.100.8"), 0u);
    EXPECT_EQ(match_line(narrow, "not an ip"), 0u);
    EXPECT_EQ(match_line(narrow, ""), 0u);
    // An IPv4-mapped client is the same client.
    EXPECT_EQ(match_line(narrow, "::ffff:203.0.113.9"), 1u);
    EXPECT_EQ(match_line(narrow, "[::ffff:198.51.100.7]"), 2u);
}

TEST(denylist_match, ipv6_cidrs) {
    const auto rs = parse_ok("ip 2001:db8:bad::/48\nip 2001:DB8::1\nip fc00::/7\nip 2001:db8:0:1::/127\n");
    EXPECT_EQ(match_line(rs, "2001:db8:bad:ffff::1"), 1u);
    EXPECT_EQ(match_line(rs, "2001:db8:bae::1"), 0u);
    EXPECT_EQ(match_line(rs, "2001:db8::1"), 2u);
    EXPECT_EQ(match_line(rs, "2001:db8::2"), 0u);
    EXPECT_EQ(match_line(rs, "fd12:3456::1"), 3u);
    EXPECT_EQ(match_line(rs, "fe00::1"), 0u);
    EXPECT_EQ(match_line(rs, "2001:db8:0:1::1"), 4u);  // /127: ::0 and ::1
    EXPECT_EQ(match_line(rs, "2001:db8:0:1::2"), 0u);
    EXPECT_EQ(match_line(rs, "[2001:db8::1]"), 2u);
    EXPECT_EQ(match_line(rs, "203.0.113.1"), 0u);
    // ::/0 holds every address, IPv4 included through the mapped form (as the proxy's CIDRs do).
    EXPECT_EQ(match_line(parse_ok("ip ::/0\n"), "192.0.2.1"), 1u);
}

TEST(denylist_match, path_prefix_raw_and_normalized) {
    const auto rs = parse_ok("path /admin\npath /api/internal/\n");
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/admin"), 1u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/admin/users"), 1u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/administrator"), 1u);  // a prefix, not a segment match
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/Admin"), 0u);          // paths are case-sensitive
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/public"), 0u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/api/internal"), 0u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/api/internal/x"), 2u);
    // What an origin would resolve to /admin is caught too.
    for (const char* evasive : {"/%61dmin", "//admin", "/./admin", "/x/../admin", "/%2e/admin", "/public/%2E%2E/admin"})
        EXPECT_EQ(match_line(rs, "192.0.2.1", evasive), 1u) << evasive;
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/api//internal/x"), 2u);
    // An encoded slash stays one segment.
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/x%2F..%2Fadmin"), 0u);
}

TEST(denylist_match, normalize_path) {
    EXPECT_EQ(normalize_path("/"), "/");
    EXPECT_EQ(normalize_path(""), "/");
    EXPECT_EQ(normalize_path("/a/b"), "/a/b");
    EXPECT_EQ(normalize_path("/a/b/"), "/a/b/");
    EXPECT_EQ(normalize_path("/a//b///c"), "/a/b/c");
    EXPECT_EQ(normalize_path("/a/./b/."), "/a/b/");
    EXPECT_EQ(normalize_path("/a/b/../c"), "/a/c");
    EXPECT_EQ(normalize_path("/a/b/.."), "/a/");
    EXPECT_EQ(normalize_path("/../../etc"), "/etc");
    EXPECT_EQ(normalize_path("/%41%2f%2F%zz%4"), "/A%2F%2F%zz%4");
}

TEST(denylist_match, headers_by_case_insensitive_name_and_exact_value) {
    const auto rs = parse_ok("header X-Debug yes please\nheader x-role admin\n");
    auto line = [&](std::vector<header_view> h) { return match_line(rs, "192.0.2.1", "/", std::move(h)); };
    EXPECT_EQ(line({{"x-debug", "yes please"}}), 1u);
    EXPECT_EQ(line({{"X-DEBUG", "yes please"}}), 1u);
    EXPECT_EQ(line({{"X-Debug", "Yes please"}}), 0u);  // values are exact
    EXPECT_EQ(line({{"X-Debug", "yes please!"}}), 0u);
    EXPECT_EQ(line({{"Accept", "*/*"}, {"X-Role", "admin"}}), 2u);
    EXPECT_EQ(line({}), 0u);
}

TEST(denylist_match, user_agent_substring_ignores_case) {
    const auto rs = parse_ok("user-agent sqlmap\nuser-agent Nikto\n");
    auto line = [&](std::string_view ua) { return match_line(rs, "192.0.2.1", "/", {{"User-Agent", ua}}); };
    EXPECT_EQ(line("sqlmap/1.7"), 1u);
    EXPECT_EQ(line("Mozilla (SQLMAP)"), 1u);
    EXPECT_EQ(line("Mozilla/5.0 (nikto)"), 2u);
    EXPECT_EQ(line("curl/8.0"), 0u);
    // Only the User-Agent field counts.
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/", {{"Referer", "sqlmap"}}), 0u);
}

TEST(denylist_match, the_first_matching_line_wins_across_kinds) {
    const auto rs = parse_ok("user-agent curl\npath /admin\nip 192.0.2.0/24\nip 192.0.2.1\n");
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/admin", {{"User-Agent", "curl/8"}}), 1u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/admin"), 2u);
    EXPECT_EQ(match_line(rs, "192.0.2.1", "/"), 3u);
    const auto dup = parse_ok("ip 192.0.2.0/24\nip 192.0.2.0/24\n");
    EXPECT_EQ(match_line(dup, "192.0.2.9"), 1u);
}

}  // namespace
}  // namespace sentinel::denylist
