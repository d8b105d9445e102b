#include "http/h2/session.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "common/xoshiro.hpp"
#include "http/h2/outbound.hpp"
#include "http/h2/translate.hpp"
#include "http/http1/chunked.hpp"

namespace sentinel::h2 {

namespace {

using clock = std::chrono::steady_clock;

// Abuse thresholds (docs/architecture/http2.md, "Abuse protection"). Token buckets per
// connection: `burst` frames at once, then `rate` per second. Legitimate clients stay far
// below: browsers send a handful of SETTINGS and PINGs per connection and reset streams when
// the user navigates away.
constexpr double reset_burst = 100, reset_rate = 10;       // resets before the response ended
constexpr double control_burst = 100, control_rate = 10;   // SETTINGS, PING (each its own bucket)
constexpr double empty_burst = 100, empty_rate = 10;       // frames that carry and end nothing
constexpr int max_continuations = 32;                      // CONTINUATION frames in one block
constexpr double bomb_ratio = 8;                           // decoded/compressed size of a bomb
constexpr std::uint64_t max_refused = 100;                 // refused streams per connection
// A pipeline that writes faster than the client reads waits above this many unsent bytes.
constexpr std::size_t connection_window_floor = 1 << 20;

struct bucket {
    double tokens, burst, rate;
    clock::time_point last{};
    bucket(double b, double r) : tokens(b), burst(b), rate(r) {}
    bool take(clock::time_point now) {
        if (last != clock::time_point{}) {
            const double elapsed = std::chrono::duration<double>(now - last).count();
            tokens = std::min(burst, tokens + elapsed * rate);
        }
        last = now;
        if (tokens < 1) return false;
        tokens -= 1;
        return true;
    }
};

struct stream_state {
    request_builder request;
    response_translator response;
    std::string in;           // request bytes for the pipeline
    std::size_t in_read = 0;
    std::size_t unconsumed = 0;  // DATA bytes delivered but not yet read (flow control)
    detail::outbound_body out;  // response body bytes for DATA frames
    std::size_t decoded = 0;  // header list size so far
    bool trailers = false;    // the header block being received is the trailer section
    bool refused = false;     // refused or malformed: no pipeline, its frames are ignored
    bool too_large = false;   // header list over the limit: answered 431
    bool started = false;     // a pipeline runs (or ran) for it
    bool finished = false;    // its pipeline ended
    bool closed = false;      // nghttp2 closed it
    bool request_ended = false;
    bool submitted = false;   // the final response head was submitted
    bool end_sent = false;    // END_STREAM went out
    char status_text[4] = {};
};


}  // namespace

const char* to_string(abuse kind) {
    static constexpr const char* names[] = {"rapid_reset", "continuation_flood", "settings_flood", "ping_flood",
                                            "empty_frames", "hpack_bomb", "too_many_streams"};
    static_assert(std::size(names) == static_cast<std::size_t>(abuse::count_));
    return names[static_cast<std::size_t>(kind)];
}

struct server_session::impl {
    impl(server_session& o, session_owner& ow, const settings& s, std::uint64_t seed)
        : self(o), owner(ow), config(s), rng(seed) {}
    ~impl() {
        if (session) nghttp2_session_del(session);
    }

    server_session& self;
    session_owner& owner;
    settings config;
    nghttp2_session* session = nullptr;
    std::unordered_map<std::int32_t, std::unique_ptr<stream_state>> streams;
    xoshiro256ss rng;
    clock::time_point now{};
    bucket resets{reset_burst, reset_rate};
    bucket settings_frames{control_burst, control_rate};
    bucket pings{control_burst, control_rate};
    bucket empties{empty_burst, empty_rate};
    std::size_t block_bytes = 0;  // compressed size of the header block being received
    int continuations = 0;
    // Client stream ids skipped so far (never opened, so implicitly closed, RFC 9113 §5.1.1),
    // as ranges: HEADERS on one of them is a connection error. nghttp2 would ignore it.
    std::int32_t last_client_stream = -1;
    std::vector<std::pair<std::int32_t, std::int32_t>> skipped;
    std::string scratch;          // a request head being built
    std::vector<nghttp2_nv> nva;  // reused for response heads
    bool goaway = false;

