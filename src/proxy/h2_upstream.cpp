#include "proxy/h2_upstream.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/worker_context.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t write_batch = 64 * 1024;
// An exchange writing a request body waits above this many bytes the server's window holds back.
constexpr std::size_t stream_high_water = 64 * 1024;

}  // namespace

class h2_upstream_connection::stream final : public upstream::multiplexed_stream {
public:
    stream(std::shared_ptr<h2_upstream_connection> c, std::uint32_t h)
        : conn(std::move(c)), handle(h), timer(conn->worker_.io()) {}
    ~stream() override { conn->release(*this); }

    asio::awaitable<std::size_t> read_some(byte_buffer& into, boost::system::error_code& ec) override {
        return conn->read(*this, into, ec);
    }
    asio::awaitable<bool> write(std::string_view first, std::string_view second) override {
        return conn->write(*this, first, second);
    }
    void cancel() override {
        cancelled = true;
        timer.cancel();
    }
    bool refused() const override { return conn->session_.failed(handle) == h2::client_session::failure::refused; }

    asio::awaitable<void> wait() {
        timer.expires_at(asio::steady_timer::time_point::max());
        co_await timer.async_wait(use_tuple);
    }

    std::shared_ptr<h2_upstream_connection> conn;
    std::uint32_t handle;
    asio::steady_timer timer;
    bool cancelled = false;
};

h2_upstream_connection::h2_upstream_connection(worker_context& worker,
                                               std::unique_ptr<upstream::pooled_connection> transport,
                                               std::chrono::milliseconds idle_timeout)
    : worker_(worker), transport_(std::move(transport)), session_(*this, transport_->tls != nullptr, transport_->key),
      writer_wake_(worker.io()), idle_timeout_(idle_timeout), idle_since_(std::chrono::steady_clock::now()) {}

h2_upstream_connection::~h2_upstream_connection() = default;

void h2_upstream_connection::start() {
    auto self = shared_from_this();
    asio::co_spawn(worker_.io(), [self]() { return self->run(); }, asio::detached);
}

bool h2_upstream_connection::usable() const { return !dead_ && session_.accepts_streams(); }

bool h2_upstream_connection::expired(std::chrono::steady_clock::time_point now) const {
    return dead_ || (streams_.empty() && now - idle_since_ > idle_timeout_);
}

void h2_upstream_connection::close() {
    dead_ = true;
    boost::system::error_code ignored;
    transport_->socket.close(ignored);
    wake_writer();
}

std::unique_ptr<upstream::pooled_connection> h2_upstream_connection::open_stream(std::size_t buffer_capacity) {
    const std::uint32_t handle = session_.open();
    auto up = std::make_unique<upstream::pooled_connection>(worker_.io(), buffer_capacity);
    up->key = transport_->key;
    auto s = std::make_unique<stream>(shared_from_this(), handle);
    streams_.emplace(handle, s.get());
    up->stream = std::move(s);
    return up;
}

void h2_upstream_connection::release(stream& s) {
    session_.close(s.handle);
    streams_.erase(s.handle);
    if (streams_.empty()) idle_since_ = std::chrono::steady_clock::now();
    wake_writer();  // a RST_STREAM may be due
}

void h2_upstream_connection::on_stream_event(std::uint32_t handle) {
    if (const auto it = streams_.find(handle); it != streams_.end()) it->second->timer.cancel();
}

void h2_upstream_connection::wake_writer() {
    if (writer_idle_) writer_wake_.cancel();
}

asio::awaitable<std::size_t> h2_upstream_connection::read(stream& s, byte_buffer& into,
                                                          boost::system::error_code& ec) {
    using failure = h2::client_session::failure;
    for (;;) {
        auto [data, room] = into.prepare();
        if (room == 0) {
            ec = asio::error::no_buffer_space;
            co_return 0;
        }
        const std::size_t n = session_.read(s.handle, data, room);
        if (n > 0) {
            into.commit(n);
            if (session_.want_write()) wake_writer();  // a WINDOW_UPDATE may be due
            co_return n;
        }
        if (session_.response_done(s.handle)) {
            ec = asio::error::eof;
            co_return 0;
        }
        if (const auto f = session_.failed(s.handle); f != failure::none) {
            ec = f == failure::refused ? asio::error::connection_refused : asio::error::connection_reset;
            co_return 0;
        }
        if (s.cancelled) {
            ec = asio::error::operation_aborted;
            co_return 0;
        }
        co_await s.wait();
    }
}

