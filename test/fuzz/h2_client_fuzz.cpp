// Fuzzes client_session (an HTTP/2 upstream connection) the way src/proxy/h2_upstream.cpp
// drives it: the input is what the server sends. Its first byte chooses the server's
// preface (a SETTINGS frame the harness prepends, or none: the input brings its own) and
// the driver's behaviour; its second byte where the rest is cut in two receive() calls.
// Four streams are opened before any server byte arrives (ids 1, 3, 5, 7), with requests
// GET, HEAD, POST with a Content-Length body, and a chunked gRPC POST with trailers.
// Beyond "no crash", it checks that the HTTP/1.1 bytes read() yields for each stream are
// heads the strict parser takes whole (1xx heads, then one final head) followed by a body
// that agrees with the head: exactly Content-Length bytes, or well-formed chunked coding
// ending exactly when response_done() says so, or nothing for HEAD, 204 and 304; and that
// a stream never both completes and fails.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/h2/client_session.hpp"
#include "http/http1/chunked.hpp"
#include "http/http1/parser.hpp"

using namespace sentinel;

namespace {

#define FUZZ_CHECK(cond)           \
    do {                           \
        if (!(cond)) std::abort(); \
    } while (0)

struct owner final : h2::client_owner {
    void on_stream_event(std::uint32_t) override {}
};

// The response bytes of one stream, checked as they arrive.
struct response {
    std::string_view method;
    std::string head;  // the head being accumulated
    bool final_head = false;
    http1::body_framing framing = http1::body_framing::none;
    std::uint64_t length = 0, body = 0;
    http1::chunked_decoder decoder{4096, 1 << 20};
    bool chunked_done = false;

    void consume(std::string_view bytes) {
        if (final_head) {
            consume_body(bytes);
            return;
        }
        head.append(bytes);
        for (;;) {
            http1::response_head parsed;
            // Limits wide enough for any header list client_session accepts (64 KiB).
            const auto r = http1::parse_response(head, http1::limits{8192, 256 * 1024, 8192}, method, parsed);
            if (r.status == http1::parse_status::need_more) {
                FUZZ_CHECK(head.find("\r\n\r\n") == std::string::npos);
                return;
            }
            FUZZ_CHECK(r.status == http1::parse_status::done);
            std::string rest = head.substr(r.consumed);
            if (parsed.status >= 200) {
                final_head = true;
                framing = parsed.framing;
                length = parsed.content_length;
                // client_session always frames a body: never "until close".
                FUZZ_CHECK(framing != http1::body_framing::until_close);
                head.clear();
                consume_body(rest);
                return;
            }
            head = std::move(rest);  // a 1xx head: the next head follows
        }
    }

    void consume_body(std::string_view bytes) {
        if (bytes.empty()) return;
        switch (framing) {
        case http1::body_framing::none: FUZZ_CHECK(false); break;
        case http1::body_framing::content_length:
            body += bytes.size();
            FUZZ_CHECK(body <= length);
            break;
        case http1::body_framing::chunked:
            while (!bytes.empty()) {
                FUZZ_CHECK(!chunked_done);
                std::size_t used = 0;
                std::string_view data;
                const auto st = decoder.decode(bytes, used, data);
                FUZZ_CHECK(st != http1::chunked_decoder::status::error);
                bytes.remove_prefix(used);
                if (st == http1::chunked_decoder::status::done) chunked_done = true;
                if (st == http1::chunked_decoder::status::need_more) FUZZ_CHECK(bytes.empty());
            }
            break;
        case http1::body_framing::until_close: FUZZ_CHECK(false); break;
        }
    }

    bool complete() const {
        if (!final_head || !head.empty()) return false;
        switch (framing) {
        case http1::body_framing::none: return true;
        case http1::body_framing::content_length: return body == length;
        case http1::body_framing::chunked: return chunked_done;
        case http1::body_framing::until_close: return false;
        }
        return false;
    }
};

struct stream {
    std::uint32_t handle = 0;
    response in;
    bool closed = false;
};

constexpr std::string_view requests[] = {
    "GET /a HTTP/1.1\r\nHost: up\r\nAccept: */*\r\n\r\n",
    "HEAD /b HTTP/1.1\r\nHost: up\r\n\r\n",
    "POST /c HTTP/1.1\r\nHost: up\r\nContent-Length: 5\r\n\r\nhello",
    "POST /d.S/M HTTP/1.1\r\nHost: up\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\n\0\0\0\0\0\r\n0\r\nx-t: 1\r\n\r\n",
};
constexpr std::string_view methods[] = {"GET", "HEAD", "POST", "POST"};

std::string settings_frame(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& entries) {
    std::string p;
    for (const auto& [id, v] : entries) {
        p.push_back(static_cast<char>(id >> 8));
        p.push_back(static_cast<char>(id));
        for (int shift = 24; shift >= 0; shift -= 8) p.push_back(static_cast<char>(v >> shift));
    }
    const std::size_t n = p.size();
    std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n), 4, 0, 0, 0, 0, 0};
    return f + p;
}

