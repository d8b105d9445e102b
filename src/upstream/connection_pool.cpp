#include "upstream/connection_pool.hpp"

#include <algorithm>

namespace sentinel::upstream {

connection_pool::~connection_pool() { clear(); }

std::unique_ptr<pooled_connection> connection_pool::take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto conn = std::move(it->second.back());
    it->second.pop_back();
    // Disarm the idle watch; its handler sees operation_aborted (or a stale epoch) and leaves.
    boost::system::error_code ignored;
    if (conn->watched) conn->socket.cancel(ignored);
    conn->idle_epoch = 0;
    return conn;
}

void connection_pool::give_back(std::unique_ptr<pooled_connection> conn,
                                const config::pool_config& pool) {
    auto& list = idle_[conn->key];
    if (list.size() >= pool.max_idle || !conn->socket.is_open()) return;  // closes conn
    conn->idle_since = std::chrono::steady_clock::now();
    conn->idle_timeout = pool.idle_timeout;
    conn->idle_epoch = next_epoch_++;
    conn->watched = false;
    list.push_back(std::move(conn));
}

void connection_pool::watch(pooled_connection* conn) {
    const std::uint64_t epoch = conn->idle_epoch;
    conn->watched = true;
    // A one-byte read rather than async_wait(read): Asio starts a non-speculative wait with
    // an epoll_ctl(MOD) every time, a read with none, and this runs once per request.
    conn->socket.async_read_some(boost::asio::buffer(&conn->probe, 1),
                                 [this, conn, epoch](const boost::system::error_code& ec, std::size_t) {
                                     // Any completion but a cancel means the upstream closed
                                     // or sent bytes nobody asked for: unusable.
                                     if (ec != boost::asio::error::operation_aborted) drop(conn, epoch);
                                 });
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
