// request_builder, response_translator and websocket_key: HTTP/2 fields to an HTTP/1.1 head,
// an HTTP/1.1 response (fed whole or in pieces) to HTTP/2 events.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "http/h2/translate.hpp"

namespace sentinel::h2 {
namespace {

using fields_t = std::vector<std::pair<std::string, std::string>>;

// ---- request_builder ----------------------------------------------------------------------

struct built {
    bool ok = false;
    std::string head;
    request_builder::body_kind body = request_builder::body_kind::none;
    std::string trailers;
};

built build(const fields_t& fields, bool end_stream, std::string_view key = {}) {
    request_builder b;
    for (const auto& [n, v] : fields) EXPECT_EQ(b.add(n, v), request_builder::field_status::ok) << n;
    built r;
    r.ok = b.build(end_stream, key, r.head);
    r.body = b.body();
    return r;
}

TEST(RequestBuilder, GetWithAuthorityBecomesHost) {
    const auto r = build({{":method", "GET"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/a/b?c=d"},
                          {"accept", "*/*"},
                          {"user-agent", "t/1"}},
                         true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head,
              "GET /a/b?c=d HTTP/1.1\r\n"
              "host: example.com\r\n"
              "accept: */*\r\n"
              "user-agent: t/1\r\n"
              "\r\n");
    EXPECT_EQ(r.body, request_builder::body_kind::none);
}

TEST(RequestBuilder, HostFieldWithoutAuthority) {
    const auto r = build({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.example:8080"}}, true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head, "GET / HTTP/1.1\r\nhost: h.example:8080\r\n\r\n");
}

TEST(RequestBuilder, NoHostAtAllHasNoHostLine) {
    const auto r = build({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}, true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head, "GET / HTTP/1.1\r\n\r\n");
}

TEST(RequestBuilder, CookieCrumbsJoined) {
    const auto r = build({{":method", "GET"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/"},
                          {"cookie", "a=1"},
                          {"x-mid", "m"},
                          {"cookie", "b=2"},
                          {"cookie", "c=3"}},
                         true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head,
              "GET / HTTP/1.1\r\nhost: example.com\r\nx-mid: m\r\ncookie: a=1; b=2; c=3\r\n\r\n");
}

TEST(RequestBuilder, HostAuthorityMismatchIsMalformed) {
    const auto r = build(
        {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"}, {":path", "/"}, {"host", "b.example"}},
        true);
    EXPECT_FALSE(r.ok);
}

TEST(RequestBuilder, HostAgreeingWithAuthorityIsOneHostLine) {
    const auto r = build(
        {{":method", "GET"}, {":scheme", "https"}, {":authority", "A.Example"}, {":path", "/"}, {"host", "a.example"}},
        true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head, "GET / HTTP/1.1\r\nhost: A.Example\r\n\r\n");
}

TEST(RequestBuilder, RepeatedHostIsMalformed) {
    request_builder b;
    EXPECT_EQ(b.add("host", "a"), request_builder::field_status::ok);
    EXPECT_EQ(b.add("host", "a"), request_builder::field_status::malformed);
}

TEST(RequestBuilder, ContentLengthBodyAsIs) {
    const auto r = build({{":method", "POST"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/up"},
                          {"content-length", "12"}},
                         false);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.body, request_builder::body_kind::content_length);
    EXPECT_EQ(r.head, "POST /up HTTP/1.1\r\nhost: example.com\r\ncontent-length: 12\r\n\r\n");
}

TEST(RequestBuilder, UnknownLengthBodyIsChunked) {
    const auto r = build({{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}},
                         false);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.body, request_builder::body_kind::chunked);
    EXPECT_EQ(r.head, "POST /up HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
}

TEST(RequestBuilder, EndStreamMeansNoBodyEvenWithContentLength) {
    const auto r = build({{":method", "POST"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/"},
                          {"content-length", "0"}},
                         true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.body, request_builder::body_kind::none);
    EXPECT_EQ(r.head.find("transfer-encoding"), std::string::npos);
}

TEST(RequestBuilder, ExtendedConnectWebSocketBecomesUpgrade) {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    const auto r = build({{":method", "CONNECT"},
                          {":protocol", "websocket"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/chat?room=1"},
                          {"sec-websocket-version", "13"},
                          {"origin", "https://example.com"}},
                         false, key);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.body, request_builder::body_kind::tunnel);
    EXPECT_EQ(r.head,
              "GET /chat?room=1 HTTP/1.1\r\n"
              "host: example.com\r\n"
              "connection: upgrade\r\n"
              "upgrade: websocket\r\n"
              "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "sec-websocket-version: 13\r\n"
              "origin: https://example.com\r\n"
              "\r\n");
}

TEST(RequestBuilder, ExtendedConnectProtocolCaseInsensitive) {
    request_builder b;
    b.add(":method", "CONNECT");
    b.add(":protocol", "WebSocket");
    b.add(":scheme", "https");
    b.add(":authority", "e.x");
    b.add(":path", "/");
    EXPECT_TRUE(b.extended_connect());
    std::string out;
    EXPECT_TRUE(b.build(false, "AAAAAAAAAAAAAAAAAAAAAA==", out));
    EXPECT_EQ(out.rfind("GET / HTTP/1.1\r\n", 0), 0u);
}

TEST(RequestBuilder, ExtendedConnectOtherProtocolRefused) {
    const auto r = build({{":method", "CONNECT"},
                          {":protocol", "connect-udp"},
                          {":scheme", "https"},
                          {":authority", "example.com"},
                          {":path", "/.well-known/masque/udp/x/443/"}},
                         false, "AAAAAAAAAAAAAAAAAAAAAA==");
    EXPECT_FALSE(r.ok);
}

TEST(RequestBuilder, ClassicConnect) {
    const auto r = build({{":method", "CONNECT"}, {":authority", "origin.example:443"}}, false);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.body, request_builder::body_kind::none);
    EXPECT_EQ(r.head, "CONNECT origin.example:443 HTTP/1.1\r\nhost: origin.example:443\r\n\r\n");
}

TEST(RequestBuilder, TeDropped) {
    const auto r = build(
        {{":method", "GET"}, {":scheme", "https"}, {":authority", "e.x"}, {":path", "/"}, {"te", "trailers"}, {"a", "b"}},
        true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.head, "GET / HTTP/1.1\r\nhost: e.x\r\na: b\r\n\r\n");
}

TEST(RequestBuilder, Trailers) {
    request_builder b;
    b.add(":method", "POST");
    b.add(":scheme", "https");
    b.add(":authority", "e.x");
    b.add(":path", "/");
    std::string head;
    ASSERT_TRUE(b.build(false, {}, head));
    EXPECT_EQ(b.body(), request_builder::body_kind::chunked);
    b.add_trailer("x-checksum", "abc");
    b.add_trailer(":ignored", "pseudo");
    b.add_trailer("grpc-status", "0");
    EXPECT_EQ(b.trailers(), "x-checksum: abc\r\ngrpc-status: 0\r\n");
    EXPECT_EQ(b.method(), "POST");
}

// ---- response_translator ------------------------------------------------------------------

struct event {
    response_translator::status st;
    int code = 0;
    fields_t fields;
};

struct outcome {
    std::vector<event> events;  // informational / head / error, in order
    std::string body;
};

// Feeds `bytes` the way server_session::write() does: again while a head came out.
void drive(response_translator& t, std::string_view bytes, outcome& o) {
    for (;;) {
        const auto st = t.feed(bytes, o.body);
        if (st == response_translator::status::error) {
            o.events.push_back({st, 0, {}});
            return;
        }
        if (st != response_translator::status::need_more) {
            event e{st, t.status_code(), {}};
            for (const auto& f : t.fields()) e.fields.emplace_back(std::string(f.name), std::string(f.value));
            o.events.push_back(std::move(e));
        }
        if (st == response_translator::status::need_more && bytes.empty()) return;
    }
}

outcome translate(std::string_view bytes, std::string_view method = "GET", bool tunnel = false,
                  response_translator* keep = nullptr) {
    response_translator local;
    auto& t = keep ? *keep : local;
    t.start(method, tunnel);
    outcome o;
    drive(t, bytes, o);
    return o;
}

TEST(ResponseTranslator, ContentLengthBody) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "GET",
                             false, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].st, response_translator::status::head);
    EXPECT_EQ(o.events[0].code, 200);
    EXPECT_EQ(o.events[0].fields, (fields_t{{"content-length", "5"}, {"content-type", "text/plain"}}));
    EXPECT_EQ(o.body, "hello");
    EXPECT_TRUE(t.head_done());
    EXPECT_TRUE(t.body_expected());
    EXPECT_TRUE(t.complete());
    EXPECT_TRUE(t.finish());
}

TEST(ResponseTranslator, ChunkedTrailersAreKeptWholeOrByteByByte) {
    const std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0;ext=1\r\nGrpc-Status: 0\r\nX-Sum:  5 \r\nContent-Length: 9\r\nConnection: x\r\n\r\n";
    for (const bool split : {false, true}) {
        response_translator t;
        t.start("POST", false);
        outcome o;
        if (split) {
            for (char c : wire) drive(t, std::string_view(&c, 1), o);
        } else {
            drive(t, wire, o);
        }
        EXPECT_EQ(o.body, "hello") << split;
        ASSERT_TRUE(t.complete()) << split;
        fields_t trailers;
        for (const auto& f : t.trailers()) trailers.emplace_back(std::string(f.name), std::string(f.value));
        // Framing and connection fields never become HTTP/2 trailers.
        EXPECT_EQ(trailers, (fields_t{{"grpc-status", "0"}, {"x-sum", "5"}})) << split;
    }
}

TEST(ResponseTranslator, ChunkedWithoutTrailersHasNone) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "GET",
                             false, &t);
    EXPECT_EQ(o.body, "abc");
    EXPECT_TRUE(t.complete());
    EXPECT_TRUE(t.trailers().empty());
}

TEST(ResponseTranslator, BytesAfterCompleteResponseIgnored) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA", "GET", false, &t);
    EXPECT_EQ(o.body, "hi");
    EXPECT_TRUE(t.complete());
    outcome more;
    drive(t, "HTTP/1.1 200 OK\r\n\r\n", more);
    EXPECT_TRUE(more.events.empty());
    EXPECT_TRUE(more.body.empty());
}

TEST(ResponseTranslator, ChunkedBodyDechunked) {
    response_translator t;
    const auto o = translate(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
        "GET", false, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].fields, (fields_t{{"x-a", "1"}}));
    EXPECT_EQ(o.body, "hello, world");
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, ChunkedBodyInPieces) {
    response_translator t;
    t.start("GET", false);
    outcome o;
    const std::string all =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n";
    for (char c : all) {
        EXPECT_FALSE(t.complete());
        drive(t, std::string_view(&c, 1), o);
    }
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.body, "0123456789abc");
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, BadChunkIsError) {
    const auto o = translate("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    ASSERT_EQ(o.events.size(), 2u);
    EXPECT_EQ(o.events[1].st, response_translator::status::error);
}

TEST(ResponseTranslator, HeadResponseKeepsContentLengthWithoutBody) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", "HEAD", false, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].fields, (fields_t{{"content-length", "1234"}}));
    EXPECT_FALSE(t.body_expected());
    EXPECT_TRUE(t.complete());
    EXPECT_TRUE(o.body.empty());
    EXPECT_TRUE(t.finish());
}

