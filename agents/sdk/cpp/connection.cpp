#include "agents/sdk/cpp/connection.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agents/sdk/cpp/log.hpp"

namespace sentinel::agent_sdk {

namespace asio = boost::asio;
namespace proto = agent_protocol;
using proto::frame_type;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk = 64 * 1024;
// Past this much unsent output the read loop stops reading: a proxy that sends events but does
// not read decisions cannot make the agent buffer without bound.
constexpr std::size_t write_high_water = 4u << 20;

v1::EventType event_type_of(frame_type t) {
    switch (t) {
    case frame_type::request_headers: return v1::REQUEST_HEADERS;
    case frame_type::request_body: return v1::REQUEST_BODY;
    case frame_type::response_headers: return v1::RESPONSE_HEADERS;
    case frame_type::response_body: return v1::RESPONSE_BODY;
    case frame_type::request_complete: return v1::REQUEST_COMPLETE;
    case frame_type::websocket_frame: return v1::WEBSOCKET_FRAME;
    default: return v1::EVENT_TYPE_UNSPECIFIED;
    }
}

std::string describe_stream(frame_type t, std::uint32_t stream_id) {
    return std::string(proto::type_name(t)) + " on stream " + std::to_string(stream_id);
}

}  // namespace

connection::connection(server_core& core, socket_type socket, std::uint64_t id)
    : core_(core),
      socket_(std::move(socket)),
      id_(id),
      writable_(core.io),
      handshake_timer_(core.io) {
    ++core_.connections;
}

connection::~connection() { --core_.connections; }

void connection::start() {
    auto self = shared_from_this();
    handshake_timer_.expires_after(core_.options.handshake_timeout);
    handshake_timer_.async_wait([self](const boost::system::error_code& ec) {
        if (ec || self->phase_ != phase::awaiting_hello || self->closed_) return;
        log_line("connection " + std::to_string(self->id_) + ": no HELLO within the handshake timeout; closing");
        self->close();
    });
    asio::co_spawn(core_.io, read_loop(), asio::detached);
}

asio::awaitable<void> connection::read_loop() {
    auto self = shared_from_this();
    in_.resize(read_chunk);
    for (;;) {
        // Every complete frame in the buffer is handled before the next read, so the decisions
        // of one read (inline handlers) leave in one write.
        for (;;) {
            proto::frame_view f;
            std::size_t consumed = 0;
            const auto status = proto::decode_frame({in_.data() + in_begin_, in_end_ - in_begin_}, proto::sender::agent,
                                                    core_.options.max_frame_size, f, consumed);
            if (status == proto::decode_status::need_more) break;
            if (status != proto::decode_status::ok) {
                // decode_frame fails only on a complete header: name what it said.
                const auto* h = reinterpret_cast<const unsigned char*>(in_.data() + in_begin_);
                char what[64];
                std::snprintf(what, sizeof what, " (type 0x%02x, flags 0x%02x, stream %u, length %u)", h[4], h[5],
                              (unsigned{h[6]} << 24) | (unsigned{h[7]} << 16) | (unsigned{h[8]} << 8) | h[9],
                              (unsigned{h[0]} << 24) | (unsigned{h[1]} << 16) | (unsigned{h[2]} << 8) | h[3]);
                protocol_error(std::string(proto::describe(status)) + what);
                co_return;
            }
            // The payload views the buffer; handlers get parsed copies, so it may move later.
            if (!handle_frame(f) || closed_) co_return;
            in_begin_ += consumed;
        }
        if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;

        while (!closed_ && out_pending_.size() + out_inflight_.size() > write_high_water) {
            writable_.expires_at(asio::steady_timer::time_point::max());
            co_await writable_.async_wait(use_tuple);
        }
        if (closed_) co_return;

        // Room for the rest of the frame being received (its length was checked against the
        // limit by decode_frame), and at least one read chunk.
        std::size_t need = read_chunk;
        if (in_end_ - in_begin_ >= proto::frame_header_size) {
            const auto* p = reinterpret_cast<const unsigned char*>(in_.data() + in_begin_);
            const std::size_t length =
                (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
            need = std::max(need, proto::frame_header_size + length - (in_end_ - in_begin_));
        }
        if (in_.size() - in_end_ < need) {
            if (in_begin_ > 0) {
                std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
                in_end_ -= in_begin_;
                in_begin_ = 0;
            }
            if (in_.size() - in_end_ < need) in_.resize(in_end_ + need);
        } else if (in_begin_ == 0 && in_end_ == 0 && in_.size() > 4 * read_chunk) {
            // A large frame is done: give its memory back rather than keep the peak per connection.
            in_.resize(read_chunk);
            in_.shrink_to_fit();
        }

        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(in_.data() + in_end_, in_.size() - in_end_), use_tuple);
        if (ec || n == 0) {
            close();
            co_return;
        }
        in_end_ += n;
    }
}