class driver {
public:
    driver(std::uint8_t mode) : mode_(mode), session_(owner_, mode & 0x10) {
        // Bit 5: the gRPC request body is written in two pieces, the second after the first
        // receive() (an upload beside the response).
        for (std::size_t i = 0; i < 4; ++i) {
            stream s;
            s.handle = session_.open();
            s.in.method = methods[i];
            std::string_view wire = requests[i];
            if (i == 3 && (mode_ & 0x20)) {
                late_ = wire.substr(wire.size() - 18);
                wire.remove_suffix(18);
            }
            FUZZ_CHECK(session_.write(s.handle, wire));
            streams_.push_back(std::move(s));
        }
        settle();
    }

    void receive(std::string_view bytes) {
        const bool ok = session_.receive(bytes);
        settle();
        if (!late_.empty()) {
            auto& s = streams_[3];
            if (!s.closed) (void)session_.write(s.handle, late_);
            late_ = {};
            settle();
        }
        // Bit 6: the exchange of stream 1 gives up after the first bytes.
        if ((mode_ & 0x40) && !streams_[0].closed) {
            session_.close(streams_[0].handle);
            streams_[0].closed = true;
            settle();
        }
        if (!ok) dead_ = true;
    }

    void finish() {
        if (!session_.want_read() && !session_.want_write()) dead_ = true;
        // Bit 7, or a finished connection: the connection is gone.
        if (dead_ || (mode_ & 0x80)) {
            session_.fail_all();
            settle();
            for (auto& s : streams_) {
                if (s.closed) continue;
                FUZZ_CHECK(session_.response_done(s.handle) || session_.failed(s.handle) != h2::client_session::failure::none);
            }
        }
        for (auto& s : streams_) {
            if (!s.closed) session_.close(s.handle);
            s.closed = true;
        }
        FUZZ_CHECK(session_.streams() == 0);
        std::string out;
        session_.send(out, 1 << 20);
    }

private:
    void settle() {
        std::string out;
        for (int round = 0; round < 8; ++round) {
            out.clear();
            session_.send(out, 1 << 16);
            bool moved = !out.empty();
            for (auto& s : streams_) moved |= drain(s);
            if (!moved) break;
        }
        (void)session_.accepts_streams();
        (void)session_.want_read();
    }

    bool drain(stream& s) {
        if (s.closed) return false;
        // Bit 3: read in 7-byte pieces (heads and chunk lines split everywhere).
        char buf[4096];
        const std::size_t room = (mode_ & 0x08) ? 7 : sizeof(buf);
        bool any = false;
        for (std::size_t n; (n = session_.read(s.handle, buf, room)) > 0;) {
            s.in.consume(std::string_view(buf, n));
            any = true;
        }
        const auto failed = session_.failed(s.handle);
        if (session_.response_done(s.handle)) {
            FUZZ_CHECK(failed == h2::client_session::failure::none);
            FUZZ_CHECK(s.in.complete());
        }
        (void)session_.unsent(s.handle);
        return any;
    }

    std::uint8_t mode_;
    owner owner_;
    h2::client_session session_;
    std::vector<stream> streams_;
    std::string_view late_;
    bool dead_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t mode = data[0], cut = data[1];
    std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);

    // Bits 0-2: the server's preface.
    std::string preface;
    switch (mode & 7) {
    case 0: preface = settings_frame({}); break;
    case 1: preface = settings_frame({{3, 2}}); break;                 // MAX_CONCURRENT_STREAMS 2
    case 2: preface = settings_frame({{4, 16}}); break;                // INITIAL_WINDOW_SIZE 16
    case 3: preface = settings_frame({{5, 16384}, {1, 0}}); break;     // MAX_FRAME_SIZE, HEADER_TABLE_SIZE 0
    case 4: preface = settings_frame({{3, 0}}); break;                 // no streams at all
    default: break;                                                    // the input's own
    }

    driver d(mode);
    const std::size_t at = rest.size() * cut / 256;
    std::string first = preface;
    first.append(rest.substr(0, at));
    d.receive(first);
    if (at < rest.size()) d.receive(rest.substr(at));
    d.finish();
    return 0;
}
