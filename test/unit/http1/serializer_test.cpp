// Serializer output bytes, and that the parser reads back what the serializer wrote.
#include <gtest/gtest.h>

#include <string>

#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"

namespace sentinel::http1 {
namespace {

TEST(Http1Serializer, RequestBytes) {
    std::string out;
    append_request_line(out, "GET", "/a?b=c");
    append_header(out, "Host", "example.com");
    append_header(out, "X-Empty", "");
    append_head_end(out);
    EXPECT_EQ(out, "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\n\r\n");

    request_head h;
    const auto r = parse_request(out, {}, h);
    ASSERT_EQ(r.status, parse_status::done);
    EXPECT_EQ(r.consumed, out.size());
    EXPECT_EQ(h.path, "/a");
    EXPECT_EQ(h.host, "example.com");
    ASSERT_EQ(h.headers.size(), 2u);
    EXPECT_EQ(h.headers[1].value, "");
}

TEST(Http1Serializer, StatusLineBytes) {
    std::string out;
    append_status_line(out, 200);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\n");
    out.clear();
    append_status_line(out, 404, "Nope");
    EXPECT_EQ(out, "HTTP/1.1 404 Nope\r\n");
    out.clear();
    append_status_line(out, 799);
    EXPECT_EQ(out, "HTTP/1.1 799 Unknown\r\n");
}

TEST(Http1Serializer, ReasonPhrases) {
    EXPECT_EQ(reason_phrase(400), "Bad Request");
    EXPECT_EQ(reason_phrase(414), "URI Too Long");
    EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
    EXPECT_EQ(reason_phrase(501), "Not Implemented");
    EXPECT_EQ(reason_phrase(502), "Bad Gateway");
    EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
    EXPECT_EQ(reason_phrase(0), "Unknown");
}

TEST(Http1Serializer, ResponseRoundTrip) {
    std::string out;
    append_status_line(out, 201);
    append_header(out, "Content-Length", "2");
    append_head_end(out);
    out += "ok";
    response_head h;
    const auto r = parse_response(out, {}, "POST", h);
    ASSERT_EQ(r.status, parse_status::done);
    EXPECT_EQ(h.status, 201);
    EXPECT_EQ(h.reason, "Created");
    EXPECT_EQ(h.framing, body_framing::content_length);
    EXPECT_EQ(out.substr(r.consumed), "ok");
}

TEST(Http1Serializer, ReusedBufferDoesNotReallocate) {
    std::string out;
    out.reserve(256);
    const auto* data = out.data();
    for (int i = 0; i < 10; ++i) {
        out.clear();
        append_status_line(out, 200);
        append_header(out, "Content-Length", "0");
        append_head_end(out);
    }
    EXPECT_EQ(out.data(), data);
}

}  // namespace
}  // namespace sentinel::http1