    stream_state* find(std::int32_t id) {
        const auto it = streams.find(id);
        return it == streams.end() ? nullptr : it->second.get();
    }

    // Ends the connection for abuse: GOAWAY(ENHANCE_YOUR_CALM), counted once.
    int flag(abuse kind) {
        if (!self.abused_) {
            self.abused_ = kind;
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }

    void refuse(std::int32_t id, stream_state& s, std::uint32_t code) {
        s.refused = true;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, code);
    }

    void erase_if_done(std::int32_t id, stream_state& s) {
        if (s.closed && (!s.started || s.finished)) streams.erase(id);
    }

    // ---- receiving -------------------------------------------------------------------------

    int on_begin_frame(const nghttp2_frame_hd& hd) {
        const bool end_stream = hd.flags & NGHTTP2_FLAG_END_STREAM;
        const bool end_headers = hd.flags & NGHTTP2_FLAG_END_HEADERS;
        switch (hd.type) {
        case NGHTTP2_HEADERS:
            block_bytes = hd.length;
            continuations = 0;
            if (!track_stream_id(hd.stream_id)) {
                nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            if (hd.length == 0 && !end_headers && !empties.take(now)) return flag(abuse::empty_frames);
            break;
        case NGHTTP2_CONTINUATION:
            block_bytes += hd.length;
            if (++continuations > max_continuations) return flag(abuse::continuation_flood);
            if (hd.length == 0 && !end_headers && !empties.take(now)) return flag(abuse::empty_frames);
            break;
        case NGHTTP2_DATA:
            if (hd.length == 0 && !end_stream && !empties.take(now)) return flag(abuse::empty_frames);
            break;
        case NGHTTP2_SETTINGS:
            if (!(hd.flags & NGHTTP2_FLAG_ACK) && !settings_frames.take(now)) return flag(abuse::settings_flood);
            break;
        case NGHTTP2_PING:
            if (!(hd.flags & NGHTTP2_FLAG_ACK) && !pings.take(now)) return flag(abuse::ping_flood);
            break;
        default: break;
        }
        return 0;
    }

    // False for HEADERS that would open a stream below one already opened (RFC 9113 §5.1.1).
    bool track_stream_id(std::int32_t id) {
        if (id % 2 == 0) return true;  // not a client stream: nghttp2 refuses it
        if (id > last_client_stream) {
            if (id > last_client_stream + 2) {
                if (skipped.size() == 16) skipped.erase(skipped.begin());  // bounded: forget the oldest
                skipped.emplace_back(last_client_stream + 2, id - 2);
            }
            last_client_stream = id;
            return true;
        }
        for (const auto& [from, to] : skipped)
            if (id >= from && id <= to) return false;
        return true;  // a stream opened before: trailers, or nghttp2's STREAM_CLOSED handling
    }

    int on_begin_headers(const nghttp2_frame& frame) {
        if (frame.hd.type != NGHTTP2_HEADERS) return 0;
        const std::int32_t id = frame.hd.stream_id;
        if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
            auto s = std::make_unique<stream_state>();
            // Streams whose pipeline still runs after a reset count too: a reset does not
            // free the work it started (CVE-2023-44487).
            if (self.running_ >= config.max_concurrent_streams) refuse(id, *s, NGHTTP2_REFUSED_STREAM);
            streams[id] = std::move(s);
        } else if (auto* s = find(id)) {
            s->trailers = true;
            s->decoded = 0;  // the trailer section is a header list of its own
        }
        return 0;
    }

