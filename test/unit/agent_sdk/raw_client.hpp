// A blocking proxy-side client for SDK tests: speaks frames through the protocol's own codec
// over a plain socket, so what is tested is the agent's behaviour on the wire.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agents/protocol/frame.hpp"
#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent_sdk::testing {

namespace v1 = sentinel::agent::v1;
namespace proto = sentinel::agent_protocol;

struct received_frame {
    proto::frame_header header;
    std::string payload;

    template <class Message>
    Message as() const {
        Message m;
        if (!proto::parse_message(payload, m)) throw std::runtime_error("unparseable payload");
        return m;
    }
};

class raw_client {
public:
    explicit raw_client(const std::string& unix_path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, unix_path.data(), unix_path.size());
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("connect " + unix_path + ": " + std::strerror(errno));
        arm_timeout();
    }
    explicit raw_client(std::uint16_t tcp_port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(tcp_port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error(std::string("connect tcp: ") + std::strerror(errno));
        arm_timeout();
    }
    ~raw_client() {
        if (fd_ >= 0) ::close(fd_);
    }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    void send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // the agent closed: the next read reports it
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    template <class Message>
    static void append(std::string& out, proto::frame_type type, std::uint32_t stream_id, const Message& m,
                       std::uint8_t flags = 0) {
        proto::append_message(out, type, flags, stream_id, m);
    }

    template <class Message>
    void send(proto::frame_type type, std::uint32_t stream_id, const Message& m, std::uint8_t flags = 0) {
        std::string out;
        append(out, type, stream_id, m, flags);
        send_raw(out);
    }

    // The next frame, or nullopt when the agent closed the connection. A read that blocks for
    // 10 s throws: it is the failsafe of a broken test, never a means of synchronisation.
    std::optional<received_frame> read_frame() {
        for (;;) {
            proto::frame_view f;
            std::size_t consumed = 0;
            const auto st = proto::decode_frame(buffer_, proto::sender::proxy, proto::max_frame_size_limit, f, consumed);
            if (st == proto::decode_status::ok) {
                received_frame out{f.header, std::string(f.payload)};
                buffer_.erase(0, consumed);
                return out;
            }
            if (st != proto::decode_status::need_more)
                throw std::runtime_error("agent sent a bad frame: " + std::string(proto::describe(st)));
            char chunk[65536];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) throw std::runtime_error("read timed out");
            if (n <= 0) return std::nullopt;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // True when the agent closed the connection without sending anything more.
    bool closed_by_agent() {
        try {
            return !read_frame().has_value();
        } catch (const std::exception&) {
            return false;
        }
    }

    received_frame expect_frame() {
        auto f = read_frame();
        if (!f) throw std::runtime_error("the agent closed the connection");
        return *f;
    }

    v1::HelloAck handshake(const v1::Hello& hello) {
        send(proto::frame_type::hello, 0, hello);
        const auto f = expect_frame();
        if (f.header.type != proto::frame_type::hello_ack) throw std::runtime_error("expected HELLO_ACK");
        return f.as<v1::HelloAck>();
    }
    v1::HelloAck handshake() {
        v1::Hello hello;
        hello.add_versions(1);
        hello.set_proxy_name("sentinel");
        hello.mutable_config()->set_name("config");
        return handshake(hello);
    }

    // PING with `nonce` and wait for its PONG: everything sent before it has been processed.
    // Returns every frame that arrived before the PONG.
    std::vector<received_frame> sync(std::uint64_t nonce) {
        v1::Ping ping;
        ping.set_nonce(nonce);
        send(proto::frame_type::ping, 0, ping);
        std::vector<received_frame> before;
        for (;;) {
            auto f = expect_frame();
            if (f.header.type == proto::frame_type::pong && f.as<v1::Ping>().nonce() == nonce) return before;
            before.push_back(std::move(f));
        }
    }

    int fd() const { return fd_; }

private:
    void arm_timeout() {
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    int fd_ = -1;
    std::string buffer_;
};

}  // namespace sentinel::agent_sdk::testing
