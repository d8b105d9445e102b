// One HTTP/2 connection to an upstream, client side, on nghttp2 (docs/architecture/http2.md,
// "HTTP/2 upstreams"). No I/O: the upstream connection (src/proxy/h2_upstream.cpp) feeds
// received bytes in and sends what send() yields. Each request is a stream the upstream
// exchange drives exactly as an HTTP/1.1 connection: it writes the HTTP/1.1 request bytes it
// would send (translated by request_translator into HEADERS, DATA and trailers) and reads
// HTTP/1.1 response bytes (built here from :status, fields, DATA and trailers: a body without
// content-length is framed as chunked, trailers as its trailer section).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sentinel::h2 {

class client_owner {
public:
    virtual ~client_owner() = default;
    // Something changed for a stream (response bytes, room for request bytes, its end, a
    // failure): wake whoever waits on it.
    virtual void on_stream_event(std::uint32_t handle) = 0;
};

class client_session {
public:
    // `tls`: requests carry :scheme https. `authority`: the :authority of requests without
    // Host (the endpoint).
    client_session(client_owner& owner, bool tls, std::string authority = {});
    ~client_session();
    client_session(const client_session&) = delete;
    client_session& operator=(const client_session&) = delete;

    // ---- the connection side
    // False on a fatal error. A protocol error makes nghttp2 end the connection itself
    // (GOAWAY, then want_read() and want_write() false): check those too.
    bool receive(std::string_view bytes);
    void send(std::string& out, std::size_t limit);
    bool want_read() const;
    bool want_write() const;
    // A new stream may be opened: no GOAWAY received, under the server's concurrency limit.
    bool accepts_streams() const;
    std::size_t streams() const;  // handles in use

    // ---- the stream side (an upstream exchange)
    enum class failure : std::uint8_t {
        none,
        refused,  // the server did not process it (REFUSED_STREAM, beyond a GOAWAY): safe to retry
        reset,    // reset or the connection failed after the server may have processed it
    };
    std::uint32_t open();
    // HTTP/1.1 request bytes. False when the stream failed or the bytes are not a request.
    bool write(std::uint32_t handle, std::string_view bytes);
    // Request body bytes waiting for the server's flow-control window.
    std::size_t unsent(std::uint32_t handle) const;
    // HTTP/1.1 response bytes; 0 when none are there now (wait for on_stream_event unless
    // response_done() or failed()).
    std::size_t read(std::uint32_t handle, char* out, std::size_t room);
    bool response_done(std::uint32_t handle) const;  // every response byte was read
    failure failed(std::uint32_t handle) const;
    // The exchange is done with the stream: one not finished both ways is reset (CANCEL).
    void close(std::uint32_t handle);
    // The connection is gone: every open stream fails.
    void fail_all();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace sentinel::h2
