// Shared helpers: status mapping, case-insensitive compare, hop-by-hop rules, validators.
#include <gtest/gtest.h>

#include "http/http1/message.hpp"

namespace sentinel::http1 {
namespace {

TEST(Http1Message, StatusOfEveryError) {
    EXPECT_EQ(status_of(parse_error::bad_request), 400);
    EXPECT_EQ(status_of(parse_error::uri_too_long), 414);
    EXPECT_EQ(status_of(parse_error::headers_too_large), 431);
    EXPECT_EQ(status_of(parse_error::not_implemented), 501);
    EXPECT_EQ(status_of(parse_error::version_not_supported), 505);
    EXPECT_EQ(status_of(parse_error::bad_response), 502);
}

TEST(Http1Message, Iequals) {
    EXPECT_TRUE(iequals("Content-Length", "content-length"));
    EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
    EXPECT_FALSE(iequals("a", "b"));
    EXPECT_FALSE(iequals("@", "`"));  // only letters fold
    EXPECT_FALSE(iequals("[", "{"));
}

TEST(Http1Message, HopByHop) {
    for (std::string_view n : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                               "transfer-encoding", "Upgrade", "Proxy-Authenticate",
                               "proxy-authorization"})
        EXPECT_TRUE(is_hop_by_hop(n)) << n;
    EXPECT_FALSE(is_hop_by_hop("Host"));
    EXPECT_FALSE(is_hop_by_hop("Trailers"));
}

TEST(Http1Message, NamedInConnection) {
    const std::vector<header> h = {{"Host", "x"}, {"Connection", "keep-alive, X-Secret ,y"},
                                   {"connection", "Z"}};
    EXPECT_TRUE(named_in_connection(h, "x-secret"));
    EXPECT_TRUE(named_in_connection(h, "y"));
    EXPECT_TRUE(named_in_connection(h, "z"));
    EXPECT_FALSE(named_in_connection(h, "host"));
    EXPECT_FALSE(named_in_connection(h, "x"));
}

TEST(Http1Message, Validators) {
    EXPECT_TRUE(is_token("X-Forwarded-For"));
    EXPECT_FALSE(is_token(""));
    EXPECT_FALSE(is_token("a b"));
    EXPECT_FALSE(is_token("a:"));
    EXPECT_TRUE(is_field_value("a b\tc"));
    EXPECT_TRUE(is_field_value(""));
    EXPECT_FALSE(is_field_value("a\r\nX-Injected: 1"));
    EXPECT_FALSE(is_field_value(" a"));
    EXPECT_FALSE(is_field_value(std::string_view("a\0", 2)));
}

TEST(Http1Message, ClearResetsEverything) {
    request_head r;
    r.method = "GET";
    r.keep_alive = false;
    r.framing = body_framing::chunked;
    r.headers.push_back({"a", "b"});
    r.clear();
    EXPECT_TRUE(r.method.empty());
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.framing, body_framing::none);
    EXPECT_TRUE(r.headers.empty());
    EXPECT_GE(r.headers.capacity(), 1u);
}

}  // namespace
}  // namespace sentinel::http1
