#include "net/cidr.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "net/ip_text.hpp"

namespace sentinel::net {
namespace {

std::string roundtrip(std::string_view text) {
    const auto addr = parse_ip(text);
    return addr ? format_ip(*addr) : "<invalid>";
}

TEST(parse_ip, accepts_ipv4_dotted_quad) {
    const auto addr = parse_ip("192.0.2.255");
    ASSERT_TRUE(addr);
    EXPECT_FALSE(addr->v6);
    const std::uint8_t want[4] = {192, 0, 2, 255};
    EXPECT_EQ(std::memcmp(addr->bytes, want, 4), 0);
    EXPECT_EQ(roundtrip("0.0.0.0"), "0.0.0.0");
    EXPECT_EQ(roundtrip("255.255.255.255"), "255.255.255.255");
    EXPECT_EQ(roundtrip("10.0.100.9"), "10.0.100.9");
}

TEST(parse_ip, rejects_loose_ipv4) {
    for (const char* bad : {"", "1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "00.1.2.3",
                            "0x1.2.3.4", "256.1.1.1", "1.2.3.256", "1..2.3", ".1.2.3",
                            "1.2.3.4.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "+1.2.3.4",
                            "1.2.3.1000", "1.2.3.4/8", "1.2.3.a", "1.2.3.4\n"})
        EXPECT_FALSE(parse_ip(bad)) << '"' << bad << '"';
}

TEST(parse_ip, accepts_rfc4291_ipv6_forms) {
    EXPECT_EQ(roundtrip("::"), "::");
    EXPECT_EQ(roundtrip("::1"), "::1");
    EXPECT_EQ(roundtrip("1::"), "1::");
    EXPECT_EQ(roundtrip("2001:DB8:0:0:8:800:200C:417A"), "2001:db8::8:800:200c:417a");
    EXPECT_EQ(roundtrip("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    EXPECT_EQ(roundtrip("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
    EXPECT_EQ(roundtrip("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");  // "::" for one group
    EXPECT_EQ(roundtrip("::2:3:4:5:6:7:8"), "0:2:3:4:5:6:7:8");
    EXPECT_EQ(roundtrip("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    EXPECT_EQ(roundtrip("0:0:0:0:0:FFFF:192.0.2.1"), "::ffff:192.0.2.1");
    EXPECT_EQ(roundtrip("::192.0.2.1"), "::c000:201");  // IPv4-compatible is not mapped
    EXPECT_EQ(roundtrip("1:2:3:4:5:6:1.2.3.4"), "1:2:3:4:5:6:102:304");
    EXPECT_EQ(roundtrip("1::5:6:1.2.3.4"), "1::5:6:102:304");
}

TEST(parse_ip, rejects_malformed_ipv6) {
    for (const char* bad :
         {":", ":::", "1::2::3", ":1::", "1:", ":1", "1::2:", "12345::", "1:2:3:4:5:6:7:8:9",
          "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "g::", "::ffff:1.2.3",
          "::ffff:01.2.3.4", "::ffff:1.2.3.4.5", "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4::",
          "::1.2.3.4:1", "fe80::1%eth0", "[::1]", "::1 ", "::ffff:256.0.0.1",
          "1:2:3:4:5:6::1.2.3.4", "::1:2:3:4:5:6:1.2.3.4", "::0x1", "::-1"})
        EXPECT_FALSE(parse_ip(bad)) << '"' << bad << '"';
}

// RFC 5952 §4 examples and tie-breaking.
TEST(format_ip, is_rfc5952_canonical) {
    EXPECT_EQ(roundtrip("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");  // first of equal runs
    EXPECT_EQ(roundtrip("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");        // longest run
    EXPECT_EQ(roundtrip("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // no "::" for one
    EXPECT_EQ(roundtrip("0:0:0:0:0:0:0:0"), "::");
    EXPECT_EQ(roundtrip("1:0:0:0:0:0:0:0"), "1::");
    EXPECT_EQ(roundtrip("0:0:0:0:0:0:0:1"), "::1");
    EXPECT_EQ(roundtrip("ABCD:EF01::"), "abcd:ef01::");
}

TEST(unmap_ipv4, extracts_only_mapped_addresses) {
    const auto mapped = unmap_ipv4(*parse_ip("::ffff:10.1.2.3"));
    EXPECT_FALSE(mapped.v6);
    EXPECT_EQ(format_ip(mapped), "10.1.2.3");
    EXPECT_EQ(format_ip(unmap_ipv4(*parse_ip("::10.1.2.3"))), "::a01:203");
    EXPECT_EQ(format_ip(unmap_ipv4(*parse_ip("10.1.2.3"))), "10.1.2.3");
}

TEST(parse_cidr, parses_networks_and_bare_addresses) {
    auto net = parse_cidr("10.0.0.0/8");
    ASSERT_TRUE(net);
    EXPECT_FALSE(net->v6);
    EXPECT_EQ(net->prefix_len, 8);
    EXPECT_EQ(net->bytes[0], 10);
    EXPECT_EQ(net->text, "10.0.0.0/8");
    net = parse_cidr("192.0.2.7");
    ASSERT_TRUE(net);
    EXPECT_EQ(net->prefix_len, 32);
    net = parse_cidr("2001:db8::/32");
    ASSERT_TRUE(net);
    EXPECT_TRUE(net->v6);
    EXPECT_EQ(net->prefix_len, 32);
    net = parse_cidr("::1");
    ASSERT_TRUE(net);
    EXPECT_EQ(net->prefix_len, 128);
    EXPECT_TRUE(parse_cidr("0.0.0.0/0"));
    EXPECT_TRUE(parse_cidr("::/0"));
    EXPECT_TRUE(parse_cidr("10.1.2.128/25"));
    EXPECT_TRUE(parse_cidr("2001:db8::8000/113"));
}

TEST(parse_cidr, rejects_host_bits_and_bad_lengths) {
    for (const char* bad :
         {"10.0.0.1/8", "10.1.2.129/25", "2001:db8::1/64", "::1/127", "2001:db8::8000/112",
          "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/+8",
          "10.0.0.0/8/8", "10.0.0.0 /8", "10.0.0.0/8 ", "/8", "", "10.0.0.0/1000",
          "10.0.0.0/0x8", "::/00"})
        EXPECT_FALSE(parse_cidr(bad)) << '"' << bad << '"';
}

bool contains(std::string_view net, std::string_view addr) {
    return cidr_contains(*parse_cidr(net), *parse_ip(addr));
}

TEST(cidr_contains, matches_prefixes) {
    EXPECT_TRUE(contains("10.0.0.0/8", "10.255.1.2"));
    EXPECT_FALSE(contains("10.0.0.0/8", "11.0.0.0"));
    EXPECT_TRUE(contains("10.1.2.128/25", "10.1.2.255"));
    EXPECT_FALSE(contains("10.1.2.128/25", "10.1.2.127"));
    EXPECT_TRUE(contains("0.0.0.0/0", "1.2.3.4"));
    EXPECT_TRUE(contains("192.0.2.7", "192.0.2.7"));
    EXPECT_FALSE(contains("192.0.2.7", "192.0.2.6"));
    EXPECT_TRUE(contains("2001:db8::/32", "2001:db8:ffff::1"));
    EXPECT_FALSE(contains("2001:db8::/32", "2001:db9::1"));
    EXPECT_TRUE(contains("2001:db8::8000/113", "2001:db8::ffff"));
    EXPECT_FALSE(contains("2001:db8::8000/113", "2001:db8::7fff"));
    EXPECT_TRUE(contains("::1", "::1"));
}

TEST(cidr_contains, treats_ipv4_mapped_as_ipv4) {
    EXPECT_TRUE(contains("10.0.0.0/8", "::ffff:10.9.8.7"));
    EXPECT_FALSE(contains("10.0.0.0/8", "::ffff:11.9.8.7"));
    EXPECT_FALSE(contains("10.0.0.0/8", "::10.9.8.7"));       // IPv4-compatible: no
    EXPECT_FALSE(contains("10.0.0.0/8", "64:ff9b::a09:807"));  // NAT64: no
    EXPECT_TRUE(contains("::ffff:10.0.0.0/104", "10.1.1.1"));
    EXPECT_FALSE(contains("::ffff:10.0.0.0/104", "11.1.1.1"));
    EXPECT_TRUE(contains("::/0", "1.2.3.4"));
    EXPECT_FALSE(contains("2001:db8::/32", "1.2.3.4"));
    EXPECT_FALSE(contains("0.0.0.0/0", "2001:db8::1"));
}

TEST(any_contains, checks_every_net) {
    const std::vector<config::cidr> nets = {*parse_cidr("10.0.0.0/8"), *parse_cidr("fd00::/8")};
    EXPECT_TRUE(any_contains(nets, *parse_ip("fd12::1")));
    EXPECT_TRUE(any_contains(nets, *parse_ip("10.0.0.1")));
    EXPECT_FALSE(any_contains(nets, *parse_ip("192.168.0.1")));
    EXPECT_FALSE(any_contains({}, *parse_ip("10.0.0.1")));
}

// glibc's inet_pton follows the same grammar (verified: it rejects leading zeros, octal,
// short IPv4 forms and zone ids), so it serves as an independent oracle on random text.
TEST(parse_ip, agrees_with_inet_pton_on_random_text) {
    std::mt19937 rng(12345);
    const std::string alphabet = "0123456789abcdefABCDEF:.:::..0";
    int accepted = 0;
    for (int round = 0; round < 200000; ++round) {
        std::string text;
        const int len = static_cast<int>(rng() % 24);
        for (int i = 0; i < len; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
        std::uint8_t want[16];
        const bool has_colon = text.find(':') != std::string::npos;
        const int family = has_colon ? AF_INET6 : AF_INET;
        const bool libc_ok = inet_pton(family, text.c_str(), want) == 1;
        const auto ours = parse_ip(text);
        ASSERT_EQ(libc_ok, ours.has_value()) << '"' << text << '"';
        if (!ours) continue;
        ++accepted;
        ASSERT_EQ(std::memcmp(ours->bytes, want, has_colon ? 16 : 4), 0) << text;
        // The formatted form must be what inet_ntop prints... except glibc writes mapped and
        // compatible addresses its own way; it must at least parse back to the same bytes.
        const auto again = parse_ip(format_ip(*ours));
        ASSERT_TRUE(again) << text;
        ASSERT_EQ(std::memcmp(again->bytes, ours->bytes, 16), 0) << text;
    }
    EXPECT_GT(accepted, 100);  // the generator must actually hit valid addresses
}

TEST(format_ip, matches_inet_ntop_for_plain_ipv6) {
    std::mt19937 rng(7);
    for (int round = 0; round < 50000; ++round) {
        ip_address addr;
        addr.v6 = true;
        // Mostly-zero groups so zero runs of every length and position occur.
        for (int g = 0; g < 8; ++g) {
            const unsigned v = rng() % 3 == 0 ? rng() % 0x10000 : 0;
            addr.bytes[2 * g] = static_cast<std::uint8_t>(v >> 8);
            addr.bytes[2 * g + 1] = static_cast<std::uint8_t>(v);
        }
        char buf[INET6_ADDRSTRLEN];
        ASSERT_TRUE(inet_ntop(AF_INET6, addr.bytes, buf, sizeof buf));
        const std::string ntop = buf;
        if (ntop.find('.') != std::string::npos) continue;  // glibc's ::a.b.c.d forms
        ASSERT_EQ(format_ip(addr), ntop);
    }
}

}  // namespace
}  // namespace sentinel::net

namespace sentinel::net::detail {
namespace {

// min_remaining() must be exact, or the PROXY v1 parser would either wait on a hopeless line
// or reject a good one. Oracle: every string up to `max_len` over a small alphabet, with
// inet_pton deciding which are addresses; a string is a viable prefix within the budget iff
// one of those addresses starts with it.
TEST(ip_text_scanner, min_remaining_is_exact_on_small_alphabet) {
    constexpr std::size_t max_len = 10;
    const std::string alphabet = "01:.";
    std::vector<std::string> all{""};
    for (std::size_t i = 0; i < all.size(); ++i)
        if (all[i].size() < max_len)
            for (char c : alphabet) all.push_back(all[i] + c);
    for (const bool v6 : {false, true}) {
        std::unordered_set<std::string> viable;
        for (const auto& s : all) {
            std::uint8_t buf[16];
            if (inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), buf) != 1) continue;
            for (std::size_t n = 0; n <= s.size(); ++n) viable.insert(s.substr(0, n));
        }
        ASSERT_GT(viable.size(), 100u);
        for (const auto& s : all) {
            ip_text_scanner scanner(v6 ? ip_text_scanner::family::v6 : ip_text_scanner::family::v4);
            bool ok = true;
            for (char c : s) ok = ok && scanner.feed(c);
            const bool ours =
                ok && s.size() + static_cast<std::size_t>(scanner.min_remaining()) <= max_len;
            ASSERT_EQ(ours, viable.count(s) == 1) << (v6 ? "v6 " : "v4 ") << '"' << s << '"';
        }
    }
}

}  // namespace
}  // namespace sentinel::net::detail