TEST(ResponseTranslator, NoContent) {
    response_translator t;
    const auto o = translate("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", "DELETE", false, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].code, 204);
    EXPECT_FALSE(t.body_expected());
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, ContentLengthZero) {
    response_translator t;
    translate("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false, &t);
    EXPECT_FALSE(t.body_expected());
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, InformationalThenFinal) {
    response_translator t;
    const auto o = translate(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        "POST", false, &t);
    ASSERT_EQ(o.events.size(), 3u);
    EXPECT_EQ(o.events[0].st, response_translator::status::informational);
    EXPECT_EQ(o.events[0].code, 100);
    EXPECT_TRUE(o.events[0].fields.empty());
    EXPECT_EQ(o.events[1].st, response_translator::status::informational);
    EXPECT_EQ(o.events[1].code, 103);
    EXPECT_EQ(o.events[1].fields, (fields_t{{"link", "</s.css>; rel=preload"}}));
    EXPECT_EQ(o.events[2].st, response_translator::status::head);
    EXPECT_EQ(o.events[2].code, 201);
    EXPECT_EQ(o.body, "ok");
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, InformationalAloneIsNotAResponse) {
    response_translator t;
    translate("HTTP/1.1 100 Continue\r\n\r\n", "POST", false, &t);
    EXPECT_FALSE(t.head_done());
    EXPECT_FALSE(t.finish());
}

TEST(ResponseTranslator, SwitchingProtocolsOnTunnelBecomes200) {
    response_translator t;
    const auto o = translate(
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: chat\r\n"
        "\r\n"
        "\x81\x02hi",
        "CONNECT", true, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].st, response_translator::status::head);
    EXPECT_EQ(o.events[0].code, 200);
    EXPECT_EQ(t.status_code(), 200);
    EXPECT_EQ(o.events[0].fields, (fields_t{{"sec-websocket-protocol", "chat"}}));
    EXPECT_EQ(o.body, "\x81\x02hi");
    EXPECT_TRUE(t.body_expected());
    EXPECT_FALSE(t.complete());
    outcome more;
    drive(t, "tunnel bytes", more);
    EXPECT_EQ(more.body, "tunnel bytes");
    EXPECT_TRUE(t.finish());
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, SwitchingProtocolsWithoutTunnelIsError) {
    const auto o = translate("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].st, response_translator::status::error);
}

TEST(ResponseTranslator, TunnelRefusedWithErrorStatusKeepsBody) {
    response_translator t;
    const auto o = translate("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope", "CONNECT", true, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].code, 403);
    EXPECT_EQ(o.body, "nope");
    EXPECT_TRUE(t.complete());
}

