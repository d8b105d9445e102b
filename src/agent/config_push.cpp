#include "agent/config_push.hpp"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agents/protocol/frame.hpp"
#include "common/version.hpp"

namespace sentinel::agent {

namespace proto = sentinel::agent_protocol;

namespace {

void to_value(const kdl::value& in, v1::ConfigValue& out) {
    switch (in.type) {
    case kdl::value::kind::string: out.set_string(in.text); break;
    case kdl::value::kind::integer:
        if (in.integer) out.set_integer(*in.integer);
        else out.set_number(std::strtod(in.text.c_str(), nullptr));
        break;
    case kdl::value::kind::decimal: out.set_number(in.decimal); break;
    case kdl::value::kind::boolean: out.set_boolean(in.boolean); break;
    case kdl::value::kind::null: out.set_null(true); break;
    }
    if (in.annotation) out.set_type_annotation(*in.annotation);
}

void to_node(const kdl::node& in, const std::string& path, v1::ConfigNode& out, config_tree& tree) {
    out.set_name(in.name);
    out.set_path(path);
    tree.positions[path] = in.pos;
    for (const auto& a : in.arguments) to_value(a, *out.add_args());
    for (const auto& p : in.properties) to_value(p.val, (*out.mutable_props())[p.name]);  // right-most wins
    std::unordered_map<std::string, int> seen;
    for (const auto& c : in.children) {
        const int i = seen[c.name]++;
        to_node(c, path + "." + c.name + "[" + std::to_string(i) + "]", *out.add_children(), tree);
    }
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

}  // namespace

config_tree make_config_tree(const config::agent_config& agent) {
    config_tree tree;
    const std::string root_path = "agents.agent[" + agent.id + "].config";
    if (agent.block) {
        to_node(*agent.block, root_path, tree.root, tree);
    } else {
        tree.root.set_name("config");
        tree.root.set_path(root_path);
    }
    return tree;
}

v1::Hello make_hello(const config::agent_config& agent, const config_tree& tree, std::uint32_t worker) {
    v1::Hello h;
    h.add_versions(proto::protocol_version);
    h.set_proxy_name("sentinel");
    h.set_proxy_version(std::string(sentinel::version));
    h.set_agent_id(agent.id);
    *h.mutable_config() = tree.root;
    h.set_max_frame_size(proto::default_max_frame_size);
    h.set_worker(worker);
    return h;
}

std::vector<std::string> describe_config_errors(const config::agent_config& agent, const config_tree& tree,
                                                const google::protobuf::RepeatedPtrField<v1::ConfigError>& errors) {
    std::vector<std::string> out;
    for (const auto& e : errors) {
        // Unknown paths (or no block at all) point at the block, else at the agent itself.
        kdl::position pos = agent.block ? agent.block->pos : agent.pos;
        if (auto it = tree.positions.find(e.path()); it != tree.positions.end()) pos = it->second;
        const std::string& file = agent.block ? agent.block_file : agent.file;
        out.push_back(file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": agent \"" +
                      agent.id + "\" rejected its config: " + e.message());
    }
    return out;
}

std::string resolve_target(const std::string& socket, std::string& error) {
    if (!socket.starts_with("tcp://")) return socket;
    const std::string hp = socket.substr(6);
    const auto colon = hp.rfind(':');
    std::string host = hp.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') return socket;  // an IPv6 literal
    in_addr v4{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return socket;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int g = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); g != 0 || res == nullptr) {
        error = "cannot resolve " + host + ": " + ::gai_strerror(g);
        return socket;
    }
    char text[INET6_ADDRSTRLEN] = {};
    std::string out;
    if (res->ai_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, text, sizeof text);
        out = "tcp://[" + std::string(text) + "]:" + hp.substr(colon + 1);
    } else {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof text);
        out = "tcp://" + std::string(text) + ":" + hp.substr(colon + 1);
    }
    ::freeaddrinfo(res);
    return out;
}

int connect_blocking(const std::string& socket, std::chrono::milliseconds timeout, std::string& error) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int fd = -1;
    int rc = -1;
    if (socket.starts_with("tcp://")) {
        const std::string hp = socket.substr(6);
        const auto colon = hp.rfind(':');
        std::string host = hp.substr(0, colon);
        if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (const int g = ::getaddrinfo(host.c_str(), hp.substr(colon + 1).c_str(), &hints, &res); g != 0) {
            error = std::string("cannot resolve ") + host + ": " + ::gai_strerror(g);
            return -1;
        }
        fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0) rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
        ::freeaddrinfo(res);
    } else {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, socket.data(), std::min(socket.size(), sizeof sa.sun_path - 1));
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0) rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    if (rc != 0 && errno == EINPROGRESS) {
        if (!wait_fd(fd, POLLOUT, deadline)) {
            error = "connect timed out";
            ::close(fd);
            return -1;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        rc = err == 0 ? 0 : -1;
    }
    if (rc != 0) {
        error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

validation validate_config(const config::agent_config& agent, std::chrono::milliseconds timeout) {
    validation result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int fd = connect_blocking(agent.socket, timeout, result.failure);
    if (fd < 0) return result;
    const config_tree tree = make_config_tree(agent);
    v1::Hello hello = make_hello(agent, tree, 0);
    hello.set_validate_only(true);
    std::string out;
    proto::append_message(out, proto::frame_type::hello, 0, 0, hello);
    std::size_t sent = 0;
    while (sent < out.size()) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(fd, POLLOUT, deadline)) break;
        } else {
            break;
        }
    }
    std::string in;
    for (;;) {
        if (sent < out.size()) {
            result.failure = "could not send HELLO";
            break;
        }
        proto::frame_view frame;
        std::size_t used = 0;
        const auto st = proto::decode_frame(in, proto::sender::proxy, proto::default_max_frame_size, frame, used);
        if (st == proto::decode_status::ok) {
            v1::HelloAck ack;
            if (frame.header.type != proto::frame_type::hello_ack || !proto::parse_message(frame.payload, ack)) {
                result.failure = "the agent did not answer HELLO with HELLO_ACK";
            } else if (ack.version() != proto::protocol_version && ack.config_errors_size() == 0) {
                result.failure = "the agent chose protocol version " + std::to_string(ack.version());
            } else {
                result.reached = true;
                result.errors = describe_config_errors(agent, tree, ack.config_errors());
            }
            break;
        }
        if (st != proto::decode_status::need_more) {
            result.failure = std::string("bad frame from the agent: ") + std::string(proto::describe(st));
            break;
        }
        if (!wait_fd(fd, POLLIN, deadline)) {
            result.failure = "no HELLO_ACK within " + std::to_string(timeout.count()) + "ms";
            break;
        }
        char buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            in.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            result.failure = "the agent closed the connection during the handshake";
            break;
        }
    }
    ::close(fd);
    return result;
}

}  // namespace sentinel::agent
