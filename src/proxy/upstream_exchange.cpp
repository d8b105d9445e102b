#include "proxy/upstream_exchange.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/http1/chunked.hpp"
#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"
#include "proxy/forwarding.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;
using observability::local_reply_reason;
using observability::timeout_kind;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool idempotent(std::string_view method) {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
           method == "PUT" || method == "DELETE";
}

bool is_h2c(const http1::request_head& request) {
    for (const auto& h : request.headers)
        if (http1::iequals(h.name, "upgrade") && h.value.find("h2c") != std::string_view::npos) return true;
    return false;
}

struct chunked_scan {
    std::size_t consumed = 0;     // bytes the decoder took: relayed verbatim
    std::uint64_t data_bytes = 0;  // payload among them
    bool done = false;            // the message's last chunk and trailers are in
    bool error = false;
};

// Feeds buffered chunked bytes to the decoder until it needs more input, finishes or fails.
// The framing is checked strictly, so relaying exactly the consumed bytes unchanged cannot
// smuggle a second message.
chunked_scan scan_chunked(http1::chunked_decoder& decoder, std::string_view data) {
    chunked_scan scan;
    while (scan.consumed < data.size()) {
        std::size_t consumed = 0;
        std::string_view chunk;
        const auto status = decoder.decode(data.substr(scan.consumed), consumed, chunk);
        scan.consumed += consumed;
        if (status == http1::chunked_decoder::status::data) {
            scan.data_bytes += chunk.size();
        } else if (status == http1::chunked_decoder::status::done) {
            scan.done = true;
            break;
        } else if (status == http1::chunked_decoder::status::error) {
            scan.error = true;
            break;
        } else {
            break;
        }
    }
    return scan;
}

// Clears the connection's deadline on every exit path, before the upstream socket it may
// point at is destroyed.
struct deadline_guard {
    http1_connection& conn;
    ~deadline_guard() { conn.clear_deadline(); }
};

}  // namespace

upstream_exchange::upstream_exchange(http1_connection& down, const config::route_config& route,
                                     const upstream::upstream_group& group, std::size_t group_index)
    : down_(down), route_(route), group_(group), group_index_(group_index), snap_(down.snap()) {}

awaitable<void> upstream_exchange::run() {
    deadline_guard guard{down_};
    auto& request = down_.request();
    auto& record = down_.record();
    auto& worker = down_.worker();
    const auto& endpoint =
        group_.endpoints[worker.next_round_robin(group_index_) % group_.endpoints.size()];
    record.upstream_endpoint = endpoint.key;

    upgrade_ = route_.allow_upgrade && request.has_upgrade && !is_h2c(request);
    forward_context ctx;
    ctx.request_id = record.id();
    ctx.peer = down_.peer_text();
    ctx.peer_trusted = down_.peer_trusted();
    ctx.scheme = "http";
    ctx.upgrade = upgrade_;
    if (down_.route_path().data() != request.path.data()) ctx.path = down_.route_path();
    ctx.default_host = endpoint.key;
    build_upstream_head(down_.upstream_head(), request, route_, ctx);
    down_.set_keep_alive(request.keep_alive);
    // The head's bytes are no longer needed; from here on only copies and scalars are used.
    down_.input().consume(down_.head_size());

    const bool retry_safe = request.framing == http1::body_framing::none && idempotent(record.method);
    for (int attempt = 0;; ++attempt) {
        up_ = attempt == 0 ? worker.pool.take(endpoint.key) : nullptr;
        record.upstream_reused = up_ != nullptr;
        if (up_) {
            worker.metrics.upstream_connections_reused.inc();
        } else if (!co_await connect(endpoint)) {
            co_return;
        }
        worker.metrics.upstream_requests.inc();
        auto result = co_await send_request();
        if (result == outcome::ok) result = co_await read_response_head();
        if (result == outcome::stale && attempt == 0 && retry_safe && !body_started_) {
            // The pooled connection was closed by the upstream before it saw our request.
            worker.metrics.upstream_stale_retries.inc();
            down_.clear_deadline();
            up_.reset();
            continue;
        }
        if (result == outcome::stale) co_await fail(502, local_reply_reason::upstream_bad_response);
        if (result != outcome::ok) co_return;
        break;
    }

    if (response_.status == 101) {
        co_await tunnel();
        co_return;
    }
    const bool complete = co_await relay_response_body();
    down_.clear_deadline();
    if (!complete) {
        down_.set_keep_alive(false);
        co_return;
    }
    if (response_.keep_alive && request_complete_ && up_->buffer.empty()) {
        ++up_->requests;
        worker.pool.give_back(std::move(up_), group_.pool);
    }
}

