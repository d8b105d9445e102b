// Request-head parser: one test per rejection rule (exact parse_error and status), the
// happy paths, and prefix invariance (a valid head never errors on any prefix).
#include <gtest/gtest.h>

#include <string>

#include "http/http1/parser.hpp"

namespace sentinel::http1 {
namespace {

struct result {
    parse_outcome outcome;
    request_head head;
};

result parse(std::string_view s, const limits& lim = {}) {
    result r;
    r.outcome = parse_request(s, lim, r.head);
    return r;
}

// Asserts `s` is rejected with `e`, and that `e` maps to `status`.
void expect_rejected(std::string_view s, parse_error e, int status) {
    const auto r = parse(s);
    EXPECT_EQ(r.outcome.status, parse_status::error) << s;
    EXPECT_EQ(r.outcome.error, e) << s;
    EXPECT_EQ(status_of(r.outcome.error), status) << s;
}
void expect_400(std::string_view s) { expect_rejected(s, parse_error::bad_request, 400); }

std::string_view header_value(const request_head& h, std::string_view name) {
    for (const auto& f : h.headers)
        if (iequals(f.name, name)) return f.value;
    return "<absent>";
}

// ---- happy paths ----

TEST(Http1Request, SimpleGet) {
    const std::string in = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    const auto r = parse(in);
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.outcome.consumed, in.size());
    EXPECT_EQ(r.head.method, "GET");
    EXPECT_EQ(r.head.target, "/a/b?x=1&y=2");
    EXPECT_EQ(r.head.path, "/a/b");
    EXPECT_EQ(r.head.query, "x=1&y=2");
    EXPECT_EQ(r.head.host, "example.com");
    EXPECT_EQ(r.head.version_minor, 1);
    ASSERT_EQ(r.head.headers.size(), 2u);
    EXPECT_EQ(r.head.headers[1].name, "Accept");
    EXPECT_EQ(r.head.headers[1].value, "*/*");
    EXPECT_EQ(r.head.framing, body_framing::none);
    EXPECT_TRUE(r.head.keep_alive);
    EXPECT_FALSE(r.head.expect_continue);
    EXPECT_FALSE(r.head.has_upgrade);
    EXPECT_FALSE(r.head.absolute_form);
}

TEST(Http1Request, ViewsPointIntoInput) {
    const std::string in = "GET /p HTTP/1.1\r\nHost: h\r\nX-A:  v v \t\r\n\r\n";
    const auto r = parse(in);
    ASSERT_EQ(r.outcome.status, parse_status::done);
    const auto inside = [&](std::string_view v) {
        return v.data() >= in.data() && v.data() + v.size() <= in.data() + in.size();
    };
    EXPECT_TRUE(inside(r.head.method));
    EXPECT_TRUE(inside(r.head.target));
    EXPECT_TRUE(inside(r.head.path));
    EXPECT_TRUE(inside(r.head.host));
    for (const auto& h : r.head.headers) {
        EXPECT_TRUE(inside(h.name));
        EXPECT_TRUE(inside(h.value));
    }
    EXPECT_EQ(header_value(r.head, "x-a"), "v v");  // OWS trimmed, inner SP kept
}

TEST(Http1Request, ConsumedStopsAtHeadEndAndLeavesBody) {
    const std::string head = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    const std::string in = head + "hello" + "GET /next";
    const auto r = parse(in);
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.outcome.consumed, head.size());
    EXPECT_EQ(r.head.framing, body_framing::content_length);
    EXPECT_EQ(r.head.content_length, 5u);
}

TEST(Http1Request, ContentLengthZeroIsNoBody) {
    const auto r = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.framing, body_framing::none);
    EXPECT_EQ(r.head.content_length, 0u);
}

TEST(Http1Request, ChunkedFraming) {
    const auto r = parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.framing, body_framing::chunked);
}