    int on_header(const nghttp2_frame& frame, std::string_view name, std::string_view value) {
        auto* s = find(frame.hd.stream_id);
        if (s == nullptr) return 0;
        s->decoded += name.size() + value.size() + field_overhead;
        if (s->decoded > config.max_header_list_size) {
            // Far more decoded than received: references to the dynamic table, repeated.
            // Checked on every field past the limit, so more references cannot slip by.
            if (static_cast<double>(s->decoded) > bomb_ratio * static_cast<double>(block_bytes))
                return flag(abuse::hpack_bomb);
            // Trailers arrive after the head went to the pipeline: no 431 is possible then.
            if (s->trailers && !s->refused) refuse(frame.hd.stream_id, *s, NGHTTP2_PROTOCOL_ERROR);
            s->too_large = true;
            return 0;
        }
        if (s->refused || s->too_large) return 0;
        if (s->trailers) {
            s->request.add_trailer(name, value);
            return 0;
        }
        if (s->request.add(name, value) == request_builder::field_status::malformed)
            refuse(frame.hd.stream_id, *s, NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }

    void on_request_head(std::int32_t id, stream_state& s, bool end_stream) {
        if (s.too_large) {
            // RFC 9113 §10.5.1: a header section larger than the server handles gets 431.
            std::array<nghttp2_nv, 2> head{detail::make_nv(":status", "431"), detail::make_nv("content-length", "0")};
            s.refused = true;
            nghttp2_submit_response(session, id, head.data(), head.size(), nullptr);
            return;
        }
        std::array<std::uint8_t, 16> nonce;
        for (std::size_t i = 0; i < nonce.size(); i += 8) {
            const std::uint64_t r = rng.next();
            std::memcpy(nonce.data() + i, &r, 8);
        }
        const std::string key = s.request.extended_connect() ? websocket_key(nonce) : std::string();
        if (!s.request.build(end_stream, key, scratch)) {
            refuse(id, s, NGHTTP2_PROTOCOL_ERROR);
            return;
        }
        s.in.swap(scratch);
        s.request_ended = end_stream;
        s.response.start(s.request.method(), s.request.body() == request_builder::body_kind::tunnel);
        s.started = true;
        ++self.running_;
        owner.on_request(id);
    }

    void on_request_end(std::int32_t id, stream_state& s) {
        if (s.request.body() == request_builder::body_kind::chunked) {
            http1::append_last_chunk(s.in);
            // The trailer section goes between the last chunk and the final CRLF.
            if (!s.request.trailers().empty()) s.in.insert(s.in.size() - 2, s.request.trailers());
        }
        s.request_ended = true;
        owner.on_stream_event(id);
    }

    int on_frame_recv(const nghttp2_frame& frame) {
        const std::int32_t id = frame.hd.stream_id;
        const bool end_stream = frame.hd.flags & NGHTTP2_FLAG_END_STREAM;
        switch (frame.hd.type) {
        case NGHTTP2_HEADERS: {
            auto* s = find(id);
            if (s == nullptr || s->refused) return 0;
            if (!s->trailers) {
                on_request_head(id, *s, end_stream);
            } else if (s->started && !s->finished && end_stream) {
                on_request_end(id, *s);
            }
            return 0;
        }
        case NGHTTP2_DATA: {
            auto* s = find(id);
            if (s != nullptr && s->started && !s->finished && end_stream) on_request_end(id, *s);
            return 0;
        }
        default: return 0;
        }
    }

    int on_data(std::int32_t id, const std::uint8_t* data, std::size_t len) {
        auto* s = find(id);
        if (s == nullptr || !s->started || s->finished || s->closed) {
            nghttp2_session_consume(session, id, len);  // nobody will read it
            return 0;
        }
        const char* bytes = reinterpret_cast<const char*>(data);
        if (s->request.body() == request_builder::body_kind::chunked) {
            http1::append_chunk_header(s->in, len);
            s->in.append(bytes, len);
            http1::append_chunk_end(s->in);
        } else {
            s->in.append(bytes, len);
        }
        s->unconsumed += len;
        owner.on_stream_event(id);
        return 0;
    }

    int on_stream_close(std::int32_t id) {
        auto* s = find(id);
        if (s == nullptr) return 0;
        s->closed = true;
        if (s->unconsumed > 0) {
            nghttp2_session_consume(session, id, s->unconsumed);
            s->unconsumed = 0;
        }
        // A stream whose pipeline started and that closed before its response ended, without
        // our doing: the client reset it, or made nghttp2 reset it with a bad frame
        // (CVE-2023-44487, and CVE-2025-8671 "MadeYouReset"). Either way work was started and
        // thrown away.
        const bool running = s->started && !s->finished;
        const bool premature = running && !s->end_sent;
        erase_if_done(id, *s);  // `s` may be gone from here on
        if (running) owner.on_stream_event(id);
        // Called while sending too (a reset nghttp2 provoked closes the stream once its
        // RST_STREAM is out): no callback failure here, the GOAWAY is queued all the same.
        if (premature && !resets.take(now)) flag(abuse::rapid_reset);
        return 0;
    }

    int on_frame_send(const nghttp2_frame& frame) {
        const std::int32_t id = frame.hd.stream_id;
        if (frame.hd.type == NGHTTP2_GOAWAY && frame.goaway.error_code == NGHTTP2_PROTOCOL_ERROR &&
            std::string_view(reinterpret_cast<const char*>(frame.goaway.opaque_data), frame.goaway.opaque_data_len)
                    .find("max concurrent streams exceeded") != std::string_view::npos) {
            // nghttp2 ends a connection that opens streams beyond the acknowledged
            // SETTINGS_MAX_CONCURRENT_STREAMS with PROTOCOL_ERROR (RFC 9113 §5.1.2): count it.
            if (!self.abused_) self.abused_ = abuse::too_many_streams;
            return 0;
        }
        if (frame.hd.type == NGHTTP2_RST_STREAM && frame.rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
            if (++self.refused_ > max_refused) flag(abuse::too_many_streams);
            return 0;
        }
        if ((frame.hd.type == NGHTTP2_HEADERS || frame.hd.type == NGHTTP2_DATA) &&
            (frame.hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            auto* s = find(id);
            if (s == nullptr) return 0;
            s->end_sent = true;
            // A complete response before the whole request (413, a refusal): ask the client
            // to stop sending without error (RFC 9113 §8.1).
            if (!s->request_ended) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
        return 0;
    }

    // ---- sending ---------------------------------------------------------------------------

    ssize_t read_body(std::int32_t id, std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
        auto* s = find(id);
        if (s == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        // The upstream's chunked trailers (grpc-status and the like) end the stream.
        const ssize_t n = s->out.fill(session, id, buf, length, flags, s->response.complete(), s->response.trailers(), nva);
        if (n > 0 && s->started && !s->finished) owner.on_stream_event(id);  // room to write
        return n;
    }

    void submit_head(std::int32_t id, stream_state& s, bool final) {
        const int code = s.response.status_code();
        s.status_text[0] = static_cast<char>('0' + code / 100 % 10);
        s.status_text[1] = static_cast<char>('0' + code / 10 % 10);
        s.status_text[2] = static_cast<char>('0' + code % 10);
        nva.clear();
        nva.push_back(detail::make_nv(":status", std::string_view(s.status_text, 3)));
        for (const auto& f : s.response.fields()) nva.push_back(detail::make_nv(f.name, f.value));
        if (!final) {
            nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, id, nullptr, nva.data(), nva.size(), nullptr);
            return;
        }
        s.submitted = true;
        if (!s.response.body_expected()) {
            nghttp2_submit_response(session, id, nva.data(), nva.size(), nullptr);
            return;
        }
        nghttp2_data_provider provider{};
        provider.read_callback = [](nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                                    std::uint32_t* flags, nghttp2_data_source*, void* user) -> ssize_t {
            return static_cast<impl*>(user)->read_body(stream_id, buf, length, flags);
        };
        nghttp2_submit_response(session, id, nva.data(), nva.size(), &provider);
    }

    void resume(std::int32_t id, stream_state& s) { s.out.resume(session, id, s.response.complete()); }
};

server_session::server_session(const settings& s, session_owner& owner, std::uint64_t seed)
    : impl_(std::make_unique<impl>(*this, owner, s, seed)) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(
        cb, [](nghttp2_session*, const nghttp2_frame_hd* hd, void* u) { return static_cast<impl*>(u)->on_begin_frame(*hd); });
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return static_cast<impl*>(u)->on_begin_headers(*f); });
    detail::set_receive_callbacks<impl>(cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, std::int32_t id, std::uint32_t, void* u) { return static_cast<impl*>(u)->on_stream_close(id); });
    nghttp2_session_callbacks_set_on_frame_send_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return static_cast<impl*>(u)->on_frame_send(*f); });

    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Request DATA is acknowledged when the pipeline reads it (read()), not on arrival.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    // nghttp2's own guards stay as a backstop above ours (which count and explain).
    // The same limit as ours: nghttp2 also sees the CONTINUATIONs of blocks it ignores.
    nghttp2_option_set_max_continuations(opt, max_continuations);
    nghttp2_option_set_stream_reset_rate_limit(opt, static_cast<std::uint64_t>(reset_burst) * 2,
                                               static_cast<std::uint64_t>(reset_rate) * 2);
    nghttp2_session_server_new2(&impl_->session, cb, impl_.get(), opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);

    const std::array<nghttp2_settings_entry, 5> iv{{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s.initial_window_size},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, s.max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s.max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    }};
    nghttp2_submit_settings(impl_->session, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    nghttp2_session_set_local_window_size(impl_->session, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<std::int32_t>(std::max<std::uint32_t>(
                                              s.initial_window_size, connection_window_floor)));
}

