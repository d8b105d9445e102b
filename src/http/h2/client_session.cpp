#include "http/h2/client_session.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "http/h2/outbound.hpp"
#include "http/h2/translate.hpp"
#include "http/http1/chunked.hpp"
#include "http/http1/serializer.hpp"

namespace sentinel::h2 {

namespace {

constexpr std::uint32_t stream_window = 256 * 1024;   // response bytes per stream ahead of the reader
constexpr std::int32_t connection_window = 4 << 20;   // and per connection
constexpr std::size_t max_response_header_list = 64 * 1024;


struct client_stream {
    std::int32_t id = -1;  // nghttp2's, once the request head was submitted
    request_translator request;
    detail::outbound_body out;  // request body bytes for DATA frames
    // The response as HTTP/1.1 bytes.
    std::string in;
    std::size_t in_read = 0;
    std::size_t unconsumed = 0;  // DATA bytes not yet read (flow control)
    std::string fields;          // "name: value\r\n" of the head (or trailers) being received
    std::size_t header_bytes = 0;
    int status = 0;
    bool has_content_length = false;
    bool chunked = false;
    bool head_sent = false;  // the final head is in `in`
    bool ended = false;      // the response is complete in `in`
    bool closed = false;
    client_session::failure fail = client_session::failure::none;
};

}  // namespace

struct client_session::impl {
    impl(client_owner& o, bool t, std::string a) : owner(o), tls(t), authority(std::move(a)) {}
    ~impl() {
        if (session) nghttp2_session_del(session);
    }

    client_owner& owner;
    bool tls;
    std::string authority;
    nghttp2_session* session = nullptr;
    std::unordered_map<std::uint32_t, std::unique_ptr<client_stream>> streams;
    std::unordered_map<std::int32_t, std::uint32_t> by_id;
    std::uint32_t next_handle = 1;
    std::vector<nghttp2_nv> nva;

    client_stream* find(std::uint32_t handle) {
        const auto it = streams.find(handle);
        return it == streams.end() ? nullptr : it->second.get();
    }
    std::pair<std::uint32_t, client_stream*> by_stream(std::int32_t id) {
        const auto it = by_id.find(id);
        if (it == by_id.end()) return {0, nullptr};
        return {it->second, find(it->second)};
    }

    void fail(std::uint32_t handle, client_stream& s, client_session::failure why) {
        if (s.fail == client_session::failure::none && !s.ended) s.fail = why;
        owner.on_stream_event(handle);
    }

    // ---- the response -----------------------------------------------------------------------

    int on_header(const nghttp2_frame& frame, std::string_view name, std::string_view value) {
        auto [handle, s] = by_stream(frame.hd.stream_id);
        if (s == nullptr) return 0;
        s->header_bytes += name.size() + value.size() + field_overhead;
        if (s->header_bytes > max_response_header_list) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (name == ":status") {
            int code = 0;
            for (char c : value) code = code * 10 + (c - '0');
            // nghttp2 lets any three digits through; below 100 is no HTTP status (RFC 9110 §15).
            if (code < 100) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            s->status = code;
            return 0;
        }
        if (name == "content-length" && !s->head_sent) s->has_content_length = true;
        s->fields.append(name).append(": ").append(value).append("\r\n");
        return 0;
    }

    void on_head(std::uint32_t handle, client_stream& s, bool end_stream) {
        if (s.head_sent) {  // trailers
            if (s.chunked) {
                s.in.append("0\r\n").append(s.fields).append("\r\n");
            }
            s.fields.clear();
            s.ended = true;
            owner.on_stream_event(handle);
            return;
        }
        http1::append_status_line(s.in, s.status);
        s.in.append(s.fields);
        s.fields.clear();
        s.header_bytes = 0;
        if (s.status < 200) {  // 100 Continue, 103: no body, the final head follows
            s.in.append("\r\n");
            s.has_content_length = false;
            owner.on_stream_event(handle);
            return;
        }
        const bool no_body = s.status == 204 || s.status == 304 || s.request.method() == "HEAD";
        if (end_stream) {
            if (!s.has_content_length && !no_body) s.in.append("content-length: 0\r\n");
            s.ended = true;
        } else if (!s.has_content_length && !no_body) {
            s.in.append("transfer-encoding: chunked\r\n");
            s.chunked = true;
        }
        s.in.append("\r\n");
        s.head_sent = true;
        owner.on_stream_event(handle);
    }

