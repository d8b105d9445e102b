// One server-side HTTP/2 connection's protocol state, on nghttp2 (docs/architecture/http2.md).
// No I/O: the connection (src/proxy/h2_connection.cpp) feeds received bytes in, takes bytes to
// send out, and runs one request pipeline per stream, which reads HTTP/1.1 request bytes and
// writes HTTP/1.1 response bytes through read()/write() (translate.hpp does the translation).
//
// What this layer owns: SETTINGS, flow control (a request's DATA is acknowledged only once the
// pipeline has read it, so a slow upstream slows the client), the stream concurrency limit
// (streams whose pipeline still runs after a reset count against it), and the abuse guards
// that end a connection with GOAWAY(ENHANCE_YOUR_CALM).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sentinel::h2 {

struct settings {
    std::uint32_t max_concurrent_streams = 100;
    std::uint32_t initial_window_size = 65536;   // per stream; the connection's is max(this, 1 MiB)
    std::uint32_t max_frame_size = 16384;
    std::uint32_t max_header_list_size = 32768;  // decoded, RFC 7541 sizes
};

// Why a connection was ended with GOAWAY(ENHANCE_YOUR_CALM) (sentinel_http2_abuse_total{kind}).
// Thresholds are in session.cpp and docs/architecture/http2.md.
enum class abuse : std::uint8_t {
    rapid_reset,         // RST_STREAM of streams before their response (CVE-2023-44487)
    continuation_flood,  // endless CONTINUATION frames (CVE-2024-27316)
    settings_flood,
    ping_flood,
    empty_frames,        // zero-length DATA/HEADERS/CONTINUATION that end nothing
    hpack_bomb,          // a header block that decodes to far more than its size and the limit
    too_many_streams,    // keeps opening streams beyond SETTINGS_MAX_CONCURRENT_STREAMS
    count_
};
const char* to_string(abuse kind);

class session_owner {
public:
    virtual ~session_owner() = default;
    // A request head is ready: start a pipeline for the stream (it reads with read()).
    virtual void on_request(std::int32_t stream) = 0;
    // Something changed for a running stream (request bytes or their end, room for response
    // bytes, a reset): wake its pipeline, which checks.
    virtual void on_stream_event(std::int32_t stream) = 0;
};

class server_session {
public:
    server_session(const settings& s, session_owner& owner, std::uint64_t seed);
    ~server_session();
    server_session(const server_session&) = delete;
    server_session& operator=(const server_session&) = delete;

    // ---- the connection side
    // Feeds bytes received from the client (the connection preface first). False when the
    // connection must end; send() then still yields the GOAWAY to flush.
    bool receive(std::string_view bytes, std::chrono::steady_clock::time_point now);
    // Appends frames to send to `out`, stopping once it holds `limit` bytes or more.
    void send(std::string& out, std::size_t limit);
    // Both false: the connection is finished (GOAWAY exchanged, no stream left).
    bool want_read() const;
    bool want_write() const;
    // Graceful drain: GOAWAY(NO_ERROR) naming the last stream processed; those finish.
    void shutdown();
    std::optional<abuse> abused() const { return abused_; }
    std::size_t running() const { return running_; }      // streams whose pipeline runs
    std::uint64_t refused() const { return refused_; }    // streams refused (REFUSED_STREAM)

    // ---- the stream side (a pipeline)
    // Request bytes (an HTTP/1.1 head, then the body as the pipeline expects it). 0 when none
    // are there now: wait for on_stream_event unless request_done() or stream_gone().
    std::size_t read(std::int32_t stream, char* out, std::size_t room);
    bool request_done(std::int32_t stream) const;  // all request bytes were read
    bool stream_gone(std::int32_t stream) const;   // reset or closed before the response ended
    // The pipeline's response bytes. False when the stream is gone or the bytes are not a
    // valid response (the stream is then reset).
    bool write(std::int32_t stream, std::string_view bytes);
    // Response bytes waiting for the client's flow-control window.
    std::size_t unsent(std::int32_t stream) const;
    // The pipeline ended: a close-delimited response ends here, an unfinished one is reset.
    void finish(std::int32_t stream);
    // Refuses a stream before its pipeline answered (RST_STREAM(REFUSED_STREAM): the client
    // may retry it elsewhere).
    void refuse(std::int32_t stream);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
    std::optional<abuse> abused_;
    std::size_t running_ = 0;
    std::uint64_t refused_ = 0;
};

}  // namespace sentinel::h2