bool connection::protocol_error(std::string_view why) {
    ++core_.protocol_errors;
    log_line("connection " + std::to_string(id_) + ": protocol error: " + std::string(why) + "; closing");
    close();
    return false;
}

bool connection::handle_frame(const proto::frame_view& f) {
    const auto type = f.header.type;
    if (phase_ == phase::awaiting_hello) {
        if (type != frame_type::hello)
            return protocol_error("expected HELLO, got " + std::string(proto::type_name(type)));
        return handle_hello(f.payload);
    }
    if (phase_ == phase::closing) return false;
    if (type == frame_type::hello) return protocol_error("a second HELLO");
    if (f.header.stream_id == 0) return handle_control(f);
    return handle_stream_frame(f);
}

bool connection::handle_hello(std::string_view payload) {
    v1::Hello hello;
    if (!proto::parse_message(payload, hello)) return protocol_error("unparseable HELLO payload");
    handshake_timer_.cancel();
    // The proxy's limit bounds what we send; 0 means the default, and nobody may claim more
    // than the protocol's ceiling.
    peer_max_frame_ = hello.max_frame_size() == 0 ? proto::default_max_frame_size
                                                  : std::min(hello.max_frame_size(), proto::max_frame_size_limit);

    v1::HelloAck ack;
    ack.set_agent_name(core_.options.name);
    ack.set_agent_version(core_.options.version);
    ack.set_max_frame_size(core_.options.max_frame_size);

    const auto& versions = hello.versions();
    if (std::find(versions.begin(), versions.end(), proto::protocol_version) == versions.end()) {
        // PROTOCOL.md §3: version 0 and a config error naming what we speak, then close.
        std::string offered;
        for (auto v : versions) offered += (offered.empty() ? "" : ", ") + std::to_string(v);
        auto* e = ack.add_config_errors();
        e->set_message("this agent speaks agent protocol version 1 only; the proxy offered [" + offered + "]");
        log_line("connection " + std::to_string(id_) + ": " + e->message() + "; closing");
        ack.set_version(0);
        phase_ = phase::closing;
        close_after_write_ = true;
        queue(frame_type::hello_ack, 0, ack);
        return false;
    }

    std::vector<config_error> errors;
    try {
        handler_ = core_.make_handler();
        errors = handler_->configure(hello.config());
        *ack.mutable_capabilities() = handler_->capabilities();
    } catch (const std::exception& e) {
        return protocol_error(std::string("the handler failed to configure: ") + e.what());
    } catch (...) {
        return protocol_error("the handler failed to configure");
    }
    ack.set_version(proto::protocol_version);
    for (auto& e : errors) {
        auto* out = ack.add_config_errors();
        out->set_path(std::move(e.path));
        out->set_message(std::move(e.message));
    }
    for (auto ev : ack.capabilities().events())
        if (ev > 0 && ev < 32) subscribed_ |= 1u << ev;
    max_streams_ = ack.capabilities().max_concurrency() != 0 ? ack.capabilities().max_concurrency()
                                                             : core_.options.max_streams_per_connection;
    queue(frame_type::hello_ack, 0, ack);

    if (!ack.config_errors().empty()) {
        for (const auto& e : ack.config_errors())
            log_line("connection " + std::to_string(id_) + ": config rejected: " +
                     (e.path().empty() ? std::string("config") : e.path()) + ": " + e.message());
        phase_ = phase::no_streams;
    } else if (hello.validate_only()) {
        phase_ = phase::no_streams;
    } else {
        phase_ = phase::ready;
        if (core_.health.status() != v1::Health::HEALTHY) queue(frame_type::health, 0, core_.health);
    }
    return true;
}

bool connection::handle_control(const proto::frame_view& f) {
    switch (f.header.type) {
    case frame_type::ping: {
        v1::Ping ping;
        if (!proto::parse_message(f.payload, ping)) return protocol_error("unparseable PING payload");
        queue(frame_type::pong, 0, ping);
        return true;
    }
    case frame_type::pong: {
        v1::Ping pong;  // we send no PINGs; a PONG is harmless but must still be well formed
        if (!proto::parse_message(f.payload, pong)) return protocol_error("unparseable PONG payload");
        return true;
    }
    case frame_type::drain: {
        // The proxy opens no more streams here and closes the connection when they end.
        v1::Drain drain;
        if (!proto::parse_message(f.payload, drain)) return protocol_error("unparseable DRAIN payload");
        return true;
    }
    default:
        // decode_frame admits no other connection-level type from the proxy.
        return protocol_error("unexpected " + std::string(proto::type_name(f.header.type)));
    }
}

