#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "config/values.hpp"

namespace sentinel::config {
namespace {

TEST(Duration, ParsesEveryUnit) {
    EXPECT_EQ(parse_duration("250ms"), duration(250));
    EXPECT_EQ(parse_duration("30s"), duration(30'000));
    EXPECT_EQ(parse_duration("5m"), duration(300'000));
    EXPECT_EQ(parse_duration("1h"), duration(3'600'000));
    EXPECT_EQ(parse_duration("0s"), duration(0));
}

TEST(Duration, RejectsNonCanonicalForms) {
    for (const char* bad : {"30", "s", "1.5s", "30 s", " 30s", "30S", "1h30m", "-1s", "+1s", "30sec", "",
                            "99999999999999999999ms", "9999999999999999h"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Size, ParsesEveryUnit) {
    EXPECT_EQ(parse_size("512B"), 512u);
    EXPECT_EQ(parse_size("8KiB"), 8u * 1024);
    EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
    EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
}

TEST(Size, RejectsOtherUnitsAndBareNumbers) {
    for (const char* bad : {"512", "10MB", "10mb", "1KB", "1.5MiB", "MiB", "1 KiB", "18446744073709551615GiB"})
        EXPECT_FALSE(parse_size(bad).has_value()) << bad;
}

TEST(Format, UsesLargestExactUnit) {
    EXPECT_EQ(format_duration(duration(90'000)), "90s");
    EXPECT_EQ(format_duration(duration(120'000)), "2m");
    EXPECT_EQ(format_duration(duration(250)), "250ms");
    EXPECT_EQ(format_size(32 * 1024), "32KiB");
    EXPECT_EQ(format_size(1000), "1000B");
}

TEST(Address, ParsesV4V6AndNames) {
    auto a = parse_socket_address("127.0.0.1:8080");
    ASSERT_TRUE(a.address);
    EXPECT_EQ(a.address->host, "127.0.0.1");
    EXPECT_EQ(a.address->port, 8080);
    EXPECT_EQ(a.kind, host_kind::ipv4);

    auto b = parse_socket_address("[::1]:9001");
    ASSERT_TRUE(b.address);
    EXPECT_EQ(b.address->host, "::1");
    EXPECT_EQ(b.address->text, "[::1]:9001");
    EXPECT_EQ(b.kind, host_kind::ipv6);

    auto c = parse_socket_address("backend.internal:80");
    ASSERT_TRUE(c.address);
    EXPECT_EQ(c.kind, host_kind::name);
}

TEST(Address, RejectsMalformed) {
    EXPECT_NE(parse_socket_address("::1:80").error.find("brackets"), std::string::npos);
    EXPECT_NE(parse_socket_address("127.0.0.1").error.find(":port"), std::string::npos);
    EXPECT_NE(parse_socket_address("1.2.3.4:65536").error.find("0 to 65535"), std::string::npos);
    EXPECT_NE(parse_socket_address("1.2.3:80").error.find("not an IPv4"), std::string::npos);
    EXPECT_FALSE(parse_socket_address("[::g]:80").address);
    EXPECT_FALSE(parse_socket_address("[::1]80").address);
    EXPECT_FALSE(parse_socket_address("a b:80").address);
    EXPECT_FALSE(parse_socket_address("host:").address);
    EXPECT_FALSE(parse_socket_address("host:080").address);
}

TEST(Cidr, ParsesAndChecksHostBits) {
    auto a = parse_cidr("10.0.0.0/8");
    ASSERT_TRUE(a.network);
    EXPECT_FALSE(a.network->v6);
    EXPECT_EQ(a.network->prefix_len, 8);
    EXPECT_EQ(a.network->bytes[0], 10);

    auto b = parse_cidr("::1/128");
    ASSERT_TRUE(b.network);
    EXPECT_TRUE(b.network->v6);
    EXPECT_EQ(b.network->bytes[15], 1);

    auto c = parse_cidr("10.0.0.1/8");
    EXPECT_FALSE(c.network);
    EXPECT_NE(c.error.find("\"10.0.0.0/8\""), std::string::npos) << c.error;

    EXPECT_FALSE(parse_cidr("10.0.0.0").network);
    EXPECT_FALSE(parse_cidr("10.0.0.0/33").network);
    EXPECT_FALSE(parse_cidr("nope/8").network);
}

TEST(Tokens, HeaderNamesAndValues) {
    EXPECT_TRUE(is_http_token("X-Env"));
    EXPECT_FALSE(is_http_token("X Env"));
    EXPECT_FALSE(is_http_token("X:Env"));
    EXPECT_FALSE(is_http_token(""));
    EXPECT_TRUE(is_header_value("a b\tc"));
    EXPECT_FALSE(is_header_value("a\r\nX-Injected: 1"));
}

TEST(DidYouMean, FindsCloseNamesOnly) {
    std::vector<std::string_view> keys{"host", "path", "path-prefix", "method"};
    EXPECT_EQ(closest_match("pathprefix", keys), "path-prefix");
    EXPECT_EQ(closest_match("hsot", keys), "host");  // transposition
    EXPECT_EQ(closest_match("Method", keys), "method");
    EXPECT_EQ(closest_match("banana", keys), "");
    EXPECT_EQ(edit_distance("round-robbin", "round-robin"), 1u);
}

}  // namespace
}  // namespace sentinel::config