// For an extended CONNECT the pipeline sent a GET upgrade: a 2xx that is not a 101 (the origin
// ignored the upgrade) keeps its body, and becomes 502, since any 2xx would tell an RFC 8441
// client its tunnel is open.
TEST(ResponseTranslator, TunnelAnsweredWith200Becomes502AndKeepsItsBody) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "CONNECT", true, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].code, 502);
    EXPECT_TRUE(t.body_expected());
    EXPECT_EQ(o.body, "hello");
}

TEST(ResponseTranslator, HopByHopAndConnectionNamedDroppedNamesLowercased) {
    const auto o = translate(
        "HTTP/1.1 200 OK\r\n"
        "Connection: keep-alive, X-Private\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: X-T\r\n"
        "Upgrade: h2c\r\n"
        "TE: trailers\r\n"
        "Proxy-Authenticate: Basic\r\n"
        "X-Private: secret\r\n"
        "X-Mixed-CASE: Value Case Kept\r\n"
        "Set-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\n"
        "\r\n"
        "0\r\n\r\n");
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].fields,
              (fields_t{{"x-mixed-case", "Value Case Kept"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}}));
}

TEST(ResponseTranslator, HeadSplitByteByByteEqualsWhole) {
    const std::string all =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 10\r\nX-Y: z\r\n\r\n0123456789";
    const auto whole = translate(all, "POST");
    response_translator t;
    t.start("POST", false);
    outcome pieces;
    for (char c : all) drive(t, std::string_view(&c, 1), pieces);
    ASSERT_EQ(whole.events.size(), 2u);
    ASSERT_EQ(pieces.events.size(), whole.events.size());
    for (std::size_t i = 0; i < whole.events.size(); ++i) {
        EXPECT_EQ(pieces.events[i].st, whole.events[i].st);
        EXPECT_EQ(pieces.events[i].code, whole.events[i].code);
        EXPECT_EQ(pieces.events[i].fields, whole.events[i].fields);
    }
    EXPECT_EQ(pieces.body, "0123456789");
    EXPECT_EQ(whole.body, "0123456789");
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, RandomSplitsEqualWhole) {
    const std::string all =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n"
        "4\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        response_translator t;
        t.start("GET", false);
        outcome o;
        std::size_t at = 0;
        while (at < all.size()) {
            const std::size_t n = std::min<std::size_t>(all.size() - at, 1 + rng() % 9);
            drive(t, std::string_view(all).substr(at, n), o);
            at += n;
        }
        ASSERT_EQ(o.events.size(), 1u);
        EXPECT_EQ(o.events[0].fields, (fields_t{{"a", "b"}}));
        EXPECT_EQ(o.body, "wikipedia in\r\n\r\nchunks.");
        EXPECT_TRUE(t.complete());
    }
}

