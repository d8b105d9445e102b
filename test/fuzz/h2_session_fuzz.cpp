// Fuzzes server_session the way src/proxy/h2_connection.cpp drives it. The input's first four
// bytes choose the settings, the owner's behaviour and where the rest is cut; the rest is the
// client's byte stream after the connection preface (its SETTINGS frame first, in the seeds),
// fed in up to four receive() calls on an advancing fake clock. The owner works the way the
// real one does, after the callback returns (never re-entrantly): it reads each request,
// writes one of a few HTTP/1.1 responses and finishes. Beyond "no crash", it checks:
//  * the request bytes a stream yields are exactly one HTTP/1.1 head that the strict parser
//    takes whole (or refuses: never more, never less than the head), then a body that agrees
//    with that head: valid chunked coding ending when the request is done, or exactly
//    Content-Length bytes;
//  * running() counts the pipelines started and not finished;
//  * once the session reports abuse, receive() keeps returning false.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/h2/session.hpp"
#include "http/http1/chunked.hpp"
#include "http/http1/parser.hpp"

using namespace sentinel;

namespace {

#define FUZZ_CHECK(cond)           \
    do {                           \
        if (!(cond)) std::abort(); \
    } while (0)

constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct stream {
    std::string head;  // until its blank line
    bool head_done = false;
    bool chunked = false, tunnel = false, parsed = false, has_length = false;
    std::uint64_t length = 0, body = 0;
    http1::chunked_decoder decoder{4096, 1 << 20};  // trailers up to any header list size
    bool chunked_done = false;
    bool responded = false;
    bool finished = false;
    int writes = 0;
};

struct owner final : h2::session_owner {
    std::vector<std::int32_t> woken;
    std::size_t started = 0;
    void on_request(std::int32_t id) override {
        ++started;
        woken.push_back(id);
    }
    void on_stream_event(std::int32_t id) override { woken.push_back(id); }
};

class driver {
public:
    driver(std::uint8_t mode, std::uint8_t flags) : mode_(mode), flags_(flags) {
        h2::settings cfg;
        if (flags & 1) cfg.max_concurrent_streams = 2;
        if (flags & 2) cfg.max_header_list_size = 2048;
        if (flags & 4) cfg.initial_window_size = 1024;
        session_ = std::make_unique<h2::server_session>(cfg, owner_, 7);
    }

    void receive(std::string_view bytes, std::chrono::steady_clock::time_point now) {
        const bool ok = session_->receive(bytes, now);
        if (session_->abused()) FUZZ_CHECK(!ok);
        settle();
    }
    void shutdown() {
        session_->shutdown();
        settle();
    }

private:
    // Runs woken pipelines and sends until nothing changes.
    void settle() {
        for (int round = 0; round < 64; ++round) {
            std::vector<std::int32_t> woken;
            woken.swap(owner_.woken);
            for (const auto id : woken) run(id);
            std::string out;
            session_->send(out, 16384);
            while (!out.empty()) {
                out.clear();
                session_->send(out, 16384);
            }
            if (owner_.woken.empty()) break;
        }
        FUZZ_CHECK(session_->running() == owner_.started - finished_);
        (void)session_->want_read();
        (void)session_->want_write();
    }

    void run(std::int32_t id) {
        auto& s = streams_[id];
        if (s.finished) return;
        char buf[1024];
        for (std::size_t n; (n = session_->read(id, buf, sizeof(buf))) > 0;) consume(s, std::string_view(buf, n));
        const bool done = session_->request_done(id);
        const bool gone = session_->stream_gone(id);
        if (done && s.head_done && !s.tunnel) {
            if (s.chunked) FUZZ_CHECK(s.chunked_done);
            if (s.has_length) FUZZ_CHECK(s.body == s.length);
        }
        if (gone) {
            FUZZ_CHECK(!session_->write(id, "HTTP/1.1 200 OK\r\n\r\n"));
            finish(id, s);
            return;
        }
        if (!s.head_done) return;
        respond(id, s, done);
        // Bit 3: finish as soon as the response is written; otherwise once the request is in.
        if ((flags_ & 8) || done) {
            if (!s.responded || (mode_ % 8) != 4 || session_->unsent(id) == 0) finish(id, s);
        }
    }

    void finish(std::int32_t id, stream& s) {
        session_->finish(id);
        s.finished = true;
        ++finished_;
    }