awaitable<bool> upstream_exchange::connect(const upstream::endpoint& endpoint) {
    auto& worker = down_.worker();
    const std::size_t capacity = std::max<std::size_t>(64 * 1024, snap_.limits.max_header_bytes + 16 * 1024);
    up_ = std::make_unique<upstream::pooled_connection>(worker.io(), capacity);
    up_->key = endpoint.key;
    down_.set_deadline(timeout_kind::upstream_connect, snap_.cfg->timeouts.upstream_connect, &up_->socket);
    auto [ec] = co_await up_->socket.async_connect(endpoint.address, use_tuple);
    if (ec) {
        worker.metrics.upstream_connect_failures.inc();
        const bool timed_out = down_.expired();
        co_await fail(timed_out ? 504 : 502, timed_out ? local_reply_reason::upstream_connect_timeout
                                                      : local_reply_reason::upstream_connect_failure);
        co_return false;
    }
    down_.clear_deadline();
    boost::system::error_code ignored;
    up_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    worker.metrics.upstream_connections_created.inc();
    co_return true;
}

awaitable<bool> upstream_exchange::write_upstream(std::string_view first, std::string_view second) {
    down_.set_deadline(timeout_kind::upstream_body_idle, snap_.cfg->timeouts.upstream_body_idle, &up_->socket);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(first.data(), first.size()),
                                                    asio::buffer(second.data(), second.size())};
    auto [ec, n] = co_await asio::async_write(up_->socket, buffers, use_tuple);
    co_return !ec;
}

