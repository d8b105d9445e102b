#include "agents/sdk/cpp/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agents/sdk/cpp/connection.hpp"
#include "agents/sdk/cpp/log.hpp"

namespace sentinel::agent_sdk {

namespace asio = boost::asio;
using generic_protocol = asio::generic::stream_protocol;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string errno_text(int e) { return std::strerror(e); }

// A socket file left by a crashed agent makes bind fail with EADDRINUSE; one a live agent still
// listens on must not be stolen (two agents on one path would split the proxy's connections).
bool clear_stale_socket(const std::string& path, std::string& error) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return true;
        error = path + ": " + errno_text(errno);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error = path + " exists and is not a socket; not replacing it";
        return false;
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = "socket: " + errno_text(errno);
        return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int e = errno;
    ::close(fd);
    if (rc == 0 || e == EAGAIN) {  // EAGAIN: alive, with a full backlog
        error = "another process is listening on " + path;
        return false;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        error = "cannot remove the stale socket " + path + ": " + errno_text(errno);
        return false;
    }
    return true;
}

}  // namespace

struct server::impl {
    struct listener {
        explicit listener(asio::io_context& io) : acceptor(io) {}
        asio::basic_socket_acceptor<generic_protocol> acceptor;
        bool tcp = false;
        std::string unix_path;  // removed at shutdown if it is still our file
        dev_t dev = 0;
        ino_t ino = 0;
    };

    impl(server_options options, handler_factory make_handler)
        : core(std::move(options), std::move(make_handler)), drain_timer(core.io), retry_timer(core.io) {
        core.health.set_status(v1::Health::HEALTHY);
        core.connection_closed = [this](std::uint64_t id) { connections.erase(id); };
        core.stream_ended = [this] {
            if (draining && core.open_streams == 0) drain_timer.cancel();
        };
    }

    bool listen(std::string_view address, std::string& error);
    asio::awaitable<void> accept_loop(listener& l);
    void begin_shutdown();
    asio::awaitable<void> drain_and_stop();
    asio::awaitable<void> signal_loop();
    void stop_now();

    // Declared first, destroyed last: every object below is bound to core.io.
    server_core core;
    std::vector<std::unique_ptr<listener>> listeners;
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
    std::uint64_t next_connection_id = 1;
    bool draining = false;
    bool stopped = false;
    asio::steady_timer drain_timer;
    asio::steady_timer retry_timer;
    std::optional<asio::signal_set> signals;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::vector<std::shared_ptr<void>> attached;
};

bool server::impl::listen(std::string_view address, std::string& error) {
    auto l = std::make_unique<listener>(core.io);
    boost::system::error_code ec;
    if (address.starts_with("tcp://")) {
        const std::string_view rest = address.substr(6);
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon + 1 == rest.size()) {
            error = "expected tcp://host:port, got " + std::string(address);
            return false;
        }
        std::string host(rest.substr(0, colon));
        const std::string port(rest.substr(colon + 1));
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        asio::ip::tcp::resolver resolver(core.io);
        const auto results = resolver.resolve(host, port, asio::ip::tcp::resolver::passive |
                                                              asio::ip::tcp::resolver::numeric_service, ec);
        if (ec || results.empty()) {
            error = "cannot resolve " + std::string(address) + ": " + ec.message();
            return false;
        }
        const generic_protocol::endpoint ep(results.begin()->endpoint());
        l->tcp = true;
        l->acceptor.open(ep.protocol(), ec);
        if (!ec) l->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) l->acceptor.bind(ep, ec);
        if (!ec) l->acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = std::string(address) + ": " + ec.message();
            return false;
        }
    } else {
        std::string path(address);
        if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
            error = "unix socket path must be 1-" + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                    " bytes: \"" + path + "\"";
            return false;
        }
        if (!clear_stale_socket(path, error)) return false;
        const generic_protocol::endpoint ep{asio::local::stream_protocol::endpoint(path)};
        l->acceptor.open(ep.protocol(), ec);
        if (!ec) l->acceptor.bind(ep, ec);
        if (ec) {
            error = path + ": " + ec.message();
            return false;
        }
        // Only the proxy's group may connect: an agent's decisions are trusted by the proxy.
        struct stat st{};
        if (::chmod(path.c_str(), 0660) != 0 || ::stat(path.c_str(), &st) != 0) {
            error = path + ": " + errno_text(errno);
            ::unlink(path.c_str());
            return false;
        }
        l->unix_path = path;
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        l->acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = path + ": " + ec.message();
            ::unlink(path.c_str());
            return false;
        }
    }
    listener& ref = *l;
    listeners.push_back(std::move(l));
    asio::co_spawn(core.io, accept_loop(ref), asio::detached);
    return true;
}

asio::awaitable<void> server::impl::accept_loop(listener& l) {
    for (;;) {
        auto [ec, socket] = co_await l.acceptor.async_accept(use_tuple);
        if (draining || !l.acceptor.is_open()) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // EMFILE and friends persist until something closes: pause instead of spinning.
            log_line("accept: " + ec.message());
            retry_timer.expires_after(std::chrono::milliseconds(100));
            co_await retry_timer.async_wait(use_tuple);
            continue;
        }
        if (connections.size() >= core.options.max_connections) {
            log_line("refusing a connection: " + std::to_string(connections.size()) + " open (max_connections)");
            continue;  // `socket` closes as it goes out of scope
        }
        if (l.tcp) {
            // Frames are small and answered one by one: Nagle would add a delay per decision.
            const int one = 1;
            ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        const std::uint64_t id = next_connection_id++;
        auto c = std::make_shared<connection>(core, std::move(socket), id);
        connections.emplace(id, c);
        c->start();
    }
}