TEST(Http1Request, Http10DefaultsToClose) {
    auto r = parse("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.version_minor, 0);
    EXPECT_FALSE(r.head.keep_alive);
    EXPECT_EQ(r.head.host, "");
    r = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_TRUE(r.head.keep_alive);
}

TEST(Http1Request, ConnectionCloseDisablesKeepAlive) {
    const auto r = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_FALSE(r.head.keep_alive);
}

TEST(Http1Request, ExpectContinue) {
    auto r = parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_TRUE(r.head.expect_continue);
    // Unknown expectations are ignored (documented), not rejected.
    r = parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_FALSE(r.head.expect_continue);
}

TEST(Http1Request, UpgradeNeedsConnectionUpgrade) {
    auto r = parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_TRUE(r.head.has_upgrade);
    r = parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_FALSE(r.head.has_upgrade);
    r = parse("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_FALSE(r.head.has_upgrade);
}

TEST(Http1Request, AbsoluteFormAgreeingWithHost) {
    auto r = parse("GET http://Example.com:8080/x?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_TRUE(r.head.absolute_form);
    EXPECT_EQ(r.head.host, "Example.com:8080");
    EXPECT_EQ(r.head.path, "/x");
    EXPECT_EQ(r.head.query, "q");
    r = parse("GET https://a HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.path, "/");
}

TEST(Http1Request, ConnectAuthorityForm) {
    const auto r = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.target, "example.com:443");
    EXPECT_EQ(r.head.host, "example.com:443");
    EXPECT_EQ(r.head.path, "");
    expect_400("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");  // port required
    expect_400("CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n");
}

TEST(Http1Request, OptionsStar) {
    const auto r = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.path, "*");
    expect_400("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(Http1Request, Ipv6Host) {
    const auto r = parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.host, "[::1]:8080");
}

TEST(Http1Request, LeadingEmptyLinesSkipped) {
    const std::string in = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const auto r = parse(in);
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.outcome.consumed, in.size());
    expect_400("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");  // five is too many
    expect_400("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(Http1Request, HeaderVectorKeepsCapacity) {
    request_head h;
    const std::string in = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    ASSERT_EQ(parse_request(in, {}, h).status, parse_status::done);
    const auto cap = h.headers.capacity();
    const auto* ptr = h.headers.data();
    ASSERT_EQ(parse_request(in, {}, h).status, parse_status::done);
    EXPECT_EQ(h.headers.capacity(), cap);
    EXPECT_EQ(h.headers.data(), ptr);
}

TEST(Http1Request, EveryPrefixNeedsMore) {
    const std::string in =
        "\r\nPOST /a?b HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";
    for (std::size_t n = 0; n < in.size(); ++n) {
        const auto r = parse(std::string_view(in).substr(0, n));
        EXPECT_EQ(r.outcome.status, parse_status::need_more) << n;
    }
    EXPECT_EQ(parse(in).outcome.status, parse_status::done);
}

// ---- 400: framing ----

TEST(Http1RequestReject, ContentLengthAndTransferEncoding) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
}
TEST(Http1RequestReject, DuplicateEqualContentLength) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
}
TEST(Http1RequestReject, ContentLengthList) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n");
}
TEST(Http1RequestReject, NonNumericContentLength) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3a\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n");
}
TEST(Http1RequestReject, OverflowingContentLength) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    const auto r = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n");
    ASSERT_EQ(r.outcome.status, parse_status::done);
    EXPECT_EQ(r.head.content_length, 9223372036854775807u);
}
TEST(Http1RequestReject, ChunkedTwice) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
}
TEST(Http1RequestReject, ChunkedWithParameters) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n");
}
TEST(Http1RequestReject, EmptyOrMalformedTransferEncoding) {
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n");
    expect_400("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n");
}
TEST(Http1RequestReject, TransferEncodingOnHttp10) {
    expect_400("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
}

// ---- 501 ----

TEST(Http1RequestReject, UnknownTransferCodingIsNotImplemented) {
    expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                    parse_error::not_implemented, 501);
    expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
                    parse_error::not_implemented, 501);
    expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                    parse_error::not_implemented, 501);
    expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
                    parse_error::not_implemented, 501);
}