asio::awaitable<bool> h2_upstream_connection::write(stream& s, std::string_view first, std::string_view second) {
    using failure = h2::client_session::failure;
    if (s.cancelled || !session_.write(s.handle, first) || (!second.empty() && !session_.write(s.handle, second))) {
        wake_writer();
        co_return false;
    }
    wake_writer();
    while (session_.unsent(s.handle) > stream_high_water) {
        if (s.cancelled || session_.failed(s.handle) != failure::none) co_return false;
        co_await s.wait();
    }
    co_return !s.cancelled && session_.failed(s.handle) == failure::none;
}

asio::awaitable<void> h2_upstream_connection::read_loop() {
    auto& buffer = transport_->buffer;
    for (;;) {
        auto [data, room] = buffer.prepare();
        auto [ec, n] = transport_->tls
                           ? co_await transport_->tls->async_read_some(asio::buffer(data, room), use_tuple)
                           : co_await transport_->socket.async_read_some(asio::buffer(data, room), use_tuple);
        if (ec || n == 0) break;
        buffer.commit(n);
        const bool ok = session_.receive(buffer.readable());
        buffer.consume(buffer.size());
        wake_writer();
        if (!ok || (!session_.want_read() && !session_.want_write())) break;
    }
    dead_ = true;
    session_.fail_all();
    wake_writer();
}

asio::awaitable<void> h2_upstream_connection::write_loop() {
    for (;;) {
        out_.clear();
        session_.send(out_, write_batch);
        if (!out_.empty()) {
            auto [ec, n] = transport_->tls
                               ? co_await asio::async_write(*transport_->tls, asio::buffer(out_), use_tuple)
                               : co_await asio::async_write(transport_->socket, asio::buffer(out_), use_tuple);
            if (ec) break;
            continue;
        }
        if (dead_) break;
        writer_idle_ = true;
        writer_wake_.expires_at(asio::steady_timer::time_point::max());
        co_await writer_wake_.async_wait(use_tuple);
        writer_idle_ = false;
    }
    dead_ = true;
    session_.fail_all();
    boost::system::error_code ignored;
    transport_->socket.cancel(ignored);  // the reader may wait on a server that sends nothing
}

asio::awaitable<void> h2_upstream_connection::run() {
    auto self = shared_from_this();
    co_await (read_loop() && write_loop());
}

std::shared_ptr<h2_upstream_connection> h2_upstream_pool::find(const std::string& key, const tls::client_context* tls) {
    const auto it = conns_.find(key);
    if (it == conns_.end()) return nullptr;
    for (const auto& c : it->second)
        if (c->tls() == tls && c->usable()) return c;
    return nullptr;
}

std::shared_ptr<h2_upstream_connection> h2_upstream_pool::adopt(worker_context& worker,
                                                                std::unique_ptr<upstream::pooled_connection> transport,
                                                                std::chrono::milliseconds idle_timeout) {
    auto c = std::make_shared<h2_upstream_connection>(worker, std::move(transport), idle_timeout);
    c->start();
    conns_[c->key()].push_back(c);
    return c;
}

void h2_upstream_pool::sweep(std::chrono::steady_clock::time_point now) {
    for (auto it = conns_.begin(); it != conns_.end();) {
        auto& list = it->second;
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [now](const auto& c) {
                                      if (!c->expired(now)) return false;
                                      c->close();
                                      return true;
                                  }),
                   list.end());
        it = list.empty() ? conns_.erase(it) : std::next(it);
    }
}

void h2_upstream_pool::begin_connect(const std::string& key, asio::io_context& io) {
    connecting_.emplace(key, std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max()));
}

void h2_upstream_pool::end_connect(const std::string& key) {
    const auto it = connecting_.find(key);
    if (it == connecting_.end()) return;
    it->second->cancel();
    connecting_.erase(it);
}

asio::awaitable<void> h2_upstream_pool::wait_connect(const std::string& key) {
    const auto it = connecting_.find(key);
    if (it == connecting_.end()) co_return;
    auto timer = it->second;  // kept alive while we wait
    co_await timer->async_wait(use_tuple);
}

void h2_upstream_pool::clear() {
    for (auto& [key, list] : conns_)
        for (auto& c : list) c->close();
    conns_.clear();
    for (auto& [key, timer] : connecting_) timer->cancel();
    connecting_.clear();
}

std::size_t h2_upstream_pool::size() const {
    std::size_t n = 0;
    for (const auto& [key, list] : conns_) n += list.size();
    return n;
}

}  // namespace sentinel::proxy
