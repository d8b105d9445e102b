// Internal to src/http/h2: the nghttp2 glue both sessions share — a stream's body bytes
// waiting for DATA frames (the data source), name/value pairs, callbacks and output.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "http/h2/translate.hpp"

namespace sentinel::h2::detail {

inline nghttp2_nv make_nv(std::string_view name, std::string_view value) {
    return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
            reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
            NGHTTP2_NV_FLAG_NONE};
}

struct outbound_body {
    std::string bytes;
    std::size_t read = 0;
    bool deferred = false;  // the data source waits for bytes

    std::size_t pending() const { return bytes.size() - read; }

    // nghttp2's data source: up to `length` bytes into `buf`. Drained and `complete`, the
    // stream ends, with `trailers` (when any) as the frame that ends it. Nothing there yet:
    // DEFERRED until resume().
    ssize_t fill(nghttp2_session* session, std::int32_t id, std::uint8_t* buf, std::size_t length,
                 std::uint32_t* flags, bool complete, const std::vector<field>& trailers,
                 std::vector<nghttp2_nv>& nva) {
        const std::size_t n = std::min(length, pending());
        std::memcpy(buf, bytes.data() + read, n);
        read += n;
        if (read == bytes.size()) {
            bytes.clear();
            read = 0;
        }
        if (pending() == 0 && complete) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (!trailers.empty()) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                nva.clear();
                for (const auto& f : trailers) nva.push_back(make_nv(f.name, f.value));
                nghttp2_submit_trailer(session, id, nva.data(), nva.size());
            }
        } else if (n == 0) {
            deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        return static_cast<ssize_t>(n);
    }

    // Bytes were appended (or the body completed): a deferred data source goes on.
    void resume(nghttp2_session* session, std::int32_t id, bool complete) {
        if (deferred && (pending() > 0 || complete)) {
            deferred = false;
            nghttp2_session_resume_data(session, id);
        }
    }
};

// The receive callbacks both sessions route to their impl the same way (`user_data` is the
// impl): on_header(frame, name, value), on_frame_recv(frame), on_data(stream, data, length).
template <typename Impl>
void set_receive_callbacks(nghttp2_session_callbacks* cb) {
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
               const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* u) {
            return static_cast<Impl*>(u)->on_header(*f, {reinterpret_cast<const char*>(name), namelen},
                                                    {reinterpret_cast<const char*>(value), valuelen});
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return static_cast<Impl*>(u)->on_frame_recv(*f); });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len, void* u) {
            return static_cast<Impl*>(u)->on_data(id, data, len);
        });
}

// Appends the session's pending frames to `out` until it holds `limit` bytes or nothing is
// pending (nghttp2 hands them out one serialised piece at a time).
inline void append_output(nghttp2_session* session, std::string& out, std::size_t limit) {
    while (out.size() < limit) {
        const std::uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session, &data);
        if (n <= 0) break;
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
}

}  // namespace sentinel::h2::detail
