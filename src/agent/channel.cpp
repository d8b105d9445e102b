#include "agent/channel.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <google/protobuf/stubs/logging.h>

#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "observability/event_log.hpp"

namespace sentinel::agent {

namespace asio = boost::asio;
namespace proto = sentinel::agent_protocol;
namespace log = observability::event_log;
using namespace asio::experimental::awaitable_operators;
using observability::agent_protocol_error;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

// One connection to the agent: the handshake, the read loop that completes waiting streams,
// pings, and a write queue (frames are appended and flushed by one writer at a time).
class connection : public std::enable_shared_from_this<connection> {
public:
    // Holds its channel: a stream (owned by a request) may outlive the channel's own
    // coroutines, e.g. when a reload retires the channel or the worker shuts down.
    explicit connection(channel& ch)
        : owner_(ch.shared_from_this()), ch_(ch), socket_(ch.io_), timer_(ch.io_), ping_timer_(ch.io_) {}

    // Connect and handshake within connect-timeout. False (and closed) on failure.
    awaitable<bool> establish();
    // Reads frames until the connection ends.
    awaitable<void> serve();

    bool ready() const { return ready_ && !draining_ && socket_.is_open(); }
    bool has_room() const { return caps_.max_concurrency == 0 || open_ < caps_.max_concurrency; }
    std::uint32_t open_streams() const { return open_; }
    const capabilities& caps() const { return caps_; }
    channel& owner() { return ch_; }

    std::uint32_t open_stream() {
        ++open_;
        ch_.metrics_.in_flight.add(1);
        return next_id_++;
    }
    void stream_ended() {
        --open_;
        ch_.metrics_.in_flight.add(-1);
        if (draining_ && open_ == 0) close();
        // A request may be waiting for room under the agent's max_concurrency.
        if (!ch_.ready_waiters_.empty()) ch_.notify_ready();
    }

    void send(std::string_view frame);
    template <class Message>
    void send_message(proto::frame_type type, std::uint8_t flags, std::uint32_t stream_id, const Message& m) {
        out_.reserve(out_.size() + proto::frame_header_size + 64);
        proto::append_message(out_, type, flags, stream_id, m);
        flush();
    }

    // A stream waiting for its decision: the read loop fills it and cancels `timer`.
    struct waiter {
        asio::steady_timer* timer = nullptr;
        v1::Decision* out = nullptr;
        bool answered = false;
        bool failed = false;
    };
    void wait_for(std::uint32_t id, waiter& w) { waiting_[id] = &w; }
    void stop_waiting(std::uint32_t id) { waiting_.erase(id); }

    void drain(std::string_view reason);
    void close();
    void protocol_error(agent_protocol_error reason, std::string_view detail);

private:
    void flush();
    awaitable<void> write_loop();
    awaitable<bool> read_more();
    // False when the connection must close.
    bool handle(const proto::frame_view& frame);
    awaitable<void> ping_loop();

    const std::shared_ptr<channel> owner_;
    channel& ch_;
    asio::generic::stream_protocol::socket socket_;
    asio::steady_timer timer_;
    asio::steady_timer ping_timer_;
    std::string in_;
    std::size_t in_pos_ = 0;
    std::string out_, writing_;
    bool write_active_ = false;
    bool ready_ = false;
    bool draining_ = false;
    bool closed_ = false;
    capabilities caps_;
    std::uint32_t next_id_ = 1;
    std::uint32_t open_ = 0;
    std::unordered_map<std::uint32_t, waiter*> waiting_;
    std::chrono::steady_clock::time_point last_rx_{};
    std::uint64_t ping_nonce_ = 0;
    bool ping_outstanding_ = false;
};

void connection::flush() {
    if (write_active_ || out_.empty() || closed_) return;
    write_active_ = true;
    asio::co_spawn(ch_.io_, [self = shared_from_this()]() { return self->write_loop(); }, asio::detached);
}

void connection::send(std::string_view frame) {
    out_.append(frame);
    flush();
}

awaitable<void> connection::write_loop() {
    while (!out_.empty() && !closed_) {
        writing_.clear();
        writing_.swap(out_);
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(writing_), use_tuple);
        if (ec) {
            close();
            break;
        }
    }
    write_active_ = false;
}

