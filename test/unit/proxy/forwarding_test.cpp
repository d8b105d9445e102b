#include "proxy/forwarding.hpp"

#include <gtest/gtest.h>

#include "http/http1/parser.hpp"

namespace sentinel::proxy {
namespace {

struct parsed {
    std::string bytes;
    http1::request_head head;
    explicit parsed(std::string b) : bytes(std::move(b)) {
        const auto outcome = http1::parse_request(bytes, {}, head);
        EXPECT_EQ(outcome.status, http1::parse_status::done);
    }
};

std::string upstream_head(const std::string& request, const config::route_config& route,
                          bool trusted = false) {
    parsed p(request);
    std::string out;
    build_upstream_head(out, p.head, route, {"rid", "10.0.0.9", trusted, "http", upgrade_kind::none, {}, {}});
    return out;
}

TEST(Forwarding, DropsHopByHopAndConnectionNamedFields) {
    config::route_config route;
    const auto out = upstream_head(
        "GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Keep: 2\r\n\r\n",
        route);
    EXPECT_EQ(out.find("X-Secret"), std::string::npos) << out;
    EXPECT_EQ(out.find("Keep-Alive"), std::string::npos) << out;
    EXPECT_EQ(out.find("TE:"), std::string::npos) << out;
    EXPECT_EQ(out.find("Upgrade"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Keep: 2\r\n"), std::string::npos) << out;
    EXPECT_TRUE(out.starts_with("GET /a HTTP/1.1\r\nHost: h\r\n")) << out;
}

TEST(Forwarding, ForwardedForReplacedForUntrustedPeer) {
    config::route_config route;
    const auto out = upstream_head("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n"
                                   "X-Forwarded-Proto: https\r\n\r\n", route);
    EXPECT_NE(out.find("X-Forwarded-For: 10.0.0.9\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("6.6.6.6"), std::string::npos) << out;
}

TEST(Forwarding, ForwardedForAppendedForTrustedPeer) {
    config::route_config route;
    const auto out = upstream_head("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
                                   "X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Proto: https\r\n\r\n",
                                   route, true);
    EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos) << out;
}

TEST(Forwarding, RouteHeaderOperations) {
    config::route_config route;
    route.request_headers.set = {{"X-Env", "prod"}};
    route.request_headers.add = {{"X-Add", "1"}};
    route.request_headers.remove = {"x-debug"};
    const auto out = upstream_head("GET / HTTP/1.1\r\nHost: h\r\nX-Env: dev\r\nX-Debug: on\r\nX-Add: 0\r\n\r\n", route);
    EXPECT_EQ(out.find("X-Env: dev"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Env: prod\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("X-Debug"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Add: 0\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Add: 1\r\n"), std::string::npos) << out;
}

TEST(Forwarding, FramingIsRederived) {
    config::route_config route;
    const auto chunked = upstream_head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", route);
    EXPECT_NE(chunked.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << chunked;
    const auto length = upstream_head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", route);
    EXPECT_NE(length.find("Content-Length: 5\r\n"), std::string::npos) << length;
    EXPECT_EQ(length.find("Expect"), std::string::npos) << length;
}

TEST(Forwarding, AbsoluteFormBecomesOriginForm) {
    config::route_config route;
    const auto out = upstream_head("GET http://h/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", route);
    EXPECT_TRUE(out.starts_with("GET /p?q=1 HTTP/1.1\r\n")) << out;
    EXPECT_NE(out.find("Host: h\r\n"), std::string::npos) << out;
}

TEST(Forwarding, Http10WithoutHostGetsTheEndpointAsHost) {
    parsed p("GET /a HTTP/1.0\r\n\r\n");
    std::string out;
    forward_context ctx{"rid", "10.0.0.9", false, "http", upgrade_kind::none, {}, {}};
    ctx.default_host = "127.0.0.1:9000";
    build_upstream_head(out, p.head, config::route_config{}, ctx);
    EXPECT_TRUE(out.starts_with("GET /a HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n")) << out;
}

TEST(Forwarding, NormalisedPathReplacesTarget) {
    parsed p("GET /public/../admin?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    std::string out;
    forward_context ctx{"rid", "10.0.0.9", false, "http", upgrade_kind::none, {}, {}};
    ctx.path = "/admin";
    build_upstream_head(out, p.head, config::route_config{}, ctx);
    EXPECT_TRUE(out.starts_with("GET /admin?x=1 HTTP/1.1\r\n")) << out;
}

TEST(Forwarding, DownstreamHeadSetsRequestIdAndFraming) {
    std::string bytes = "HTTP/1.1 200 OK\r\nX-Request-Id: upstream\r\nContent-Length: 3\r\nConnection: close\r\nX-A: 1\r\n\r\n";
    http1::response_head head;
    ASSERT_EQ(http1::parse_response(bytes, {}, "GET", head).status, http1::parse_status::done);
    config::route_config route;
    route.response_headers.set = {{"X-Served-By", "sentinel"}};
    std::string out;
    response_framing framing;
    framing.content_length = true;
    framing.length = 3;
    build_downstream_head(out, head, route, "rid", framing);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-Request-Id: rid\r\nX-Served-By: sentinel\r\nContent-Length: 3\r\n\r\n");
}

// Which upgrades cross the proxy: WebSocket only through `websocket`, other protocols only
// through `allow-upgrade`, h2c never, and nothing without Connection: upgrade on HTTP/1.1.
TEST(Forwarding, RelayedUpgradeByRoute) {
    config::route_config plain, upgrades, websockets, both;
    upgrades.allow_upgrade = true;
    websockets.websocket.enabled = true;
    both.allow_upgrade = true;
    both.websocket.enabled = true;
    const auto kind = [](const std::string& upgrade, const config::route_config& route,
                         std::string_view connection = "Upgrade", std::string_view version = "1.1") {
        parsed p("GET / HTTP/" + std::string(version) + "\r\nHost: h\r\nConnection: " + std::string(connection) +
                 "\r\nUpgrade: " + upgrade + "\r\n\r\n");
        return relayed_upgrade(p.head, route);
    };
    EXPECT_EQ(kind("websocket", plain), upgrade_kind::none);
    EXPECT_EQ(kind("websocket", upgrades), upgrade_kind::none);  // allow-upgrade is not enough
    EXPECT_EQ(kind("websocket", websockets), upgrade_kind::websocket);
    EXPECT_EQ(kind("WebSocket", both), upgrade_kind::websocket);
    EXPECT_EQ(kind("foo/1, websocket", websockets), upgrade_kind::websocket);
    EXPECT_EQ(kind("foo/1", websockets), upgrade_kind::none);
    EXPECT_EQ(kind("foo/1", upgrades), upgrade_kind::other);
    EXPECT_EQ(kind("foo/1", both), upgrade_kind::other);
    EXPECT_EQ(kind("h2c", both), upgrade_kind::none);
    EXPECT_EQ(kind("H2C", upgrades), upgrade_kind::none);
    EXPECT_EQ(kind("foo/1", upgrades, "keep-alive"), upgrade_kind::none);  // Connection must name it
    EXPECT_EQ(kind("websocket", websockets, "keep-alive"), upgrade_kind::none);
}

TEST(Forwarding, WebSocketUpgradeSentAsWebsocketOnly) {
    parsed p("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
             "Upgrade: WebSocket, h2c\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n");
    std::string out;
    forward_context ctx{"rid", "10.0.0.9", false, "http", upgrade_kind::websocket, {}, {}};
    build_upstream_head(out, p.head, config::route_config{}, ctx);
    EXPECT_NE(out.find("\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("h2c"), std::string::npos) << out;
    EXPECT_EQ(out.find("keep-alive"), std::string::npos) << out;
    EXPECT_NE(out.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace sentinel::proxy