TEST(ResponseTranslator, CloseDelimitedBodyCompletedByFinish) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome", "GET", false, &t);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_TRUE(t.body_expected());
    EXPECT_FALSE(t.complete());
    outcome more;
    drive(t, " more", more);
    EXPECT_EQ(o.body + more.body, "some more");
    EXPECT_FALSE(t.complete());
    EXPECT_TRUE(t.finish());
    EXPECT_TRUE(t.complete());
}

TEST(ResponseTranslator, IncompleteContentLengthBodyFinishFails) {
    response_translator t;
    const auto o = translate("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "GET", false, &t);
    EXPECT_EQ(o.body, "12345");
    EXPECT_FALSE(t.complete());
    EXPECT_FALSE(t.finish());
}

TEST(ResponseTranslator, IncompleteChunkedBodyFinishFails) {
    response_translator t;
    translate("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "GET", false, &t);
    EXPECT_FALSE(t.finish());
}

TEST(ResponseTranslator, NoHeadFinishFails) {
    response_translator t;
    t.start("GET", false);
    EXPECT_FALSE(t.finish());
    translate("HTTP/1.1 200 OK\r\nContent-Le", "GET", false, &t);
    EXPECT_FALSE(t.finish());
}

TEST(ResponseTranslator, MalformedHeadIsError) {
    EXPECT_EQ(translate("HTTP/1.1 2OO OK\r\n\r\n").events.at(0).st, response_translator::status::error);
    EXPECT_EQ(translate("garbage\r\n\r\n").events.at(0).st, response_translator::status::error);
    EXPECT_EQ(translate("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").events.at(0).st,
              response_translator::status::error);
    EXPECT_EQ(translate("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").events.at(0).st,
              response_translator::status::error);
}

TEST(ResponseTranslator, RunawayHeadIsError) {
    response_translator t;
    t.start("GET", false);
    outcome o;
    drive(t, "HTTP/1.1 200 OK\r\n", o);
    const std::string line = "X-Filler: " + std::string(1000, 'f') + "\r\n";
    for (int i = 0; i < 400 && o.events.empty(); ++i) drive(t, line, o);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].st, response_translator::status::error);
}

