#include "proxy/acceptor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sys/socket.h>

#include "proxy/http1_connection.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;

namespace {
// Sent when a connection limit is reached: a defined answer instead of a silent reset.
constexpr std::string_view over_capacity =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 24\r\nConnection: close\r\nRetry-After: 1\r\n\r\n503 Service Unavailable\n";
}  // namespace

struct acceptor::impl : std::enable_shared_from_this<acceptor::impl> {
    impl(worker_context& w, int fd, std::string key)
        : worker(w), socket(w.io()), backoff(w.io()), listener_key(std::move(key)) {
        sockaddr_storage storage;
        socklen_t length = sizeof storage;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
        socket.assign(storage.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd);
    }

    asio::awaitable<void> loop() {
        auto self = shared_from_this();
        constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
        while (socket.is_open()) {
            auto [ec, conn_socket] = co_await socket.async_accept(use_tuple);
            if (ec == asio::error::operation_aborted || !socket.is_open()) co_return;
            if (ec) {
                // Out of descriptors or memory: back off briefly instead of spinning.
                backoff.expires_after(std::chrono::milliseconds(50));
                co_await backoff.async_wait(use_tuple);
                continue;
            }
            worker.metrics.connections_accepted.inc();
            // A draining worker (POST /drain) still serves new connections, one request
            // each; shutdown closes the listening socket itself, so nothing arrives then.
            if (!worker.admit()) {
                worker.metrics.connections_rejected_max.inc();
                worker.metrics.count_local(observability::local_reply_reason::max_connections);
                ::send(conn_socket.native_handle(), over_capacity.data(), over_capacity.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
                boost::system::error_code ignored;
                conn_socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                continue;  // closed when conn_socket goes out of scope
            }
            auto conn = std::make_shared<http1_connection>(worker, std::move(conn_socket), listener_key);
            asio::co_spawn(worker.io(), [conn]() { return conn->run(); }, asio::detached);
        }
    }

    worker_context& worker;
    asio::ip::tcp::acceptor socket;
    asio::steady_timer backoff;
    std::string listener_key;
};

acceptor::acceptor(worker_context& worker, int fd, std::string listener_key)
    : impl_(std::make_shared<impl>(worker, fd, std::move(listener_key))) {}

acceptor::~acceptor() { stop(); }

void acceptor::start() {
    auto i = impl_;
    asio::co_spawn(i->worker.io(), [i]() { return i->loop(); }, asio::detached);
}

void acceptor::stop() {
    boost::system::error_code ignored;
    impl_->socket.close(ignored);
    impl_->backoff.cancel();
}

}  // namespace sentinel::proxy