server_session::~server_session() = default;

bool server_session::receive(std::string_view bytes, std::chrono::steady_clock::time_point now) {
    impl_->now = now;
    const auto rv = nghttp2_session_mem_recv(impl_->session, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                             bytes.size());
    if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) impl_->flag(abuse::continuation_flood);
    return rv >= 0 && !abused_;
}

void server_session::send(std::string& out, std::size_t limit) {
    detail::append_output(impl_->session, out, limit);
}

bool server_session::want_read() const { return nghttp2_session_want_read(impl_->session) != 0; }
bool server_session::want_write() const { return nghttp2_session_want_write(impl_->session) != 0; }

void server_session::shutdown() {
    if (impl_->goaway) return;
    impl_->goaway = true;
    nghttp2_submit_goaway(impl_->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(impl_->session),
                          NGHTTP2_NO_ERROR, nullptr, 0);
}

std::size_t server_session::read(std::int32_t id, char* out, std::size_t room) {
    auto* s = impl_->find(id);
    if (s == nullptr || s->closed) return 0;
    const std::size_t n = std::min(room, s->in.size() - s->in_read);
    std::memcpy(out, s->in.data() + s->in_read, n);
    s->in_read += n;
    if (s->in_read == s->in.size()) {
        s->in.clear();
        s->in_read = 0;
        // Everything delivered was read: open the window for more.
        if (s->unconsumed > 0) {
            nghttp2_session_consume(impl_->session, id, s->unconsumed);
            s->unconsumed = 0;
        }
    }
    return n;
}