bool connection::parse_event(const proto::frame_view& f, event& out) {
    auto parse = [&](auto message) {
        if (!proto::parse_message(f.payload, message)) return false;
        out = std::move(message);
        return true;
    };
    switch (f.header.type) {
    case frame_type::request_headers: return parse(v1::RequestHeaders{});
    case frame_type::request_body:
    case frame_type::response_body: return parse(v1::BodyChunk{});
    case frame_type::response_headers: return parse(v1::ResponseHeaders{});
    case frame_type::websocket_frame: return parse(v1::WebSocketFrame{});
    case frame_type::request_complete: return parse(v1::RequestComplete{});
    default: return false;
    }
}

bool connection::handle_stream_frame(const proto::frame_view& f) {
    const auto type = f.header.type;
    const auto stream_id = f.header.stream_id;
    if (phase_ != phase::ready)
        return protocol_error(describe_stream(type, stream_id) + " on a connection that takes no streams " +
                              "(validate_only HELLO or rejected config)");

    if (type == frame_type::cancel) {
        v1::Cancel cancel;
        if (!proto::parse_message(f.payload, cancel)) return protocol_error("unparseable CANCEL payload");
        // An unknown stream is not an error: the CANCEL crossed our answer to its last event.
        if (auto it = streams_.find(stream_id); it != streams_.end()) {
            it->second->cancel(cancel.reason());
            end_stream(stream_id);
        }
        return true;
    }

    const v1::EventType et = event_type_of(type);
    if ((subscribed_ & (1u << et)) == 0)
        return protocol_error(describe_stream(type, stream_id) + ": this agent did not subscribe to that event");

    std::shared_ptr<stream_context> s;
    if (auto it = streams_.find(stream_id); it != streams_.end()) {
        s = it->second;
        if (s->awaiting_decision_)
            return protocol_error(describe_stream(type, stream_id) + " while the previous event awaits its decision");
    } else {
        // Any unknown id opens a stream. Ids grow in the order the proxy *allocates* them, not
        // in the order their first event is sent (an agent that only wants RESPONSE_HEADERS
        // hears of a stream long after later ones), so "lower than the last" proves nothing,
        // and remembering every ended id would be unbounded.
        if (streams_.size() >= max_streams_)
            return protocol_error("more than " + std::to_string(max_streams_) + " open streams");
        s = std::make_shared<stream_context>(stream_id, id_);
    }
    if ((type == frame_type::request_body && !s->more_request_body_) ||
        (type == frame_type::response_body && !s->more_response_body_))
        return protocol_error(describe_stream(type, stream_id) + " without a need_more_body answer before it");

    event ev;
    if (!parse_event(f, ev))
        return protocol_error("unparseable " + std::string(proto::type_name(type)) + " payload on stream " +
                              std::to_string(stream_id));

    if (streams_.emplace(stream_id, s).second) ++core_.open_streams;
    if (type == frame_type::request_complete) {
        // Not answered: the stream ends now (PROTOCOL.md §4); the handler still gets to see it.
        end_stream(stream_id);
    } else {
        s->awaiting_decision_ = true;
        s->end_after_decision_ = (f.header.flags & proto::flag_end_stream) != 0;
    }
    dispatch(std::move(s), type, std::move(ev));
    return true;
}

void connection::dispatch(std::shared_ptr<stream_context> s, frame_type type, event ev) {
    if (!core_.pool) {
        auto o = invoke(*s, type, ev);
        finish(s, type, std::move(o));
        return;
    }
    asio::post(*core_.pool, [self = shared_from_this(), s = std::move(s), type, ev = std::move(ev)]() mutable {
        auto o = self->invoke(*s, type, ev);
        // Moved, not copied: the last reference to the connection must drop on the I/O thread.
        auto& io = self->core_.io;
        asio::post(io, [self = std::move(self), s = std::move(s), type, o = std::move(o)]() mutable {
            self->finish(s, type, std::move(o));
        });
    });
}

connection::outcome connection::invoke(stream_context& s, frame_type type, event& ev) noexcept {
    outcome o;
    // A stream cancelled while its event waited for a worker is not worth a handler call.
    if (s.cancelled()) return o;
    try {
        handler& h = *handler_;
        switch (type) {
        case frame_type::request_headers: o.decision = h.on_request_headers(s, std::get<v1::RequestHeaders>(ev)); break;
        case frame_type::request_body: o.decision = h.on_request_body(s, std::get<v1::BodyChunk>(ev)); break;
        case frame_type::response_headers:
            o.decision = h.on_response_headers(s, std::get<v1::ResponseHeaders>(ev));
            break;
        case frame_type::response_body: o.decision = h.on_response_body(s, std::get<v1::BodyChunk>(ev)); break;
        case frame_type::websocket_frame:
            o.decision = h.on_websocket_frame(s, std::get<v1::WebSocketFrame>(ev));
            break;
        case frame_type::request_complete: h.on_request_complete(s, std::get<v1::RequestComplete>(ev)); break;
        default: break;
        }
        o.ran = true;
    } catch (const std::exception& e) {
        o.failure = e.what();
        if (o.failure.empty()) o.failure = "exception";
    } catch (...) {
        o.failure = "unknown exception";
    }
    return o;
}