    int on_frame_recv(const nghttp2_frame& frame) {
        const bool end_stream = frame.hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (frame.hd.type == NGHTTP2_HEADERS) {
            auto [handle, s] = by_stream(frame.hd.stream_id);
            if (s != nullptr) on_head(handle, *s, end_stream);
        } else if (frame.hd.type == NGHTTP2_DATA && end_stream) {
            auto [handle, s] = by_stream(frame.hd.stream_id);
            if (s != nullptr && s->head_sent && !s->ended) {
                if (s->chunked) http1::append_last_chunk(s->in);
                s->ended = true;
                owner.on_stream_event(handle);
            }
        }
        return 0;
    }

    int on_data(std::int32_t id, const std::uint8_t* data, std::size_t len) {
        auto [handle, s] = by_stream(id);
        if (s == nullptr || !s->head_sent) {
            nghttp2_session_consume(session, id, len);
            return 0;
        }
        const char* bytes = reinterpret_cast<const char*>(data);
        if (s->chunked) {
            http1::append_chunk_header(s->in, len);
            s->in.append(bytes, len);
            http1::append_chunk_end(s->in);
        } else {
            s->in.append(bytes, len);
        }
        s->unconsumed += len;
        owner.on_stream_event(handle);
        return 0;
    }

    int on_stream_close(std::int32_t id, std::uint32_t error) {
        auto [handle, s] = by_stream(id);
        by_id.erase(id);
        if (s == nullptr) return 0;
        s->closed = true;
        if (s->unconsumed > 0) {
            nghttp2_session_consume(session, id, s->unconsumed);
            s->unconsumed = 0;
        }
        // REFUSED_STREAM (also what nghttp2 reports for streams a GOAWAY did not cover):
        // the server did nothing with it.
        if (!s->ended) fail(handle, *s, error == NGHTTP2_REFUSED_STREAM ? failure::refused : failure::reset);
        else owner.on_stream_event(handle);
        return 0;
    }

    // ---- the request ------------------------------------------------------------------------

    ssize_t read_body(std::int32_t id, std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
        auto [handle, s] = by_stream(id);
        if (s == nullptr) {
            // Closed by its exchange once finished both ways, before nghttp2 sent the request's
            // END_STREAM (close() resets unfinished ones): end it.
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        const ssize_t n = s->out.fill(session, id, buf, length, flags, s->request.complete(), s->request.trailers(), nva);
        if (n > 0) owner.on_stream_event(handle);  // room to write
        return n;
    }

    bool submit(std::uint32_t handle, client_stream& s) {
        nva.clear();
        for (const auto& f : s.request.fields()) nva.push_back(detail::make_nv(f.name, f.value));
        nghttp2_data_provider provider{};
        provider.read_callback = [](nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                                    std::uint32_t* flags, nghttp2_data_source*, void* user) -> ssize_t {
            return static_cast<impl*>(user)->read_body(stream_id, buf, length, flags);
        };
        const std::int32_t id = nghttp2_submit_request(session, nullptr, nva.data(), nva.size(),
                                                       s.request.body_expected() ? &provider : nullptr, nullptr);
        if (id < 0) {
            s.fail = failure::refused;  // no stream id left, or GOAWAY: never sent
            return false;
        }
        s.id = id;
        by_id[id] = handle;
        return true;
    }
};

client_session::client_session(client_owner& owner, bool tls, std::string authority)
    : impl_(std::make_unique<impl>(owner, tls, std::move(authority))) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    detail::set_receive_callbacks<impl>(cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, std::int32_t id, std::uint32_t error, void* u) {
            return static_cast<impl*>(u)->on_stream_close(id, error);
        });
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);  // response DATA acknowledged when read
    nghttp2_session_client_new2(&impl_->session, cb, impl_.get(), opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    const std::array<nghttp2_settings_entry, 3> iv{{
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(max_response_header_list)},
    }};
    nghttp2_submit_settings(impl_->session, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    nghttp2_session_set_local_window_size(impl_->session, NGHTTP2_FLAG_NONE, 0, connection_window);
}

