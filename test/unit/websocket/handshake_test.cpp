// The opening handshake checks (RFC 6455 §4): accept-value computation against the RFC's own
// example, key validation, every way a client request is refused, and the checks on an
// upstream's 101.
#include <gtest/gtest.h>

#include <string>

#include "http/http1/parser.hpp"
#include "http/websocket/handshake.hpp"

namespace sentinel::websocket {
namespace {

constexpr std::string_view sample_key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3
constexpr std::string_view sample_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct request {
    std::string bytes;
    http1::request_head head;
    explicit request(std::string b) : bytes(std::move(b)) {
        EXPECT_EQ(http1::parse_request(bytes, {}, head).status, http1::parse_status::done) << bytes;
    }
};

// A valid handshake with one field replaced (`name` empty: none) or removed (`value` empty).
std::string handshake(std::string_view name = {}, std::string_view value = {},
                      std::string_view request_line = "GET /chat HTTP/1.1") {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"Host", "server.example.com"},
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Key", std::string(sample_key)},
        {"Sec-WebSocket-Version", "13"},
    };
    std::string out(request_line);
    out += "\r\n";
    for (const auto& [n, v] : fields) {
        if (n == name) {
            if (!value.empty()) out.append(n).append(": ").append(value).append("\r\n");
            continue;
        }
        out.append(n).append(": ").append(v).append("\r\n");
    }
    return out + "\r\n";
}

request_problem check(const std::string& bytes) {
    request r(bytes);
    std::string_view key;
    return check_request(r.head, key);
}

TEST(WebsocketHandshake, AcceptValueOfTheRfcExample) {
    const accept_value a = compute_accept(sample_key);
    EXPECT_EQ(std::string_view(a.data(), a.size()), sample_accept);
}

TEST(WebsocketHandshake, KeyMustBeCanonicalBase64OfSixteenBytes) {
    EXPECT_TRUE(valid_key(sample_key));
    EXPECT_TRUE(valid_key("AAAAAAAAAAAAAAAAAAAAAA=="));
    EXPECT_TRUE(valid_key("+/+/+/+/+/+/+/+/+/+/+w=="));
    EXPECT_FALSE(valid_key(""));
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25jZQ"));     // padding missing
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25jZQ=="
                           "AAAA"));                          // 19 bytes
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25j"));       // 15 bytes, unpadded
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25jZQ=A"));   // padding in the wrong place
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25jZ-=="));   // URL-safe alphabet is not base64
    EXPECT_FALSE(valid_key("dGhlIHNhbXBsZSBub25jZR=="));   // non-zero padding bits
    EXPECT_FALSE(valid_key("YWJjZGVmZ2hpamtsbW5vcHE="));   // 17 bytes
}

TEST(WebsocketHandshake, RecognisesTheUpgradeToken) {
    EXPECT_TRUE(requests_websocket(request(handshake()).head.headers));
    EXPECT_TRUE(requests_websocket(request(handshake("Upgrade", "WebSocket")).head.headers));
    EXPECT_TRUE(requests_websocket(request(handshake("Upgrade", "foo/2, websocket")).head.headers));
    EXPECT_FALSE(requests_websocket(request(handshake("Upgrade", "websockets")).head.headers));
    EXPECT_FALSE(requests_websocket(request(handshake("Upgrade", "h2c")).head.headers));
    EXPECT_FALSE(requests_websocket(request(handshake("Upgrade", "")).head.headers));
}

TEST(WebsocketHandshake, ValidRequestGivesItsKey) {
    request r(handshake());
    std::string_view key;
    EXPECT_EQ(check_request(r.head, key), request_problem::ok);
    EXPECT_EQ(key, sample_key);
    EXPECT_EQ(check(handshake("Connection", "keep-alive, Upgrade")), request_problem::ok);
}

TEST(WebsocketHandshake, EveryRefusal) {
    EXPECT_EQ(check(handshake({}, {}, "POST /chat HTTP/1.1")), request_problem::method);
    EXPECT_EQ(check(handshake({}, {}, "HEAD /chat HTTP/1.1")), request_problem::method);
    EXPECT_EQ(check(handshake({}, {}, "GET /chat HTTP/1.0")), request_problem::http_version);
    EXPECT_EQ(check(handshake("Connection", "")), request_problem::connection);
    EXPECT_EQ(check(handshake("Connection", "keep-alive")), request_problem::connection);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Key", "")), request_problem::key);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Key", "c2hvcnQ=")), request_problem::key);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), request_problem::key);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "")), request_problem::version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "thirteen")), request_problem::version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "013")), request_problem::version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "256")), request_problem::version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "13, 8")), request_problem::version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "8")), request_problem::unsupported_version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "255")), request_problem::unsupported_version);
    EXPECT_EQ(check(handshake("Sec-WebSocket-Version", "0")), request_problem::unsupported_version);
}

TEST(WebsocketHandshake, RepeatedKeyOrVersionIsRefused) {
    std::string twice = handshake();
    twice.insert(twice.size() - 2, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n");
    EXPECT_EQ(check(twice), request_problem::key);
    twice = handshake();
    twice.insert(twice.size() - 2, "Sec-WebSocket-Version: 13\r\n");
    EXPECT_EQ(check(twice), request_problem::version);
}

response_problem check_101(const std::string& fields) {
    const std::string bytes = "HTTP/1.1 101 Switching Protocols\r\n" + fields + "\r\n";
    http1::response_head head;
    EXPECT_EQ(http1::parse_response(bytes, {}, "GET", head).status, http1::parse_status::done) << bytes;
    return check_response(head, sample_accept);
}

TEST(WebsocketHandshake, UpstreamResponseChecks) {
    const std::string accept = "Sec-WebSocket-Accept: " + std::string(sample_accept) + "\r\n";
    EXPECT_EQ(check_101("Upgrade: websocket\r\nConnection: Upgrade\r\n" + accept), response_problem::ok);
    EXPECT_EQ(check_101("Upgrade: WebSocket\r\nConnection: upgrade\r\n" + accept), response_problem::ok);
    EXPECT_EQ(check_101("Connection: Upgrade\r\n" + accept), response_problem::upgrade);
    EXPECT_EQ(check_101("Upgrade: foo\r\nConnection: Upgrade\r\n" + accept), response_problem::upgrade);
    EXPECT_EQ(check_101("Upgrade: websocket\r\n" + accept), response_problem::connection);
    EXPECT_EQ(check_101("Upgrade: websocket\r\nConnection: Upgrade\r\n"), response_problem::accept);
    EXPECT_EQ(check_101("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"),
              response_problem::accept);
    EXPECT_EQ(check_101("Upgrade: websocket\r\nConnection: Upgrade\r\n" + accept + accept), response_problem::accept);
}

}  // namespace
}  // namespace sentinel::websocket