bool server_session::request_done(std::int32_t id) const {
    const auto* s = impl_->find(id);
    return s == nullptr || (s->request_ended && s->in_read == s->in.size());
}

bool server_session::stream_gone(std::int32_t id) const {
    const auto* s = impl_->find(id);
    return s == nullptr || (s->closed && !s->end_sent);
}

bool server_session::write(std::int32_t id, std::string_view bytes) {
    auto* s = impl_->find(id);
    if (s == nullptr || s->closed) return false;
    for (;;) {
        const auto st = s->response.feed(bytes, s->out.bytes);
        if (st == response_translator::status::error) {
            impl_->refuse(id, *s, NGHTTP2_INTERNAL_ERROR);
            return false;
        }
        if (st == response_translator::status::informational) impl_->submit_head(id, *s, false);
        if (st == response_translator::status::head) impl_->submit_head(id, *s, true);
        if (st == response_translator::status::need_more && bytes.empty()) break;
    }
    impl_->resume(id, *s);
    return true;
}

std::size_t server_session::unsent(std::int32_t id) const {
    const auto* s = impl_->find(id);
    return s == nullptr ? 0 : s->out.pending();
}

void server_session::refuse(std::int32_t id) {
    if (auto* s = impl_->find(id); s != nullptr && !s->closed && !s->submitted)
        impl_->refuse(id, *s, NGHTTP2_REFUSED_STREAM);
}

void server_session::finish(std::int32_t id) {
    auto* s = impl_->find(id);
    if (s == nullptr || s->finished) return;
    s->finished = true;
    --running_;
    if (!s->closed && !s->refused) {
        if (s->unconsumed > 0) {
            nghttp2_session_consume(impl_->session, id, s->unconsumed);
            s->unconsumed = 0;
        }
        if (!s->submitted || !s->response.finish()) {
            // No complete response (the upstream failed mid-body, a malformed response):
            // the client must not take a truncated body for a whole one.
            nghttp2_submit_rst_stream(impl_->session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        } else {
            impl_->resume(id, *s);
        }
    }
    impl_->erase_if_done(id, *s);
}

}  // namespace sentinel::h2