// ---- 400: field syntax ----

TEST(Http1RequestReject, ObsFold) {
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
}
TEST(Http1RequestReject, WhitespaceBeforeColon) {
    expect_400("GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 1\r\n\r\n");
}
TEST(Http1RequestReject, InvalidHeaderNameCharacter) {
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: 1\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n");
}
TEST(Http1RequestReject, EmptyHeaderName) {
    expect_400("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n");
}
TEST(Http1RequestReject, InvalidMethodCharacter) {
    expect_400("G(T / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n");
}
TEST(Http1RequestReject, ControlCharactersInValue) {
    expect_400(std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 33));
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f" "b\r\n\r\n");
    // HTAB and obs-text are field-content.
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\xff\r\n\r\n").outcome.status,
              parse_status::done);
}
TEST(Http1RequestReject, ControlCharactersAnywhereInLongValue) {
    // Long values are checked eight bytes at a time: probe every offset of a word.
    for (std::size_t at = 0; at < 25; ++at) {
        for (char bad : {'\x00', '\x01', '\n', '\r', '\x1f', '\x7f'}) {
            std::string value(25, 'v');
            value[at] = bad;
            const std::string in = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "\r\n\r\n";
            EXPECT_EQ(parse(in).outcome.error, parse_error::bad_request) << at << " " << int(bad);
        }
        for (char good : {'\t', ' ', '~', '\x80', '\xff'}) {
            std::string value(25, 'v');
            value[at] = good;
            const std::string in = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "\r\n\r\n";
            EXPECT_EQ(parse(in).outcome.status, parse_status::done) << at << " " << int(good);
        }
    }
}
TEST(Http1RequestReject, BareLineEndings) {
    expect_400("GET / HTTP/1.1\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\n\n");
    expect_400("GET / HTTP/1.1\rHost: h\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n");
}

// ---- 400: request line ----