void connection::close() {
    if (closed_) return;
    closed_ = true;
    if (ready_) ch_.metrics_.connections.add(-1);
    ready_ = false;
    boost::system::error_code ec;
    socket_.close(ec);
    timer_.cancel();
    ping_timer_.cancel();
    // Every stream waiting on this connection fails now rather than at its timeout.
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [id, w] : waiting) {
        w->failed = true;
        w->timer->cancel();
    }
}

void connection::drain(std::string_view reason) {
    if (draining_ || closed_) return;
    draining_ = true;
    v1::Drain d;
    d.set_reason(std::string(reason));
    send_message(proto::frame_type::drain, 0, 0, d);
    if (open_ == 0) {
        // Let the DRAIN frame go out before closing.
        asio::co_spawn(ch_.io_, [self = shared_from_this()]() -> awaitable<void> {
            while (self->write_active_) {
                asio::steady_timer t(self->ch_.io_, std::chrono::milliseconds(1));
                co_await t.async_wait(use_tuple);
            }
            self->close();
        }, asio::detached);
    }
}

void connection::protocol_error(agent_protocol_error reason, std::string_view detail) {
    ch_.metrics_.protocol_errors[static_cast<std::size_t>(reason)].inc();
    log::warn("agent protocol error; closing the connection",
              {{"agent", ch_.cfg_.id}, {"reason", observability::to_string(reason)}, {"detail", detail}});
    close();
}

awaitable<bool> connection::read_more() {
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ > 65536) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    const std::size_t old = in_.size();
    in_.resize(old + 65536);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(in_.data() + old, 65536), use_tuple);
    in_.resize(old + n);
    if (ec || n == 0) co_return false;
    last_rx_ = std::chrono::steady_clock::now();
    co_return true;
}

