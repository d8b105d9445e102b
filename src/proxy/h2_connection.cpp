#include "proxy/h2_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/http1_connection.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using observability::timeout_kind;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Frames are gathered up to this much per socket write.
constexpr std::size_t write_batch = 64 * 1024;
// A stream's pipeline waits while more response bytes than this wait for the client's
// window: the upstream is then read no faster than the client reads (flow control end to end).
constexpr std::size_t stream_high_water = 64 * 1024;

h2::settings settings_of(const config::http2_config& c) {
    h2::settings s;
    s.max_concurrent_streams = c.max_concurrent_streams;
    s.initial_window_size = static_cast<std::uint32_t>(c.initial_window_size);
    s.max_frame_size = static_cast<std::uint32_t>(c.max_frame_size);
    s.max_header_list_size = static_cast<std::uint32_t>(c.max_header_list_size);
    return s;
}

}  // namespace

h2_connection::h2_connection(http1_connection& parent)
    : parent_(parent),
      session_(settings_of(parent.listener()->http2), *this, parent.worker().ids.next64()),
      writer_wake_(parent.worker().io()),
      streams_done_(parent.worker().io()) {
    parent_.worker().metrics.http2_connections.inc();
    parent_.worker().metrics.http2_connections_active.add(1);
}

h2_connection::~h2_connection() { parent_.worker().metrics.http2_connections_active.add(-1); }

void h2_connection::wake_writer() {
    if (writer_idle_) writer_wake_.cancel();
}

void h2_connection::count_abuse() {
    auto& m = parent_.worker().metrics;
    m.http2_streams_refused.inc(session_.refused() - refused_counted_);
    refused_counted_ = session_.refused();
    if (auto kind = session_.abused(); kind && !abuse_counted_) {
        abuse_counted_ = true;
        m.http2_abuse[static_cast<std::size_t>(*kind)].inc();
        parent_.audit(observability::audit_reason::http2_abuse, h2::to_string(*kind));
    }
}

void h2_connection::update_idle_deadline() {
    // An idle connection (no stream running) closes after keepalive-idle; until the first
    // request, client-header bounds how long a client may take to start.
    if (closing_) return;
    const auto& timeouts = parent_.snap().cfg->timeouts;
    if (session_.running() > 0) {
        served_ = true;
        parent_.clear_deadline();
    } else {
        parent_.set_deadline(served_ ? timeout_kind::keepalive_idle : timeout_kind::client_header,
                             served_ ? timeouts.keepalive_idle : timeouts.client_header);
    }
}

asio::awaitable<void> h2_connection::read_loop() {
    for (;;) {
        auto& in = parent_.input();
        if (in.size() > 0) {
            const bool ok = session_.receive(in.readable(), std::chrono::steady_clock::now());
            in.consume(in.size());
            count_abuse();
            wake_writer();
            if (!ok) break;
        }
        if (!session_.want_read() || closing_) break;
        update_idle_deadline();
        boost::system::error_code ec;
        if (co_await parent_.read_some(ec) == 0) {
            if (parent_.expired() && !closing_) {
                // Idle: say goodbye properly, the client may have a request on its way.
                session_.shutdown();
                wake_writer();
            }
            break;
        }
    }
    parent_.clear_deadline();
    closing_ = true;
    wake_writer();
}

asio::awaitable<void> h2_connection::write_loop() {
    for (;;) {
        out_.clear();
        session_.send(out_, write_batch);
        count_abuse();
        if (!out_.empty()) {
            if (!co_await parent_.write(out_)) {
                closing_ = true;
                break;
            }
            continue;
        }
        if (closing_ || (!session_.want_read() && !session_.want_write())) break;
        writer_idle_ = true;
        writer_wake_.expires_at(asio::steady_timer::time_point::max());
        co_await writer_wake_.async_wait(use_tuple);
        writer_idle_ = false;
    }
    closing_ = true;
    // The reader may sit in a read the peer will never complete.
    boost::system::error_code ignored;
    parent_.socket().cancel(ignored);
}

asio::awaitable<void> h2_connection::run() {
    co_await (read_loop() && write_loop());
    // Pipelines still running lost their client: abort them, wait until they are gone (they
    // hold references to this connection).
    for (auto& [id, stream] : streams_) stream->abort();
    while (!streams_.empty()) {
        streams_done_.expires_at(asio::steady_timer::time_point::max());
        co_await streams_done_.async_wait(use_tuple);
    }
}

void h2_connection::drain() {
    session_.shutdown();
    wake_writer();
}

void h2_connection::refuse_and_drain(std::int32_t id) {
    session_.refuse(id);
    drain();
}

void h2_connection::abort() {
    closing_ = true;
    for (auto& [id, stream] : streams_) stream->abort();
    wake_writer();
}

void h2_connection::on_request(std::int32_t id) {
    auto stream = std::make_shared<http1_connection>(parent_, *this, id);
    streams_.emplace(id, stream);
    parent_.worker().metrics.http2_streams.inc();
    // Called from inside nghttp2's receive callbacks: the pipeline starts afterwards.
    asio::post(parent_.worker().io(), [this, stream = std::move(stream), id]() mutable {
        asio::co_spawn(parent_.worker().io(), serve_stream(std::move(stream), id), asio::detached);
    });
}

asio::awaitable<void> h2_connection::serve_stream(std::shared_ptr<http1_connection> stream, std::int32_t id) {
    co_await stream->run_stream();
    session_.finish(id);
    streams_.erase(id);
    update_idle_deadline();  // the reader may be waiting without one
    wake_writer();
    if (streams_.empty()) streams_done_.cancel();
}

void h2_connection::on_stream_event(std::int32_t id) {
    const auto it = streams_.find(id);
    if (it == streams_.end()) return;
    // A reset stops the upstream work at once, not when the pipeline next touches the client.
    if (session_.stream_gone(id)) it->second->abort();
    it->second->wake();
}

asio::awaitable<std::size_t> h2_connection::read(http1_connection& stream, std::int32_t id, byte_buffer& in,
                                                 boost::system::error_code& ec) {
    for (;;) {
        auto [data, room] = in.prepare();
        if (room == 0) {
            ec = asio::error::no_buffer_space;
            co_return 0;
        }
        const std::size_t n = session_.read(id, data, room);
        if (n > 0) {
            in.commit(n);
            if (session_.want_write()) wake_writer();  // a WINDOW_UPDATE may be due
            co_return n;
        }
        if (closing_ || session_.stream_gone(id)) {
            ec = asio::error::connection_reset;
            co_return 0;
        }
        if (session_.request_done(id)) {
            ec = asio::error::eof;
            co_return 0;
        }
        if (stream.expired()) {
            ec = asio::error::operation_aborted;
            co_return 0;
        }
        co_await stream.wait_event();
    }
}

asio::awaitable<bool> h2_connection::write(http1_connection& stream, std::int32_t id, std::string_view data,
                                           std::string_view more) {
    if (closing_) co_return false;
    if (!session_.write(id, data) || (!more.empty() && !session_.write(id, more))) {
        wake_writer();
        co_return false;
    }
    wake_writer();
    while (session_.unsent(id) > stream_high_water) {
        if (closing_ || session_.stream_gone(id) || stream.expired()) co_return false;
        co_await stream.wait_event();
    }
    co_return !closing_ && !session_.stream_gone(id);
}

}  // namespace sentinel::proxy
