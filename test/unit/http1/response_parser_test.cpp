// Response-head parser: framing decisions per RFC 9112 §6.3 and rejection as bad_response.
#include <gtest/gtest.h>

#include <string>

#include "http/http1/parser.hpp"

namespace sentinel::http1 {
namespace {

struct result {
    parse_outcome outcome;
    response_head head;
};

result parse(std::string_view s, std::string_view method = "GET", const limits& lim = {}) {
    result r;
    r.outcome = parse_response(s, lim, method, r.head);
    return r;
}

void expect_bad(std::string_view s, std::string_view method = "GET") {
    const auto r = parse(s, method);
    EXPECT_EQ(r.outcome.status, parse_status::error) << s;
    EXPECT_EQ(r.outcome.error, parse_error::bad_response) << s;
    EXPECT_EQ(status_of(r.outcome.error), 502);
}

TEST(Http1Response, ContentLength) {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n";
    const std::string in = head + "hello";  // the views point into `in`: keep it alive
    const auto r = parse(in);
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.outcome.consumed, head.size());
    EXPECT_EQ(r.head.status, 200);
    EXPECT_EQ(r.head.reason, "OK");
    EXPECT_EQ(r.head.version_minor, 1);
    EXPECT_EQ(r.head.framing, body_framing::content_length);
    EXPECT_EQ(r.head.content_length, 5u);
    EXPECT_TRUE(r.head.keep_alive);
    ASSERT_EQ(r.head.headers.size(), 2u);
}

TEST(Http1Response, Chunked) {
    const auto r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.framing, body_framing::chunked);
}

TEST(Http1Response, UntilCloseWithoutFraming) {
    const auto r = parse("HTTP/1.1 200 OK\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.framing, body_framing::until_close);
    EXPECT_FALSE(r.head.keep_alive);
}

TEST(Http1Response, NoBodyStatusesAndHead) {
    for (std::string_view s : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching\r\n\r\n",
                               "HTTP/1.1 204 No Content\r\n\r\n",
                               "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"}) {
        const auto r = parse(s);
        ASSERT_EQ(r.outcome.status, parse_status::done) << s;
        EXPECT_EQ(r.head.framing, body_framing::none) << s;
        EXPECT_TRUE(r.head.keep_alive) << s;
    }
    const auto r = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.framing, body_framing::none);
    EXPECT_EQ(r.head.content_length, 10u);  // still reported for the client's HEAD answer
    const auto c = parse("HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT");
    ASSERT_EQ(c.outcome.status, parse_status::done);
    EXPECT_EQ(c.head.framing, body_framing::none);
    const auto d = parse("HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", "CONNECT");
    ASSERT_EQ(d.outcome.status, parse_status::done);
    EXPECT_EQ(d.head.framing, body_framing::content_length);
}

TEST(Http1Response, KeepAliveRules) {
    auto r = parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_FALSE(r.head.keep_alive);
    r = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.version_minor, 0);
    EXPECT_FALSE(r.head.keep_alive);
    r = parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_TRUE(r.head.keep_alive);
}

TEST(Http1Response, StatusLineWithoutReason) {
    auto r = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.status, 200);
    EXPECT_EQ(r.head.reason, "");
    r = parse("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.status, 599);
}

TEST(Http1Response, EqualDuplicateContentLengthTolerated) {
    const auto r = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.content_length, 3u);
}

TEST(Http1Response, EveryPrefixNeedsMore) {
    const std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n";
    for (std::size_t n = 0; n < in.size(); ++n)
        EXPECT_EQ(parse(std::string_view(in).substr(0, n)).outcome.status, parse_status::need_more)
            << n;
}

TEST(Http1ResponseReject, ConflictingFraming) {
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n");
    expect_bad("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    // Conflicts are conflicts even where the body would be ignored.
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
               "HEAD");
}

TEST(Http1ResponseReject, InvalidStatusLine) {
    expect_bad("HTTP/1.1 20 OK\r\n\r\n");
    expect_bad("HTTP/1.1 2000 OK\r\n\r\n");
    expect_bad("HTTP/1.1 099 OK\r\n\r\n");
    expect_bad("HTTP/1.1 abc OK\r\n\r\n");
    expect_bad("HTTP/1.1  200 OK\r\n\r\n");
    expect_bad("HTTP/2.0 200 OK\r\n\r\n");
    expect_bad("http/1.1 200 OK\r\n\r\n");
    expect_bad("HTTP/1.1 200 O\x01K\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\n\r\n");
    expect_bad("ICY 200 OK\r\n\r\n");
    expect_bad("HTTP/1.1\r\n\r\n");
}

TEST(Http1ResponseReject, FieldSyntax) {
    expect_bad("HTTP/1.1 200 OK\r\nA : b\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nA: b\n\r\n");
}

TEST(Http1ResponseReject, GarbageRejectedEarly) {
    expect_bad("<html>");  // an upstream that skips the status line
}

TEST(Http1ResponseReject, LimitsGive502) {
    limits lim;
    lim.max_header_bytes = 64;
    const auto r = parse("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n", "GET", lim);
    EXPECT_EQ(r.outcome.error, parse_error::bad_response);
}

}  // namespace
}  // namespace sentinel::http1