awaitable<bool> connection::establish() {
    const auto& cfg = ch_.cfg_;
    boost::system::error_code ec;
    timer_.expires_after(cfg.connect_timeout);
    // Connect (resolving a TCP agent's host first), bounded by the timer.
    auto connect = [&]() -> awaitable<boost::system::error_code> {
        if (ch_.target_.starts_with("tcp://")) {
            // The host was resolved when the snapshot was built (never on a worker thread).
            const std::string hp = ch_.target_.substr(6);
            const auto colon = hp.rfind(':');
            std::string host = hp.substr(0, colon);
            if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
            boost::system::error_code aec;
            const auto address = asio::ip::make_address(host, aec);
            if (aec) co_return asio::error::host_not_found;
            const asio::ip::tcp::endpoint tcp_ep(address, static_cast<std::uint16_t>(std::stoul(hp.substr(colon + 1))));
            socket_ = asio::generic::stream_protocol::socket(ch_.io_);
            auto [cec] = co_await socket_.async_connect(asio::generic::stream_protocol::endpoint(tcp_ep), use_tuple);
            if (!cec) {
                const int one = 1;
                ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            co_return cec;
        }
        const asio::generic::stream_protocol::endpoint ep(asio::local::stream_protocol::endpoint(ch_.target_));
        socket_ = asio::generic::stream_protocol::socket(ch_.io_);
        auto [cec] = co_await socket_.async_connect(ep, use_tuple);
        co_return cec;
    };
    auto result = co_await (connect() || timer_.async_wait(use_tuple));
    if (result.index() == 1) {
        ch_.metrics_.connect_failures.inc();
        log::warn("agent connect timed out", {{"agent", cfg.id}, {"socket", ch_.target_}});
        close();
        co_return false;
    }
    if (ec = std::get<0>(result); ec) {
        ch_.metrics_.connect_failures.inc();
        log::warn("agent connect failed", {{"agent", cfg.id}, {"socket", ch_.target_}, {"error", ec.message()}});
        close();
        co_return false;
    }

    // Handshake, still under the connect-timeout timer (it closes the socket when it fires).
    send(ch_.hello_);
    bool timed_out = false;
    asio::co_spawn(ch_.io_, [self = shared_from_this(), &timed_out]() -> awaitable<void> {
        auto [tec] = co_await self->timer_.async_wait(use_tuple);
        if (!tec && !self->ready_) {
            timed_out = true;
            boost::system::error_code ignored;
            self->socket_.cancel(ignored);
        }
    }, asio::detached);
    v1::HelloAck ack;
    bool got = false;
    while (!got) {
        proto::frame_view frame;
        std::size_t used = 0;
        const auto st = proto::decode_frame(std::string_view(in_).substr(in_pos_), proto::sender::proxy,
                                            proto::default_max_frame_size, frame, used);
        if (st == proto::decode_status::ok) {
            in_pos_ += used;
            if (frame.header.type != proto::frame_type::hello_ack || !proto::parse_message(frame.payload, ack)) {
                timer_.cancel();
                ch_.metrics_.connect_failures.inc();
                protocol_error(agent_protocol_error::handshake, "the first frame was not a valid HELLO_ACK");
                co_return false;
            }
            got = true;
            break;
        }
        if (st != proto::decode_status::need_more) {
            timer_.cancel();
            ch_.metrics_.connect_failures.inc();
            protocol_error(agent_protocol_error::handshake, proto::describe(st));
            co_return false;
        }
        if (!co_await read_more()) break;
    }
    timer_.cancel();
    if (!got) {
        ch_.metrics_.connect_failures.inc();
        log::warn(timed_out ? "agent handshake timed out" : "agent closed the connection during the handshake",
                  {{"agent", cfg.id}, {"socket", cfg.socket}});
        close();
        co_return false;
    }
    if (ack.config_errors_size() > 0) {
        ch_.state_->set_config_rejected(true);
        for (const auto& line : describe_config_errors(cfg, ch_.tree_, ack.config_errors()))
            log::error("agent rejected its config; its routes apply the failure mode", {{"agent", cfg.id}, {"error", line}});
        ch_.metrics_.connect_failures.inc();
        close();
        co_return false;
    }
    if (ack.version() != proto::protocol_version) {
        ch_.metrics_.connect_failures.inc();
        protocol_error(agent_protocol_error::handshake, "the agent chose an unsupported protocol version");
        co_return false;
    }
    ch_.state_->set_config_rejected(false);
    // A (re)started agent is healthy until it says otherwise (right after HELLO_ACK if not).
    ch_.state_->set_unhealthy(false);
    const auto& c = ack.capabilities();
    caps_ = {};
    for (int e : c.events())
        if (e > 0 && e < 32) caps_.events |= 1u << e;
    caps_.request_body = c.request_body_mode();
    caps_.response_body = c.response_body_mode();
    caps_.max_body = c.max_body_bytes();
    caps_.max_concurrency = c.max_concurrency();
    caps_.max_frame = ack.max_frame_size() == 0 ? proto::default_max_frame_size
                                                : std::min(ack.max_frame_size(), proto::max_frame_size_limit);
    ready_ = true;
    last_rx_ = std::chrono::steady_clock::now();
    ch_.metrics_.connects.inc();
    ch_.metrics_.connections.add(1);
    log::info("agent connected", {{"agent", cfg.id}, {"name", ack.agent_name()}, {"version", ack.agent_version()}});
    co_return true;
}

bool connection::handle(const proto::frame_view& frame) {
    switch (frame.header.type) {
    case proto::frame_type::decision: {
        const auto it = waiting_.find(frame.header.stream_id);
        if (it == waiting_.end()) {
            if (frame.header.stream_id < next_id_) {  // cancelled or timed out earlier: late
                ch_.metrics_.late_decisions.inc();
                return true;
            }
            protocol_error(agent_protocol_error::unexpected_frame, "DECISION for a stream that was never opened");
            return false;
        }
        waiter* w = it->second;
        waiting_.erase(it);
        if (!proto::parse_message(frame.payload, *w->out)) {
            w->failed = true;
            w->timer->cancel();
            protocol_error(agent_protocol_error::bad_payload, "DECISION payload does not parse");
            return false;
        }
        w->answered = true;
        w->timer->cancel();
        return true;
    }
    case proto::frame_type::ping: {
        std::string out;
        char* p = proto::append_frame(out, proto::frame_type::pong, 0, 0, frame.payload.size());
        std::memcpy(p, frame.payload.data(), frame.payload.size());
        send(out);
        return true;
    }
    case proto::frame_type::pong: ping_outstanding_ = false; return true;
    case proto::frame_type::health: {
        v1::Health h;
        if (!proto::parse_message(frame.payload, h)) {
            protocol_error(agent_protocol_error::bad_payload, "HEALTH payload does not parse");
            return false;
        }
        const bool unhealthy = h.status() == v1::Health::UNHEALTHY;
        if (unhealthy != ch_.state_->unhealthy() || h.status() == v1::Health::DEGRADED)
            log::warn("agent reported its health", {{"agent", ch_.cfg_.id}, {"status", v1::Health::Status_Name(h.status())},
                                                    {"message", h.message()}});
        ch_.state_->set_unhealthy(unhealthy);
        return true;
    }
    case proto::frame_type::drain:
        log::info("agent asked to drain the connection", {{"agent", ch_.cfg_.id}});
        draining_ = true;
        ch_.notify_ready();  // a replacement is opened by the slot loop once this one closes
        if (open_ == 0) {
            close();
            return false;
        }
        return true;
    default:
        protocol_error(agent_protocol_error::unexpected_frame, proto::type_name(frame.header.type));
        return false;
    }
}

awaitable<void> connection::serve() {
    asio::co_spawn(ch_.io_, [self = shared_from_this()]() { return self->ping_loop(); }, asio::detached);
    for (;;) {
        for (;;) {
            proto::frame_view frame;
            std::size_t used = 0;
            const auto st = proto::decode_frame(std::string_view(in_).substr(in_pos_), proto::sender::proxy,
                                                proto::default_max_frame_size, frame, used);
            if (st == proto::decode_status::need_more) break;
            if (st != proto::decode_status::ok) {
                protocol_error(agent_protocol_error::bad_frame, proto::describe(st));
                co_return;
            }
            in_pos_ += used;
            if (!handle(frame)) co_return;
        }
        if (closed_ || !co_await read_more()) break;
    }
    if (!closed_ && !draining_) log::warn("agent connection lost", {{"agent", ch_.cfg_.id}});
    close();
}

awaitable<void> connection::ping_loop() {
    auto self = shared_from_this();
    const auto& cfg = ch_.cfg_;
    const auto pong_wait = std::max<std::chrono::milliseconds>(cfg.timeout * 4, std::chrono::seconds(1));
    while (!closed_) {
        ping_timer_.expires_after(cfg.ping_interval);
        auto [ec] = co_await ping_timer_.async_wait(use_tuple);
        if (ec || closed_) co_return;
        if (std::chrono::steady_clock::now() - last_rx_ < cfg.ping_interval) continue;
        v1::Ping p;
        p.set_nonce(++ping_nonce_);
        ping_outstanding_ = true;
        send_message(proto::frame_type::ping, 0, 0, p);
        ping_timer_.expires_after(pong_wait);
        auto [ec2] = co_await ping_timer_.async_wait(use_tuple);
        if (ec2 || closed_) co_return;
        if (ping_outstanding_) {
            log::warn("agent did not answer PING; reconnecting", {{"agent", cfg.id}});
            close();
            co_return;
        }
    }
}

// ---- stream ------------------------------------------------------------------------------

struct stream::pending {
    explicit pending(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    connection::waiter w;
    v1::Decision decision;
    bool end_stream = false;
    bool active = false;
    std::chrono::steady_clock::time_point sent;
};

stream::stream() = default;

stream::stream(std::shared_ptr<connection> conn, std::uint32_t id) : conn_(std::move(conn)), id_(id) {}

stream::stream(stream&& other) noexcept
    : conn_(std::move(other.conn_)), pending_(std::move(other.pending_)), id_(other.id_), ended_(other.ended_),
      latency_(other.latency_) {
    other.conn_ = nullptr;
}

stream& stream::operator=(stream&& other) noexcept {
    if (this != &other) {
        if (conn_ != nullptr && !ended_) cancel(v1::Cancel::ENDED);
        conn_ = std::move(other.conn_);
        pending_ = std::move(other.pending_);
        id_ = other.id_;
        ended_ = other.ended_;
        latency_ = other.latency_;
        other.conn_ = nullptr;
    }
    return *this;
}

stream::~stream() {
    if (conn_ != nullptr && !ended_) cancel(v1::Cancel::ENDED);
}

const capabilities& stream::caps() const { return conn_->caps(); }

void stream::cancel(v1::Cancel::Reason reason) {
    if (conn_ == nullptr || ended_) return;
    ended_ = true;
    conn_->stop_waiting(id_);
    v1::Cancel c;
    c.set_reason(reason);
    conn_->send_message(proto::frame_type::cancel, proto::flag_end_stream, id_, c);
    conn_->owner().metrics().cancels.inc();
    conn_->stream_ended();
}

void stream::notify_end(proto::frame_type type, const google::protobuf::MessageLite& event) {
    if (conn_ == nullptr || ended_) return;
    ended_ = true;
    conn_->send_message(type, proto::flag_end_stream, id_, event);
    conn_->stream_ended();
}

namespace {

// Completes when the client closes its side: EOF (or a reset) seen with MSG_PEEK. Data
// waiting to be read (a body, a pipelined request) cannot tell, so the watch then just ends.
awaitable<bool> client_left(asio::ip::tcp::socket& client) {
    auto [ec] = co_await client.async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
    if (ec) co_return false;
    char c;
    const ssize_t n = ::recv(client.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    co_return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace

bool stream::start(proto::frame_type type, const google::protobuf::MessageLite& event, bool end_stream,
                   std::chrono::milliseconds timeout) {
    if (!is_open()) return false;
    // Sending it would make the agent drop the connection, and every stream on it.
    if (event.ByteSizeLong() > conn_->caps().max_frame) return false;
    if (!pending_) pending_ = std::make_unique<pending>(conn_->owner().io_);
    auto& p = *pending_;
    p.timer.expires_after(timeout);
    p.w = connection::waiter{&p.timer, &p.decision};
    p.end_stream = end_stream;
    p.active = true;
    p.sent = std::chrono::steady_clock::now();
    conn_->wait_for(id_, p.w);
    conn_->send_message(type, end_stream ? proto::flag_end_stream : 0, id_, event);
    return true;
}

awaitable<call_status> stream::wait(asio::ip::tcp::socket* client, v1::Decision& out) {
    if (!is_open() || !pending_ || !pending_->active) co_return call_status::failed;
    auto conn = conn_;  // keeps the connection alive while we wait
    auto& p = *pending_;
    bool gone = false;
    if (!p.w.answered && !p.w.failed && client != nullptr) {
        // Most decisions come within a few milliseconds: only a slower one pays for watching
        // the client (a parallel wait and a readiness registration per event).
        const auto deadline = p.timer.expiry();
        const auto quick = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
        if (quick < deadline) {
            p.timer.expires_at(quick);
            co_await p.timer.async_wait(use_tuple);
            if (!p.w.answered && !p.w.failed) p.timer.expires_at(deadline);
        }
    }
    if (!p.w.answered && !p.w.failed) {
        if (client != nullptr) {
            auto r = co_await (p.timer.async_wait(use_tuple) || client_left(*client));
            gone = r.index() == 1 && std::get<1>(r);
            // The watch ended without a verdict (data pending): keep waiting for the decision.
            if (r.index() == 1 && !gone && !p.w.answered && !p.w.failed) co_await p.timer.async_wait(use_tuple);
        } else {
            co_await p.timer.async_wait(use_tuple);
        }
    }
    p.active = false;
    latency_ = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.sent);
    if (p.w.answered) {
        out.Swap(&p.decision);
        conn->owner().metrics().latency.observe(latency_);
        if (p.end_stream) {
            ended_ = true;
            conn->stream_ended();
        }
        co_return call_status::decided;
    }
    conn->stop_waiting(id_);
    if (p.w.failed) {
        ended_ = true;
        conn->stream_ended();
        co_return call_status::failed;
    }
    cancel(gone ? v1::Cancel::CLIENT_GONE : v1::Cancel::TIMEOUT);
    co_return gone ? call_status::client_gone : call_status::timeout;
}

// ---- channel ----------------------------------------------------------------------------

namespace {

// libprotobuf reports an agent's bad payloads (e.g. invalid UTF-8 in a string field) on
// stderr itself; routed here they are rate-limited like every other event line.
void protobuf_log(google::protobuf::LogLevel level, const char*, int, const std::string& message) {
    log::write(level >= google::protobuf::LOGLEVEL_ERROR ? log::level::warn : log::level::debug,
               "protobuf library message", {{"message", message}});
}

}  // namespace

channel::channel(asio::io_context& io, config::agent_config cfg, std::string target, std::shared_ptr<agent_state> state,
                 observability::agent_slot& metrics, std::uint32_t worker)
    : io_(io), cfg_(std::move(cfg)), target_(std::move(target)), state_(std::move(state)), metrics_(metrics),
      worker_(worker), tree_(make_config_tree(cfg_)) {
    static std::once_flag once;
    std::call_once(once, [] { google::protobuf::SetLogHandler(&protobuf_log); });
    proto::append_message(hello_, proto::frame_type::hello, 0, 0, make_hello(cfg_, tree_, worker_));
}

channel::~channel() = default;

void channel::start() {
    slots_.resize(cfg_.connections);
    for (std::size_t i = 0; i < cfg_.connections; ++i) {
        backoff_timers_.push_back(std::make_unique<asio::steady_timer>(io_));
        asio::co_spawn(io_, [self = shared_from_this(), i]() { return self->run_slot(i); }, asio::detached);
    }
}

awaitable<void> channel::run_slot(std::size_t index) {
    auto backoff = cfg_.reconnect_backoff;
    while (!retired_ && !stopped_) {
        auto conn = std::make_shared<connection>(*this);
        slots_[index] = conn;
        if (co_await conn->establish()) {
            backoff = cfg_.reconnect_backoff;
            notify_ready();
            co_await conn->serve();
            if (retired_ || stopped_) break;
            continue;  // reconnect at once; a failing connect then backs off
        }
        if (retired_ || stopped_) break;
        // A rejected config waits the longest: only a reload can fix it.
        const auto wait = state_->config_rejected() ? cfg_.reconnect_backoff_max : backoff;
        backoff = std::min(backoff * 2, cfg_.reconnect_backoff_max);
        auto& t = *backoff_timers_[index];
        t.expires_after(wait);
        co_await t.async_wait(use_tuple);
    }
    slots_[index].reset();
    notify_ready();
}

connection* channel::pick() const {
    connection* best = nullptr;
    for (const auto& c : slots_)
        if (c && c->ready() && c->has_room() && (best == nullptr || c->open_streams() < best->open_streams()))
            best = c.get();
    return best;
}

void channel::notify_ready() {
    for (auto* t : ready_waiters_) t->cancel();
    ready_waiters_.clear();
}

awaitable<stream> channel::open_stream(std::chrono::milliseconds wait) {
    if (retired_ || stopped_) co_return stream{};
    connection* c = pick();
    if (c == nullptr) {
        // Wait for a connection being established (start-up, reconnect) rather than fail.
        asio::steady_timer t(io_, wait);
        ready_waiters_.push_back(&t);
        co_await t.async_wait(use_tuple);
        std::erase(ready_waiters_, &t);
        c = pick();
        if (c == nullptr) co_return stream{};
    }
    const std::uint32_t id = c->open_stream();
    co_return stream(c->shared_from_this(), id);
}

void channel::retire() {
    retired_ = true;
    for (auto& t : backoff_timers_) t->cancel();
    for (auto& c : slots_)
        if (c) c->drain("configuration changed");
    notify_ready();
}

void channel::shutdown() {
    stopped_ = true;
    retired_ = true;
    for (auto& t : backoff_timers_) t->cancel();
    for (auto& c : slots_)
        if (c) c->close();
    notify_ready();
}

}  // namespace sentinel::agent