    void respond(std::int32_t id, stream& s, bool request_done) {
        if (s.responded) return;
        const std::string_view mode_names[] = {"cl", "chunked", "close", "continue", "large", "after", "none", "upgrade"};
        const auto kind = mode_names[mode_ % 8];
        if (kind == "after" && !request_done) return;
        s.responded = true;
        if (kind == "cl" || kind == "after") {
            session_->write(id, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a\r\n\r\nhello");
        } else if (kind == "chunked") {
            session_->write(id, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: x-drop\r\nX-Drop: 1\r\n\r\n3\r\nab");
            session_->write(id, "c\r\n0\r\nX-T: 1\r\n\r\n");
        } else if (kind == "close") {
            session_->write(id, "HTTP/1.1 200 OK\r\n\r\nuntil close");
        } else if (kind == "continue") {
            session_->write(id, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
        } else if (kind == "large") {
            session_->write(id, "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + std::string(40000, 'L'));
        } else if (kind == "upgrade") {
            session_->write(id, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00");
        }
        // "none": no response at all, the stream is reset when it finishes.
    }

    void consume(stream& s, std::string_view bytes) {
        if (!s.head_done) {
            const std::size_t before = s.head.size();
            s.head.append(bytes);
            const auto end = s.head.find("\r\n\r\n");
            if (end == std::string::npos) return;
            s.head.resize(end + 4);
            bytes.remove_prefix(s.head.size() - before);
            s.head_done = true;
            check_head(s);
        }
        if (bytes.empty()) return;
        FUZZ_CHECK(!s.chunked_done);
        if (s.chunked) {
            while (!bytes.empty()) {
                std::size_t used = 0;
                std::string_view data;
                const auto st = s.decoder.decode(bytes, used, data);
                FUZZ_CHECK(st != http1::chunked_decoder::status::error);
                bytes.remove_prefix(used);
                if (st == http1::chunked_decoder::status::done) {
                    s.chunked_done = true;
                    FUZZ_CHECK(bytes.empty());
                }
                if (st == http1::chunked_decoder::status::need_more) FUZZ_CHECK(bytes.empty());
            }
        } else {
            s.body += bytes.size();
            if (s.has_length) FUZZ_CHECK(s.body <= s.length);
            // A head without a body is followed by nothing (a second request, smuggled).
            if (s.parsed && !s.has_length && !s.tunnel) FUZZ_CHECK(false);
        }
    }

    static bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

    void check_head(stream& s) {
        const std::string_view head = s.head;
        FUZZ_CHECK(head.find('\0') == std::string_view::npos);
        s.tunnel = head.find("\r\nupgrade: websocket\r\n") != std::string_view::npos || starts_with(head, "CONNECT ");
        s.chunked = head.find("\r\ntransfer-encoding: chunked\r\n") != std::string_view::npos;
        http1::request_head parsed;
        const auto r = http1::parse_request(head, http1::limits{}, parsed);
        FUZZ_CHECK(r.status != http1::parse_status::need_more);
        if (r.status != http1::parse_status::done) return;
        s.parsed = true;
        FUZZ_CHECK(r.consumed == head.size());  // one head, whole: nothing smuggled after it
        if (s.chunked) FUZZ_CHECK(parsed.framing == http1::body_framing::chunked);
        if (parsed.framing == http1::body_framing::content_length) {
            s.has_length = true;
            s.length = parsed.content_length;
        }
    }

    std::uint8_t mode_, flags_;
    owner owner_;
    std::unique_ptr<h2::server_session> session_;
    std::map<std::int32_t, stream> streams_;
    std::size_t finished_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    const std::uint8_t mode = data[0], flags = data[1], cut_a = data[2], cut_b = data[3];
    const std::string_view rest(reinterpret_cast<const char*>(data + 4), size - 4);

    // Cut points as fractions of the rest; the first piece carries the preface.
    std::size_t cuts[] = {rest.size() * cut_a / 256, rest.size() * cut_b / 256};
    if (cuts[0] > cuts[1]) std::swap(cuts[0], cuts[1]);
    const std::size_t ends[] = {cuts[0], (cuts[0] + cuts[1]) / 2, cuts[1], rest.size()};

    driver d(mode, flags);
    auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    std::size_t at = 0;
    for (int i = 0; i < 4; ++i) {
        std::string piece;
        if (i == 0) piece.assign(preface);
        piece.append(rest.substr(at, ends[i] - at));
        at = ends[i];
        if (piece.empty()) continue;
        d.receive(piece, now);
        now += std::chrono::milliseconds(1 + (mode >> 3) * 40);  // up to ~1.3 s a step
        if (i == 1 && (flags & 16)) d.shutdown();
    }
    return 0;
}