TEST(Http1RequestReject, Http09) { expect_400("GET /\r\n\r\n"); }
TEST(Http1RequestReject, MalformedVersion) {
    expect_400("GET / HTTP/1.1x\r\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/01.1\r\nHost: h\r\n\r\n");
    expect_400("GET / http/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/1.10\r\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/1\r\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/1.1 \r\nHost: h\r\n\r\n");
}
TEST(Http1RequestReject, TargetBytesOutsideRfc3986) {
    for (std::string_view bad : {"\x80", "\xff", "\"", "<", ">", "\\", "^", "`", "{", "|", "}",
                                 "\x01", "\x7f", "#"}) {
        expect_400("GET /a" + std::string(bad) + "b HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    expect_400("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n");  // broken escape in the path
    expect_400("GET /a% HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(parse("GET /a%2Fb?q=100% HTTP/1.1\r\nHost: h\r\n\r\n").outcome.status,
              parse_status::done);
}
TEST(Http1RequestReject, MultipleSpacesInRequestLine) {
    expect_400("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET /  HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET / a HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n");
}
TEST(Http1RequestReject, NonOriginTargetForms) {
    expect_400("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_400("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n");  // userinfo
    expect_400("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n");     // empty authority
}

// ---- 400: Host ----

TEST(Http1RequestReject, MissingHostOnHttp11) { expect_400("GET / HTTP/1.1\r\n\r\n"); }
TEST(Http1RequestReject, SeveralHostHeaders) {
    expect_400("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n");
    expect_400("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
}
TEST(Http1RequestReject, InvalidHostValue) {
    for (std::string_view bad : {"", "a b", "a,b", "a@b", "a:", "a:x", "a:65536", "a:123456",
                                 "[::1", "[zz]", "a/b", ":80"}) {
        expect_400("GET / HTTP/1.1\r\nHost: " + std::string(bad) + "\r\n\r\n");
    }
}
TEST(Http1RequestReject, AbsoluteFormConflictsWithHost) {
    expect_400("GET http://a/b HTTP/1.1\r\nHost: b\r\n\r\n");
    expect_400("GET http://a:81/b HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_400("GET http://a/b HTTP/1.1\r\n\r\n");  // Host still required on HTTP/1.1
}

// ---- 505 ----

TEST(Http1RequestReject, Http2OrLaterNotSupported) {
    for (std::string_view v : {"HTTP/2.0", "HTTP/3.0", "HTTP/1.2", "HTTP/1.9", "HTTP/9.9"}) {
        expect_rejected("GET / " + std::string(v) + "\r\nHost: h\r\n\r\n",
                        parse_error::version_not_supported, 505);
    }
    // The HTTP/2 connection preface on an HTTP/1 port.
    expect_rejected("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", parse_error::version_not_supported, 505);
}

// ---- 414 / 431 ----

TEST(Http1RequestReject, RequestLineTooLong) {
    limits lim;
    lim.max_request_line = 64;
    const std::string line = "GET /" + std::string(60, 'a') + " HTTP/1.1";
    ASSERT_GT(line.size(), 64u);
    request_head h;
    auto r = parse_request(line + "\r\nHost: h\r\n\r\n", lim, h);
    EXPECT_EQ(r.error, parse_error::uri_too_long);
    EXPECT_EQ(status_of(r.error), 414);
    // Detected before the CRLF arrives.
    r = parse_request(std::string_view(line).substr(0, 65), lim, h);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::uri_too_long);
    r = parse_request(std::string_view(line).substr(0, 64), lim, h);
    EXPECT_EQ(r.status, parse_status::need_more);
    // Exactly at the limit is fine.
    const std::string exact = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
    ASSERT_EQ(exact.size(), 64u);
    EXPECT_EQ(parse_request(exact + "\r\nHost: h\r\n\r\n", lim, h).status, parse_status::done);
    EXPECT_EQ(parse_request(exact + "\r", lim, h).status, parse_status::need_more);
}

TEST(Http1RequestReject, HeadTooLarge) {
    limits lim;
    lim.max_header_bytes = 128;
    const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(200, 'v');
    request_head h;
    // Partial input over the limit is rejected without waiting for the end of the head.
    auto r = parse_request(head, lim, h);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::headers_too_large);
    EXPECT_EQ(status_of(r.error), 431);
    r = parse_request(head + "\r\n\r\n", lim, h);
    EXPECT_EQ(r.error, parse_error::headers_too_large);
    // A head of exactly max_header_bytes passes; one more byte does not.
    std::string exact = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    exact += std::string(128 - exact.size() - 4, 'v') + "\r\n\r\n";
    ASSERT_EQ(exact.size(), 128u);
    EXPECT_EQ(parse_request(exact, lim, h).status, parse_status::done);
    const std::string over = exact.substr(0, exact.size() - 4) + "v\r\n\r\n";
    EXPECT_EQ(parse_request(over, lim, h).error, parse_error::headers_too_large);
}

TEST(Http1RequestReject, TooManyHeaders) {
    limits lim;
    lim.max_headers = 3;
    request_head h;
    EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", lim, h).status,
              parse_status::done);
    const auto r = parse_request("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim, h);
    EXPECT_EQ(r.error, parse_error::headers_too_large);
    EXPECT_EQ(status_of(r.error), 431);
}

TEST(Http1RequestReject, BinaryGarbageRejectedBeforeLineEnd) {
    // A TLS ClientHello on a plain port: answered at once, not after max_request_line bytes.
    const auto r = parse(std::string_view("\x16\x03\x01\x02\x00\x01", 6));
    EXPECT_EQ(r.outcome.status, parse_status::error);
    EXPECT_EQ(r.outcome.error, parse_error::bad_request);
}

}  // namespace
}  // namespace sentinel::http1
