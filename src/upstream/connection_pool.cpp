#include "upstream/connection_pool.hpp"

#include <openssl/ssl.h>

#include <algorithm>

namespace sentinel::upstream {

pooled_connection::~pooled_connection() {
    // Freeing an established SSL that never sent close_notify makes OpenSSL mark its session
    // not resumable (ssl_clear_bad_session), and that session is the one cached for the
    // endpoint: every reconnect after a pool drop would be a full handshake. A connection we
    // close on purpose (pool limits, idle timeout, a dropped watch) loses nothing by keeping
    // it — since TLS 1.1 a missing close_notify no longer forbids resumption — and sending a
    // real close_notify would need an asynchronous write nobody can wait for here. Failed
    // connections are unaffected: a fatal alert sent or received already removed the session.
    if (tls && SSL_is_init_finished(tls->native_handle()) == 1)
        SSL_set_shutdown(tls->native_handle(), SSL_get_shutdown(tls->native_handle()) | SSL_SENT_SHUTDOWN);
    if (upstream) upstream->connections.fetch_sub(1, std::memory_order_relaxed);
}

connection_pool::~connection_pool() { clear(); }

std::unique_ptr<pooled_connection> connection_pool::take(const std::string& key, const tls::client_context* tls) {
    auto it = idle_.find(key);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto& list = it->second;
    // Warmest first; connections of another TLS context (an older config, or another upstream
    // on the same address) are left for their owner or the idle timeout.
    auto match = std::find_if(list.rbegin(), list.rend(), [&](const auto& c) { return c->tls_context.get() == tls; });
    if (match == list.rend()) return nullptr;
    auto conn = std::move(*match);
    list.erase(std::next(match).base());
    // Disarm the idle watch; its handler sees operation_aborted (or a stale epoch) and leaves.
    boost::system::error_code ignored;
    if (conn->watched) conn->socket.cancel(ignored);
    conn->idle_epoch = 0;
    return conn;
}

void connection_pool::give_back(std::unique_ptr<pooled_connection> conn,
                                const config::pool_config& pool) {
    auto& list = idle_[conn->key];
    if (!conn->socket.is_open()) return;  // closes conn
    // Bytes already decrypted or buffered inside the SSL are bytes nobody asked for, and the
    // idle watch (a socket readiness wait) could not see them.
    if (conn->tls) {
        SSL* ssl = conn->tls->native_handle();
        if (SSL_has_pending(ssl) == 1 || BIO_pending(SSL_get_rbio(ssl)) > 0) return;
    }
    if (list.size() >= pool.max_idle) {
        const auto same = std::count_if(list.begin(), list.end(), [&](const auto& c) {
            return c->tls_context == conn->tls_context;
        });
        if (static_cast<std::size_t>(same) >= pool.max_idle) return;
    }
    conn->idle_since = std::chrono::steady_clock::now();
    conn->idle_timeout = pool.idle_timeout;
    conn->idle_epoch = next_epoch_++;
    conn->watched = false;
    list.push_back(std::move(conn));
}

void connection_pool::watch(pooled_connection* conn) {
    const std::uint64_t epoch = conn->idle_epoch;
    conn->watched = true;
    // Any completion but a cancel means the upstream closed or sent bytes nobody asked for:
    // unusable.
    auto on_done = [this, conn, epoch](const boost::system::error_code& ec, std::size_t = 0) {
        if (ec != boost::asio::error::operation_aborted) drop(conn, epoch);
    };
    if (conn->tls) {
        // TLS: wait for readability without taking bytes from the SSL's stream (see the header).
        conn->socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                                [on_done](const boost::system::error_code& ec) { on_done(ec); });
        return;
    }
    // Plain TCP: a one-byte read rather than async_wait(read): Asio starts a non-speculative
    // wait with an epoll_ctl(MOD) every time, a read with none, and this runs once per request.
    conn->socket.async_read_some(boost::asio::buffer(&conn->probe, 1), on_done);
}

void connection_pool::drop(pooled_connection* conn, std::uint64_t epoch) {
    // `conn` may already be gone; only touch it if it is still in the idle list.
    for (auto& [key, list] : idle_) {
        auto it = std::find_if(list.begin(), list.end(), [&](const auto& c) {
            return c.get() == conn && c->idle_epoch == epoch;
        });
        if (it != list.end()) {
            list.erase(it);
            return;
        }
    }
}

void connection_pool::sweep(std::chrono::steady_clock::time_point now) {
    for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        auto keep = std::find_if(list.begin(), list.end(), [&](const auto& c) {
            return now - c->idle_since < c->idle_timeout;
        });
        list.erase(list.begin(), keep);
        // Connections reused within a sweep period never pay for a watch; the rest get one.
        for (auto& c : list)
            if (!c->watched) watch(c.get());
        it = list.empty() ? idle_.erase(it) : std::next(it);
    }
}

void connection_pool::clear() { idle_.clear(); }

std::size_t connection_pool::idle_count() const {
    std::size_t n = 0;
    for (const auto& [key, list] : idle_) n += list.size();
    return n;
}

}  // namespace sentinel::upstream
