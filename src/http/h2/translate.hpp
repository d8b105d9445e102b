// Translation between an HTTP/2 stream and the HTTP/1.1 bytes the request pipeline speaks
// (docs/architecture/http2.md). No I/O, no nghttp2: the session (session.cpp) feeds decoded
// header fields in and takes response events out.
//
// Request side: the pseudo-header fields and fields of a request become an HTTP/1.1 head;
// a body of unknown length is re-framed as chunked, so the pipeline's strict parser and
// every phase after it see exactly what an HTTP/1.1 client would have sent.
// Response side: the pipeline's HTTP/1.1 response (head, then a Content-Length, chunked or
// close-delimited body) becomes :status and fields, DATA bytes and the end of the stream.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1/chunked.hpp"
#include "http/http1/message.hpp"

namespace sentinel::h2 {

// RFC 7541 §4.1: a field's size in a header list is name + value + 32.
constexpr std::size_t field_overhead = 32;

class request_builder {
public:
    enum class field_status : std::uint8_t { ok, malformed };
    // How the request's DATA reaches the pipeline.
    enum class body_kind : std::uint8_t {
        none,            // END_STREAM on the head: no body
        content_length,  // the client sent content-length: DATA bytes as they are
        chunked,         // no content-length: DATA re-framed as chunks, trailers as a trailer section
        tunnel,          // extended CONNECT (RFC 8441): DATA bytes are the tunnel's bytes
    };

    // One decoded field (nghttp2 has checked its syntax and the pseudo-header rules).
    field_status add(std::string_view name, std::string_view value);
    // A trailer field (a HEADERS block after the body).
    void add_trailer(std::string_view name, std::string_view value);

    // Builds the HTTP/1.1 head into `out`. `end_stream`: the HEADERS frame ended the stream.
    // `websocket_key`: a fresh Sec-WebSocket-Key for an extended CONNECT of the websocket
    // protocol. False when the request cannot be expressed (a Host that disagrees with
    // :authority, CONNECT of an unknown protocol...): the stream is malformed.
    bool build(bool end_stream, std::string_view websocket_key, std::string& out);

    body_kind body() const { return body_; }
    const std::string& method() const { return method_; }
    const std::string& trailers() const { return trailers_; }
    bool extended_connect() const { return !protocol_.empty(); }

private:
    std::string method_, scheme_, authority_, path_, protocol_, host_;
    std::string fields_;   // "name: value\r\n" lines, in order (no cookie, host or te)
    std::string cookie_;   // cookie crumbs joined with "; " (RFC 9113 §8.2.3)
    std::string trailers_; // "name: value\r\n" lines of the trailer section
    bool has_content_length_ = false;
    body_kind body_ = body_kind::none;
};

// A header field as HTTP/2 sends it: lowercased name. Views into the translator that made it,
// valid until its next feed().
struct field {
    std::string_view name;
    std::string_view value;
};

// Fields (lowercased) kept in one buffer; fields() views it.
class field_list {
public:
    void clear() {
        store_.clear();
        spans_.clear();
        fields_.clear();
    }
    void reserve(std::size_t bytes) { store_.reserve(bytes); }
    void add(std::string_view name, std::string_view value);
    const std::vector<field>& fields() const;

private:
    struct span {
        std::size_t at, name, value;
    };
    std::string store_;
    std::vector<span> spans_;
    mutable std::vector<field> fields_;  // rebuilt when spans_ grew (store_ may have moved)
};

// An HTTP/1.1 message body (Content-Length, chunked or close-delimited) turned into payload
// bytes and, for chunked, its trailer section.
class body_reader {
public:
    void start(http1::body_framing framing, std::uint64_t length);
    // Consumes `bytes`, appending payload to `out`. False on a chunked framing error.
    bool feed(std::string_view& bytes, std::string& out);
    // The message ended with the stream: a close-delimited body is complete here.
    bool finish();
    bool expected() const { return expected_; }  // a body follows the head
    bool complete() const { return complete_; }
    // The trailer section of a chunked body, once complete() (lowercased; framing, routing
    // and connection fields dropped, RFC 9110 §6.5.1). Empty when there was none.
    const std::vector<field>& trailers() const { return trailers_.fields(); }

private:
    void take_trailers();

    http1::chunked_decoder chunked_;
    http1::body_framing framing_ = http1::body_framing::none;
    std::uint64_t remaining_ = 0;  // content-length bytes still expected
    std::string tail_;  // chunked bytes since the last data: the last chunk and trailer section
    field_list trailers_;
    bool expected_ = false;
    bool complete_ = false;
};

// The pipeline's HTTP/1.1 response, fed as it is written, turned into HTTP/2 events.
class response_translator {
public:
    using field = h2::field;
    enum class status : std::uint8_t {
        need_more,      // nothing new (or only body bytes, appended to `body`)
        informational,  // a 1xx head is in fields(): send it as a non-final HEADERS
        head,           // the final head is in fields(); body bytes may follow in `body`
        error,          // malformed or impossible response: reset the stream
    };

    // `request_method`: HEAD responses have no body. `tunnel`: an extended CONNECT, whose 101
    // becomes a 200 and whose bytes after it are the tunnel's.
    void start(std::string_view request_method, bool tunnel);
    // Consumes `bytes`: heads are parsed, body bytes (de-chunked) are appended to `body`.
    // Call again while it returns informational or head: one head per call.
    status feed(std::string_view& bytes, std::string& body);
    // The pipeline ended its response: a close-delimited body or a tunnel ends here.
    // False when the response was not complete (the stream must be reset).
    bool finish();

    int status_code() const { return status_code_; }
    const std::vector<field>& fields() const { return fields_.fields(); }
    const std::vector<field>& trailers() const { return body_.trailers(); }
    bool head_done() const { return head_done_; }
    bool body_expected() const { return body_.expected(); }  // after the final head
    bool complete() const { return head_done_ && body_.complete(); }

private:
    std::string head_;  // the head being accumulated
    std::string method_;
    field_list fields_;
    http1::response_head parsed_;
    body_reader body_;
    int status_code_ = 0;
    bool tunnel_ = false;
    bool head_done_ = false;
};

// The pipeline's HTTP/1.1 request to an HTTP/2 upstream, fed as it is written, turned into
// a request head (pseudo-header fields first) and DATA.
class request_translator {
public:
    using field = h2::field;
    enum class status : std::uint8_t { need_more, head, error };

    // `tls`: the :scheme is https. `authority`: the :authority of a request without Host (an
    // HTTP/1.0 one): the upstream endpoint. Not copied (a stream per upstream request): it
    // must outlive the translator, as the client session's own copy does.
    void start(bool tls, std::string_view authority) {
        tls_ = tls;
        authority_ = authority;
    }
    // Consumes `bytes`: the head is parsed (status head, once), body bytes (de-chunked) are
    // appended to `body`.
    status feed(std::string_view& bytes, std::string& body);
    const std::vector<field>& fields() const { return fields_.fields(); }
    const std::vector<field>& trailers() const { return body_.trailers(); }
    bool head_done() const { return head_done_; }
    bool body_expected() const { return body_.expected(); }
    bool complete() const { return head_done_ && body_.complete(); }
    const std::string& method() const { return method_; }

private:
    std::string head_;
    std::string method_;
    field_list fields_;
    http1::request_head parsed_;
    body_reader body_;
    std::string_view authority_;
    bool tls_ = false;
    bool head_done_ = false;
};

// The canonical base64 of 16 bytes (a Sec-WebSocket-Key).
std::string websocket_key(const std::array<std::uint8_t, 16>& nonce);

}  // namespace sentinel::h2