// ---- websocket_key ------------------------------------------------------------------------

std::string reference_base64(const std::array<std::uint8_t, 16>& in) {
    static constexpr char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::uint8_t b : in) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            out.push_back(abc[(acc >> (bits - 6)) & 63]);
            bits -= 6;
        }
    }
    if (bits > 0) out.push_back(abc[(acc << (6 - bits)) & 63]);
    while (out.size() % 4 != 0) out.push_back('=');
    return out;
}

TEST(WebSocketKey, Rfc6455SampleNonce) {
    std::array<std::uint8_t, 16> nonce{};
    const std::string_view sample = "the sample nonce";
    std::copy(sample.begin(), sample.end(), nonce.begin());
    EXPECT_EQ(websocket_key(nonce), "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(WebSocketKey, EdgesAndRandom) {
    std::array<std::uint8_t, 16> nonce{};
    EXPECT_EQ(websocket_key(nonce), "AAAAAAAAAAAAAAAAAAAAAA==");
    nonce.fill(0xff);
    EXPECT_EQ(websocket_key(nonce), "/////////////////////w==");
    std::mt19937 rng(42);
    for (int i = 0; i < 1000; ++i) {
        for (auto& b : nonce) b = static_cast<std::uint8_t>(rng());
        const auto key = websocket_key(nonce);
        ASSERT_EQ(key.size(), 24u);
        ASSERT_EQ(key, reference_base64(nonce));
    }
}

}  // namespace
}  // namespace sentinel::h2
