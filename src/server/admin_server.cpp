#include "server/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <sys/socket.h>

#include "common/byte_buffer.hpp"
#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"
#include "runtime/listen_socket.hpp"

namespace sentinel::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct reply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};
}  // namespace

struct admin_server::impl : std::enable_shared_from_this<admin_server::impl> {
    impl(asio::io_context& c, admin_hooks h, std::optional<std::string> token)
        : ctx(c), acceptor(c), hooks(std::move(h)), bearer_token(std::move(token)) {}

    reply handle(const http1::request_head& req) {
        if (bearer_token) {
            std::string_view presented;
            for (const auto& h : req.headers)
                if (http1::iequals(h.name, "authorization") && h.value.starts_with("Bearer "))
                    presented = h.value.substr(7);
            // Constant-time comparison: the token must not leak through response timing.
            if (presented.size() != bearer_token->size() ||
                CRYPTO_memcmp(presented.data(), bearer_token->data(), presented.size()) != 0)
                return {401, "text/plain; charset=utf-8", "unauthorized\n"};
        }
        const bool get = req.method == "GET" || req.method == "HEAD";
        if (req.path == "/healthz" && get) return {200, "text/plain; charset=utf-8", "ok\n"};
        if (req.path == "/readyz" && get) {
            return hooks.ready() ? reply{200, "text/plain; charset=utf-8", "ready\n"}
                                 : reply{503, "text/plain; charset=utf-8", "not ready\n"};
        }
        if (req.path == "/metrics" && get)
            return {200, "text/plain; version=0.0.4; charset=utf-8", hooks.metrics()};
        if (req.path == "/upstreams" && get) return {200, "application/json", hooks.upstreams()};
        if (req.path == "/config" && get) return {200, "text/plain; charset=utf-8", hooks.config()};
        if (req.path == "/drain") {
            if (req.method != "POST") return {405, "text/plain; charset=utf-8", "use POST\n"};
            hooks.drain();
            return {200, "text/plain; charset=utf-8",
                    "draining: /readyz answers 503, connections close after their current response\n"};
        }
        if (req.path == "/reload") {
            if (req.method != "POST") return {405, "text/plain; charset=utf-8", "use POST\n"};
            const auto result = hooks.reload();
            if (result.ok) return {200, "text/plain; charset=utf-8", "reloaded; config hash " + result.hash + "\n"};
            std::string body = "reload failed; the previous configuration stays active\n";
            for (const auto& e : result.errors) body += e + "\n";
            return {422, "text/plain; charset=utf-8", body};
        }
        return {404, "text/plain; charset=utf-8", "not found\n"};
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        auto self = shared_from_this();
        byte_buffer in(16 * 1024);
        http1::request_head req;
        http1::limits limits;
        limits.max_header_bytes = 16 * 1024 - 1;
        asio::steady_timer timer(ctx);
        // Admin clients are local and few: one bounded request per connection keeps this simple.
        timer.expires_after(std::chrono::seconds(10));
        timer.async_wait([&socket](const boost::system::error_code& ec) {
            if (!ec) socket.close();
        });
        std::string out;
        for (;;) {
            auto [data, room] = in.prepare();
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(data, room), use_tuple);
            if (ec || n == 0) break;
            in.commit(n);
            req.clear();
            const auto outcome = http1::parse_request(in.readable(), limits, req);
            if (outcome.status == http1::parse_status::need_more) continue;
            const reply r = outcome.status == http1::parse_status::done
                                ? handle(req)
                                : reply{http1::status_of(outcome.error), "text/plain; charset=utf-8", "bad request\n"};
            http1::append_status_line(out, r.status);
            http1::append_header(out, "Content-Type", r.content_type);
            http1::append_header(out, "Content-Length", fmt::format("{}", r.body.size()));
            http1::append_header(out, "Connection", "close");
            http1::append_head_end(out);
            if (req.method != "HEAD") out += r.body;
            co_await asio::async_write(socket, asio::buffer(out), use_tuple);
            break;
        }
        timer.cancel();
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
    }

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (acceptor.is_open()) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (!acceptor.is_open()) co_return;
                continue;
            }
            asio::co_spawn(ctx, serve(std::move(socket)), asio::detached);
        }
    }

    asio::io_context& ctx;
    tcp::acceptor acceptor;
    admin_hooks hooks;
    std::optional<std::string> bearer_token;
};

std::unique_ptr<admin_server> admin_server::start(asio::io_context& ctx, const config::admin_config& cfg,
                                                  admin_hooks hooks, std::string& error) {
    auto i = std::make_shared<impl>(ctx, std::move(hooks), cfg.bearer_token);
    runtime::listen_sockets sockets;
    if (!runtime::open_listen_sockets(cfg.listen, 1, 64, sockets, error)) return nullptr;
    sockaddr_storage storage;
    socklen_t length = sizeof storage;
    ::getsockname(sockets.fds[0], reinterpret_cast<sockaddr*>(&storage), &length);
    i->acceptor.assign(storage.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), sockets.fds[0]);
    asio::co_spawn(ctx, i->accept_loop(), asio::detached);
    return std::unique_ptr<admin_server>(new admin_server(i));
}

admin_server::~admin_server() { stop(); }

void admin_server::stop() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
}

}  // namespace sentinel::server