client_session::~client_session() = default;

bool client_session::receive(std::string_view bytes) {
    return nghttp2_session_mem_recv(impl_->session, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                    bytes.size()) >= 0;
}

void client_session::send(std::string& out, std::size_t limit) {
    detail::append_output(impl_->session, out, limit);
}

bool client_session::want_read() const { return nghttp2_session_want_read(impl_->session) != 0; }
bool client_session::want_write() const { return nghttp2_session_want_write(impl_->session) != 0; }

bool client_session::accepts_streams() const {
    // Nonzero when a request may be sent: no GOAWAY received, stream ids left.
    if (nghttp2_session_check_request_allowed(impl_->session) == 0) return false;
    const auto limit = nghttp2_session_get_remote_settings(impl_->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return impl_->streams.size() < std::min<std::uint32_t>(limit, 1000);
}

std::size_t client_session::streams() const { return impl_->streams.size(); }

std::uint32_t client_session::open() {
    const std::uint32_t handle = impl_->next_handle++;
    auto s = std::make_unique<client_stream>();
    s->request.start(impl_->tls, impl_->authority);
    impl_->streams.emplace(handle, std::move(s));
    return handle;
}

bool client_session::write(std::uint32_t handle, std::string_view bytes) {
    auto* s = impl_->find(handle);
    if (s == nullptr || s->fail != failure::none || s->closed) return false;
    while (!bytes.empty()) {
        const auto st = s->request.feed(bytes, s->out.bytes);
        if (st == request_translator::status::error) {
            s->fail = failure::reset;
            return false;
        }
        if (st == request_translator::status::head && !impl_->submit(handle, *s)) return false;
    }
    if (s->id >= 0) s->out.resume(impl_->session, s->id, s->request.complete());
    return true;
}

std::size_t client_session::unsent(std::uint32_t handle) const {
    const auto* s = impl_->find(handle);
    return s == nullptr ? 0 : s->out.pending();
}

std::size_t client_session::read(std::uint32_t handle, char* out, std::size_t room) {
    auto* s = impl_->find(handle);
    if (s == nullptr) return 0;
    const std::size_t n = std::min(room, s->in.size() - s->in_read);
    std::memcpy(out, s->in.data() + s->in_read, n);
    s->in_read += n;
    if (s->in_read == s->in.size()) {
        s->in.clear();
        s->in_read = 0;
        if (s->unconsumed > 0 && !s->closed) {
            nghttp2_session_consume(impl_->session, s->id, s->unconsumed);
            s->unconsumed = 0;
        }
    }
    return n;
}

bool client_session::response_done(std::uint32_t handle) const {
    const auto* s = impl_->find(handle);
    return s == nullptr || (s->ended && s->in_read == s->in.size());
}

client_session::failure client_session::failed(std::uint32_t handle) const {
    const auto* s = impl_->find(handle);
    return s == nullptr ? failure::reset : s->fail;
}

void client_session::close(std::uint32_t handle) {
    auto* s = impl_->find(handle);
    if (s == nullptr) return;
    if (s->id >= 0 && !s->closed) {
        if (s->unconsumed > 0) nghttp2_session_consume(impl_->session, s->id, s->unconsumed);
        // Finished both ways, nghttp2 closes it itself; otherwise stop it (a response we do
        // not read, a request abandoned half-way).
        if (!(s->ended && s->request.complete() && s->out.pending() == 0))
            nghttp2_submit_rst_stream(impl_->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        // by_id keeps the stream until nghttp2 closes it: its END_STREAM may still be due.
    }
    impl_->streams.erase(handle);
}

void client_session::fail_all() {
    for (auto& [handle, s] : impl_->streams) {
        if (!s->ended && s->fail == failure::none) {
            // A stream the server never saw (not yet submitted, or not yet sent) is safe to retry.
            s->fail = s->id < 0 ? failure::refused : failure::reset;
        }
        s->closed = true;
        impl_->owner.on_stream_event(handle);
    }
}

}  // namespace sentinel::h2