void server::impl::begin_shutdown() {
    if (stopped) return;
    if (draining) {
        log_line("second stop signal: closing open streams now");
        stop_now();
        return;
    }
    draining = true;
    for (auto& l : listeners) {
        boost::system::error_code ignored;
        l->acceptor.close(ignored);
        // Remove the path only if it is still ours: a new instance may already have replaced it.
        struct stat st{};
        if (!l->unix_path.empty() && ::lstat(l->unix_path.c_str(), &st) == 0 && st.st_dev == l->dev &&
            st.st_ino == l->ino)
            ::unlink(l->unix_path.c_str());
    }
    // Copied: drain() closes connections that have no handshake yet, which erases them.
    std::vector<std::shared_ptr<connection>> all;
    for (auto& [id, c] : connections) all.push_back(c);
    for (auto& c : all) c->drain("agent shutting down");
    log_line("draining: " + std::to_string(core.open_streams.load()) + " open streams on " +
             std::to_string(connections.size()) + " connections");
    asio::co_spawn(core.io, drain_and_stop(), asio::detached);
}

asio::awaitable<void> server::impl::drain_and_stop() {
    const auto deadline = asio::steady_timer::clock_type::now() + core.options.drain_timeout;
    while (!stopped && core.open_streams > 0 && asio::steady_timer::clock_type::now() < deadline) {
        drain_timer.expires_at(deadline);
        co_await drain_timer.async_wait(use_tuple);  // cancelled when the last stream ends
    }
    if (stopped) co_return;
    if (core.open_streams > 0)
        log_line("drain timeout: closing " + std::to_string(core.open_streams.load()) + " open streams");
    stop_now();
}

asio::awaitable<void> server::impl::signal_loop() {
    for (;;) {
        auto [ec, signo] = co_await signals->async_wait(use_tuple);
        if (ec) co_return;
        log_line(std::string("received ") + (signo == SIGINT ? "SIGINT" : "SIGTERM"));
        begin_shutdown();
    }
}

void server::impl::stop_now() {
    if (stopped) return;
    stopped = true;
    std::vector<std::shared_ptr<connection>> all;
    for (auto& [id, c] : connections) all.push_back(c);
    for (auto& c : all) c->close();
    if (signals) {
        boost::system::error_code ignored;
        signals->cancel(ignored);
    }
    work.reset();
    // The agent's own timers (reload polls) would keep run() going otherwise.
    core.io.stop();
}

server::server(server_options options, handler_factory make_handler)
    : impl_(std::make_unique<impl>(std::move(options), std::move(make_handler))) {
    auto& o = impl_->core.options;
    if (o.max_frame_size == 0) o.max_frame_size = agent_protocol::default_max_frame_size;
    o.max_frame_size = std::min(o.max_frame_size, agent_protocol::max_frame_size_limit);
    if (o.max_streams_per_connection == 0) o.max_streams_per_connection = 1;
}

server::~server() {
    // Worker threads may still post completions to the io_context: join them first.
    if (impl_->core.pool) impl_->core.pool->join();
    impl_->connections.clear();
}

bool server::listen(std::string_view address, std::string& error) { return impl_->listen(address, error); }

int server::run() {
    auto& i = *impl_;
    // A proxy that disappears mid-write must not kill the agent.
    std::signal(SIGPIPE, SIG_IGN);
    if (i.core.options.worker_threads > 0 && !i.core.pool)
        i.core.pool = std::make_unique<asio::thread_pool>(i.core.options.worker_threads);
    i.work.emplace(i.core.io.get_executor());
    if (i.core.options.handle_signals) {
        i.signals.emplace(i.core.io, SIGINT, SIGTERM);
        asio::co_spawn(i.core.io, i.signal_loop(), asio::detached);
    }
    i.core.io.run();
    if (i.core.pool) i.core.pool->join();
    return 0;
}

void server::shutdown() {
    asio::post(impl_->core.io, [i = impl_.get()] { i->begin_shutdown(); });
}

void server::report_health(v1::Health::Status status, std::string message) {
    asio::post(impl_->core.io, [i = impl_.get(), status, message = std::move(message)]() mutable {
        i->core.health.set_status(status);
        i->core.health.set_message(std::move(message));
        for (auto& [id, c] : i->connections) c->send_health(i->core.health);
    });
}

asio::io_context& server::io_context() { return impl_->core.io; }

void server::attach(std::shared_ptr<void> object) { impl_->attached.push_back(std::move(object)); }

server_stats server::stats() const {
    const auto& c = impl_->core;
    return {c.connections.load(), c.open_streams.load(), c.protocol_errors.load(), c.dropped_decisions.load()};
}

std::string server::bound_address() const {
    if (impl_->listeners.empty()) return {};
    const auto& l = *impl_->listeners.front();
    if (!l.tcp) return l.unix_path;
    boost::system::error_code ec;
    const auto ep = l.acceptor.local_endpoint(ec);
    if (ec) return {};
    const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
    char host[INET6_ADDRSTRLEN] = {};
    std::uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        return "tcp://" + std::string(host) + ":" + std::to_string(port);
    }
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "tcp://[" + std::string(host) + "]:" + std::to_string(port);
}

std::uint16_t server::tcp_port() const {
    for (const auto& l : impl_->listeners) {
        if (!l->tcp) continue;
        boost::system::error_code ec;
        const auto ep = l->acceptor.local_endpoint(ec);
        if (ec) return 0;
        const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
        if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
        if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    }
    return 0;
}

}  // namespace sentinel::agent_sdk