void connection::finish(const std::shared_ptr<stream_context>& s, frame_type type, outcome o) {
    if (closed_) return;
    if (!o.failure.empty()) {
        log_line("connection " + std::to_string(id_) + ": handler failed on " + describe_stream(type, s->stream_id()) +
                 ": " + o.failure + "; closing");
        close();
        return;
    }
    if (type == frame_type::request_complete) return;
    // CANCEL (or the connection closing) already ended the stream: PROTOCOL.md §4 forbids an answer.
    if (s->cancelled() || !o.ran) {
        ++core_.dropped_decisions;
        return;
    }
    v1::Decision& d = o.decision;
    if (d.action_case() == v1::Decision::ACTION_NOT_SET) d.set_allow(true);
    if (d.ByteSizeLong() > peer_max_frame_) {
        log_line("connection " + std::to_string(id_) + ": the decision for " + describe_stream(type, s->stream_id()) +
                 " is " + std::to_string(d.ByteSizeLong()) + " bytes, over the proxy's limit of " +
                 std::to_string(peer_max_frame_) + "; closing");
        close();
        return;
    }
    s->awaiting_decision_ = false;
    const bool more = d.action_case() == v1::Decision::kNeedMoreBody;
    if (type == frame_type::request_headers || type == frame_type::request_body) s->more_request_body_ = more;
    if (type == frame_type::response_headers || type == frame_type::response_body) s->more_response_body_ = more;
    // Ended before the frame is queued, so a peer that has read the decision sees the stream gone.
    if (s->end_after_decision_) end_stream(s->stream_id());
    queue(frame_type::decision, s->stream_id(), d);
}

void connection::end_stream(std::uint32_t stream_id) {
    if (streams_.erase(stream_id) == 0) return;
    --core_.open_streams;
    if (core_.stream_ended) core_.stream_ended();
}

template <class Message>
void connection::queue(frame_type type, std::uint32_t stream_id, const Message& m) {
    if (closed_) return;
    proto::append_message(out_pending_, type, 0, stream_id, m);
    schedule_write();
}

void connection::schedule_write() {
    if (writing_ || write_scheduled_) return;
    // Deferred to the end of the current turn, so the frames produced by one read (or by
    // several worker completions) coalesce into one write.
    write_scheduled_ = true;
    asio::post(core_.io, [self = shared_from_this()] {
        self->write_scheduled_ = false;
        self->write_now();
    });
}

void connection::write_now() {
    if (closed_ || writing_ || out_pending_.empty()) return;
    writing_ = true;
    out_inflight_.swap(out_pending_);
    asio::async_write(socket_, asio::buffer(out_inflight_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                          self->writing_ = false;
                          self->out_inflight_.clear();
                          if (ec) {
                              self->close();
                              return;
                          }
                          self->writable_.cancel();
                          if (!self->out_pending_.empty()) {
                              self->write_now();
                          } else if (self->close_after_write_) {
                              boost::system::error_code ignored;
                              self->socket_.shutdown(socket_type::shutdown_send, ignored);
                              self->close();
                          }
                      });
}

void connection::send_health(const v1::Health& health) {
    if (phase_ == phase::ready) queue(frame_type::health, 0, health);
}

void connection::drain(std::string_view reason) {
    if (phase_ != phase::ready) {
        close();
        return;
    }
    v1::Drain d;
    d.set_reason(std::string(reason));
    queue(frame_type::drain, 0, d);
}

void connection::close() {
    if (closed_) return;
    closed_ = true;
    // Handlers still running for these streams see cancelled() and their answers are dropped.
    for (auto& [stream_id, s] : streams_) s->cancel(v1::Cancel::SHUTDOWN);
    const std::size_t ended = streams_.size();
    streams_.clear();
    core_.open_streams -= ended;
    boost::system::error_code ignored;
    socket_.close(ignored);
    writable_.cancel();
    handshake_timer_.cancel();
    out_pending_.clear();
    if (ended > 0 && core_.stream_ended) core_.stream_ended();
    // The server drops its reference; callers hold their own `self` for the rest of this turn.
    if (core_.connection_closed) core_.connection_closed(id_);
}

}  // namespace sentinel::agent_sdk