awaitable<upstream_exchange::outcome> upstream_exchange::send_request() {
    auto& request = down_.request();
    auto& in = down_.input();
    const std::string& head = down_.upstream_head();

    if (request.framing == http1::body_framing::none) {
        if (!co_await write_upstream(head)) co_return down_.record().upstream_reused ? outcome::stale : outcome::failed;
        request_complete_ = true;
        co_return outcome::ok;
    }

    // Tell a waiting client to send its body (we strip Expect towards the upstream).
    if (request.expect_continue && request.version_minor == 1 && in.empty()) {
        if (!co_await down_.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return outcome::failed;
    }

    bool sent;
    if (request.framing == http1::body_framing::content_length) {
        const std::uint64_t first = std::min<std::uint64_t>(in.size(), request.content_length);
        sent = co_await write_upstream(head, in.readable().substr(0, first));
        if (!sent) co_return down_.record().upstream_reused ? outcome::stale : outcome::failed;
        body_started_ = first > 0;
        in.consume(first);
        if (!co_await send_content_length_body(request.content_length - first)) co_return outcome::failed;
    } else {
        if (!co_await write_upstream(head)) co_return down_.record().upstream_reused ? outcome::stale : outcome::failed;
        if (!co_await send_chunked_body()) co_return outcome::failed;
    }
    request_complete_ = true;
    co_return outcome::ok;
}


awaitable<std::size_t> upstream_exchange::read_upstream(boost::system::error_code& ec) {
    down_.set_deadline(timeout_kind::upstream_body_idle, snap_.cfg->timeouts.upstream_body_idle, &up_->socket);
    auto [data, room] = up_->buffer.prepare();
    if (room == 0) {
        ec = asio::error::no_buffer_space;
        co_return 0;
    }
    auto [error, n] = co_await up_->socket.async_read_some(asio::buffer(data, room), use_tuple);
    ec = error;
    up_->buffer.commit(n);
    co_return n;
}

awaitable<bool> upstream_exchange::write_downstream(std::string_view first, std::string_view second) {
    down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
    co_return co_await down_.write(first, second);
}

awaitable<void> upstream_exchange::client_body_failed() {
    // The client stalled or went away mid-body: the upstream must not wait for the rest.
    const bool timed_out = down_.expired();
    down_.clear_deadline();
    up_.reset();
    down_.set_keep_alive(false);
    if (timed_out) co_await down_.send_local_reply(408, local_reply_reason::client_body_timeout, true);
}

awaitable<void> upstream_exchange::upstream_failed() {
    const bool timed_out = down_.expired();
    co_await fail(timed_out ? 504 : 502, timed_out ? local_reply_reason::upstream_response_timeout
                                                  : local_reply_reason::upstream_bad_response);
}

awaitable<void> upstream_exchange::fail(int status, local_reply_reason reason) {
    down_.clear_deadline();
    up_.reset();
    const bool unread_body = !request_complete_ && down_.request().framing != http1::body_framing::none;
    co_await down_.send_local_reply(status, reason, unread_body || !down_.keep_alive());
}

awaitable<bool> upstream_exchange::send_content_length_body(std::uint64_t remaining) {
    auto& in = down_.input();
    while (remaining > 0) {
        down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
        boost::system::error_code ec;
        if (co_await down_.read_some(ec) == 0) {
            co_await client_body_failed();
            co_return false;
        }
        const std::uint64_t chunk = std::min<std::uint64_t>(in.size(), remaining);
        body_started_ = true;
        if (!co_await write_upstream(in.readable().substr(0, chunk))) {
            co_await upstream_failed();
            co_return false;
        }
        in.consume(chunk);
        remaining -= chunk;
    }
    co_return true;
}

awaitable<bool> upstream_exchange::send_chunked_body() {
    auto& in = down_.input();
    http1::chunked_decoder decoder;
    std::uint64_t body_bytes = 0;
    for (;;) {
        const std::string_view data = in.readable();
        const chunked_scan scan = scan_chunked(decoder, data);
        body_bytes += scan.data_bytes;
        if (scan.error) {
            co_await fail(400, local_reply_reason::bad_request);
            co_return false;
        }
        if (body_bytes > snap_.max_body) {
            co_await fail(413, local_reply_reason::body_too_large);
            co_return false;
        }
        if (scan.consumed > 0) {
            body_started_ = true;
            if (!co_await write_upstream(data.substr(0, scan.consumed))) {
                co_await upstream_failed();
                co_return false;
            }
            in.consume(scan.consumed);
        }
        if (scan.done) co_return true;
        down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
        boost::system::error_code ec;
        if (co_await down_.read_some(ec) == 0) {
            co_await client_body_failed();
            co_return false;
        }
    }
}

awaitable<upstream_exchange::outcome> upstream_exchange::read_response_head() {
    auto& buffer = up_->buffer;
    const bool http10_client = down_.request().version_minor == 0;
    down_.set_deadline(timeout_kind::upstream_response_header,
                       snap_.cfg->timeouts.upstream_response_header, &up_->socket);
    bool any_byte = false;
    for (;;) {
        if (!buffer.empty()) {
            any_byte = true;
            response_.clear();
            const auto result = http1::parse_response(buffer.readable(), snap_.limits,
                                                      down_.record().method, response_);
            if (result.status == http1::parse_status::error) {
                down_.worker().metrics.upstream_bad_responses.inc();
                co_await fail(502, local_reply_reason::upstream_bad_response);
                co_return outcome::failed;
            }
            if (result.status == http1::parse_status::done) {
                if (response_.status >= 100 && response_.status < 200 && response_.status != 101) {
                    // Interim responses (100, 103) go to HTTP/1.1 clients as they come.
                    if (!http10_client) {
                        build_interim_head(down_.scratch(), response_);
                        if (!co_await down_.write(down_.scratch())) {
                            co_await fail(502, local_reply_reason::upstream_bad_response);
                            co_return outcome::failed;
                        }
                    }
                    buffer.consume(result.consumed);
                    down_.set_deadline(timeout_kind::upstream_response_header,
                                       snap_.cfg->timeouts.upstream_response_header, &up_->socket);
                    continue;
                }
                if (response_.status == 101 && !upgrade_) {
                    down_.worker().metrics.upstream_bad_responses.inc();
                    co_await fail(502, local_reply_reason::upstream_bad_response);
                    co_return outcome::failed;
                }
                response_head_size_ = result.consumed;
                co_return outcome::ok;
            }
        }
        auto [data, room] = buffer.prepare();
        if (room == 0) {
            co_await fail(502, local_reply_reason::upstream_bad_response);
            co_return outcome::failed;
        }
        auto [ec, n] = co_await up_->socket.async_read_some(asio::buffer(data, room), use_tuple);
        buffer.commit(n);
        if (n > 0) continue;
        if (down_.expired()) {
            co_await fail(504, local_reply_reason::upstream_response_timeout);
            co_return outcome::failed;
        }
        if (!any_byte && down_.record().upstream_reused) co_return outcome::stale;
        co_await fail(502, local_reply_reason::upstream_bad_response);
        co_return outcome::failed;
    }
}

awaitable<bool> upstream_exchange::relay_response_body() {
    auto& request = down_.request();
    auto& record = down_.record();
    auto& buffer = up_->buffer;
    enum class mode { none, length, chunked_relay, chunked_decode, until_close } m = mode::none;
    response_framing framing;
    switch (response_.framing) {
    case http1::body_framing::none: break;
    case http1::body_framing::content_length:
        m = mode::length;
        framing.content_length = true;
        framing.length = response_.content_length;
        break;
    case http1::body_framing::chunked:
        if (request.version_minor >= 1) {
            m = mode::chunked_relay;
            framing.chunked = true;
        } else {
            // An HTTP/1.0 client cannot read chunked: send the data, delimited by close.
            m = mode::chunked_decode;
            down_.set_keep_alive(false);
        }
        break;
    case http1::body_framing::until_close:
        m = mode::until_close;
        down_.set_keep_alive(false);
        break;
    }
    if (down_.worker().draining()) down_.set_keep_alive(false);
    framing.keep_alive = down_.keep_alive();
    framing.http10_keep_alive = request.version_minor == 0 && down_.keep_alive();
    build_downstream_head(down_.scratch(), response_, route_, record.id(), framing);
    record.status = response_.status;
    buffer.consume(response_head_size_);
    const std::string& head = down_.scratch();

    boost::system::error_code ec;
    switch (m) {
    case mode::none:
        co_return co_await write_downstream(head);

    case mode::length: {
        std::uint64_t remaining = response_.content_length;
        std::uint64_t chunk = std::min<std::uint64_t>(buffer.size(), remaining);
        if (!co_await write_downstream(head, buffer.readable().substr(0, chunk))) co_return false;
        buffer.consume(chunk);
        remaining -= chunk;
        while (remaining > 0) {
            if (co_await read_upstream(ec) == 0) co_return false;
            chunk = std::min<std::uint64_t>(buffer.size(), remaining);
            if (!co_await write_downstream(buffer.readable().substr(0, chunk))) co_return false;
            buffer.consume(chunk);
            remaining -= chunk;
        }
        co_return true;
    }

    case mode::chunked_relay: {
        http1::chunked_decoder decoder;
        std::string_view pending_head = head;  // goes out with the first body bytes
        for (;;) {
            const std::string_view data = buffer.readable();
            const chunked_scan scan = scan_chunked(decoder, data);
            if (scan.error) {
                down_.worker().metrics.upstream_bad_responses.inc();
                co_return false;
            }
            if (scan.consumed > 0 || scan.done) {
                if (!co_await write_downstream(pending_head, data.substr(0, scan.consumed))) co_return false;
                pending_head = {};
            }
            buffer.consume(scan.consumed);
            if (scan.done) co_return true;
            if (co_await read_upstream(ec) == 0) co_return false;
        }
    }

    case mode::chunked_decode: {
        // HTTP/1.0 client: only the payload goes out, the end is marked by closing.
        http1::chunked_decoder decoder;
        if (!co_await write_downstream(head)) co_return false;
        for (;;) {
            std::size_t consumed = 0;
            std::string_view chunk;
            const auto status = decoder.decode(buffer.readable(), consumed, chunk);
            if (status == http1::chunked_decoder::status::error) {
                down_.worker().metrics.upstream_bad_responses.inc();
                co_return false;
            }
            if (!chunk.empty() && !co_await write_downstream(chunk)) co_return false;
            buffer.consume(consumed);
            if (status == http1::chunked_decoder::status::done) co_return true;
            if (status == http1::chunked_decoder::status::need_more && co_await read_upstream(ec) == 0)
                co_return false;
        }
    }

    case mode::until_close: {
        if (!co_await write_downstream(head, buffer.readable())) co_return false;
        buffer.consume(buffer.size());
        for (;;) {
            if (co_await read_upstream(ec) == 0) {
                response_.keep_alive = false;
                co_return !down_.expired();  // EOF ends the body; a timeout truncates it
            }
            if (!co_await write_downstream(buffer.readable())) co_return false;
            buffer.consume(buffer.size());
        }
    }
    }
    co_return false;
}

awaitable<void> upstream_exchange::pump_to_upstream() {
    auto& in = down_.input();
    for (;;) {
        boost::system::error_code ec;
        down_.set_deadline(timeout_kind::upstream_body_idle, snap_.cfg->timeouts.upstream_body_idle, &up_->socket);
        if (in.empty() && co_await down_.read_some(ec) == 0) co_return;
        if (!co_await write_upstream(in.readable())) co_return;
        in.consume(in.size());
    }
}

awaitable<void> upstream_exchange::pump_to_downstream() {
    auto& buffer = up_->buffer;
    for (;;) {
        boost::system::error_code ec;
        if (buffer.empty() && co_await read_upstream(ec) == 0) co_return;
        down_.set_deadline(timeout_kind::upstream_body_idle, snap_.cfg->timeouts.upstream_body_idle, &up_->socket);
        if (!co_await down_.write(buffer.readable())) co_return;
        buffer.consume(buffer.size());
    }
}

awaitable<void> upstream_exchange::tunnel() {
    // 101 Switching Protocols: forward the head with the upgrade fields, then relay bytes both
    // ways until either side closes or the tunnel idles past upstream-body-idle.
    std::string& out = down_.scratch();
    out.clear();
    http1::append_status_line(out, 101, response_.reason);
    for (const auto& h : response_.headers)
        if (!http1::is_hop_by_hop(h.name) && !http1::iequals(h.name, "x-request-id"))
            http1::append_header(out, h.name, h.value);
    for (const auto& h : response_.headers)
        if (http1::iequals(h.name, "upgrade")) http1::append_header(out, "Upgrade", h.value);
    http1::append_header(out, "Connection", "upgrade");
    http1::append_header(out, "X-Request-Id", down_.record().id());
    http1::append_head_end(out);
    down_.record().status = 101;
    down_.set_keep_alive(false);
    up_->buffer.consume(response_head_size_);
    if (!co_await write_downstream(out, up_->buffer.readable())) co_return;
    up_->buffer.consume(up_->buffer.size());

    using namespace asio::experimental::awaitable_operators;
    co_await (pump_to_upstream() || pump_to_downstream());
    down_.clear_deadline();
    up_.reset();
}

}  // namespace sentinel::proxy
