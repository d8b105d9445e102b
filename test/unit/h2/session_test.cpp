// server_session driven by a hand-built HTTP/2 client: raw frames and a small HPACK encoder
// (so floods and bombs are byte-exact), nghttp2's HPACK inflater to read the server's header
// blocks, and a fake clock for the abuse token buckets.
#include <gtest/gtest.h>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/h2/session.hpp"

namespace sentinel::h2 {
namespace {

using namespace std::chrono_literals;
using fields_t = std::vector<std::pair<std::string, std::string>>;
using time_point = std::chrono::steady_clock::time_point;

constexpr std::uint8_t DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8,
                       CONTINUATION = 9;
constexpr std::uint8_t END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20;
constexpr std::uint32_t NO_ERROR = 0, PROTOCOL_ERROR = 1, INTERNAL_ERROR = 2, FLOW_CONTROL_ERROR = 3,
                        REFUSED_STREAM = 7, CANCEL = 8, ENHANCE_YOUR_CALM = 11;
constexpr std::string_view preface_magic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// ---- client-side encoding -----------------------------------------------------------------

std::string u32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string u16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::string_view payload) {
    const std::size_t n = payload.size();
    std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                  static_cast<char>(type), static_cast<char>(flags)};
    f += u32(stream & 0x7fffffffu);
    f += payload;
    return f;
}

std::string settings_frame(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& entries = {}) {
    std::string p;
    for (const auto& [id, v] : entries) p += u16(id) + u32(v);
    return frame(SETTINGS, 0, 0, p);
}
std::string settings_ack() { return frame(SETTINGS, ACK, 0, ""); }
std::string ping(std::uint64_t opaque) { return frame(PING, 0, 0, u32(opaque >> 32) + u32(static_cast<std::uint32_t>(opaque))); }
std::string rst(std::uint32_t stream, std::uint32_t code) { return frame(RST_STREAM, 0, stream, u32(code)); }
std::string window_update(std::uint32_t stream, std::uint32_t inc) { return frame(WINDOW_UPDATE, 0, stream, u32(inc)); }
std::string data(std::uint32_t stream, std::string_view bytes, std::uint8_t flags = 0) {
    std::string out;
    // Frames of at most the default SETTINGS_MAX_FRAME_SIZE; END_STREAM on the last.
    do {
        const std::size_t n = std::min<std::size_t>(bytes.size(), 16384);
        const bool last = n == bytes.size();
        out += frame(DATA, last ? flags : 0, stream, bytes.substr(0, n));
        bytes.remove_prefix(n);
    } while (!bytes.empty());
    return out;
}
// A header block as HEADERS plus as many CONTINUATION frames as 16 KiB frames need.
std::string headers(std::uint32_t stream, std::string_view block, std::uint8_t flags) {
    const std::uint8_t end_stream = flags & END_STREAM;
    std::string out;
    bool first = true;
    do {
        const std::size_t n = std::min<std::size_t>(block.size(), 16384);
        const bool last = n == block.size();
        const std::uint8_t f = static_cast<std::uint8_t>((first ? end_stream : 0) | (last ? END_HEADERS : 0));
        out += frame(first ? HEADERS : CONTINUATION, f, stream, block.substr(0, n));
        block.remove_prefix(n);
        first = false;
    } while (!block.empty());
    return out;
}

// HPACK (RFC 7541) representations, without Huffman coding.
void hpack_int(std::string& out, std::uint8_t first, int prefix, std::uint64_t v) {
    const std::uint64_t max = (1u << prefix) - 1;
    if (v < max) {
        out.push_back(static_cast<char>(first | v));
        return;
    }
    out.push_back(static_cast<char>(first | max));
    v -= max;
    while (v >= 128) {
        out.push_back(static_cast<char>(0x80 | (v & 127)));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}
void literal(std::string& out, std::string_view name, std::string_view value, bool index = false) {
    out.push_back(index ? 0x40 : 0x00);  // new name, with or without incremental indexing
    hpack_int(out, 0, 7, name.size());
    out += name;
    hpack_int(out, 0, 7, value.size());
    out += value;
}
void indexed(std::string& out, std::uint64_t index) { hpack_int(out, 0x80, 7, index); }

std::string request_block(std::string_view method, std::string_view path, const fields_t& extra = {},
                          std::string_view authority = "example.com") {
    std::string b;
    literal(b, ":method", method);
    literal(b, ":scheme", "https");
    if (!authority.empty()) literal(b, ":authority", authority);
    literal(b, ":path", path);
    for (const auto& [n, v] : extra) literal(b, n, v);
    return b;
}

// ---- the server's output, as the client sees it -------------------------------------------

struct rx_frame {
    std::uint8_t type = 0, flags = 0;
    std::uint32_t stream = 0;
    std::string payload;
    std::uint32_t word(std::size_t at) const {
        return static_cast<std::uint32_t>(static_cast<std::uint8_t>(payload[at]) << 24 |
                                          static_cast<std::uint8_t>(payload[at + 1]) << 16 |
                                          static_cast<std::uint8_t>(payload[at + 2]) << 8 |
                                          static_cast<std::uint8_t>(payload[at + 3]));
    }
};

struct rx_stream {
    std::vector<fields_t> heads;  // each header block received (1xx, final, trailers)
    std::string body;
    bool ended = false;
    std::vector<std::uint32_t> resets;
};

class client_view {
public:
    client_view() { nghttp2_hd_inflate_new(&inflater_); }
    ~client_view() { nghttp2_hd_inflate_del(inflater_); }
    client_view(const client_view&) = delete;
    client_view& operator=(const client_view&) = delete;

    std::vector<rx_frame> frames;
    std::map<std::uint32_t, rx_stream> streams;

    void absorb(std::string_view bytes) {
        buf_ += bytes;
        while (buf_.size() >= 9) {
            const std::size_t n = static_cast<std::uint8_t>(buf_[0]) << 16 | static_cast<std::uint8_t>(buf_[1]) << 8 |
                                  static_cast<std::uint8_t>(buf_[2]);
            if (buf_.size() < 9 + n) break;
            rx_frame f;
            f.type = static_cast<std::uint8_t>(buf_[3]);
            f.flags = static_cast<std::uint8_t>(buf_[4]);
            f.payload = buf_.substr(9, n);
            f.stream = rx_frame{0, 0, 0, buf_.substr(5, 4)}.word(0) & 0x7fffffffu;
            buf_.erase(0, 9 + n);
            on_frame(f);
            frames.push_back(std::move(f));
        }
    }

    // Frames of `type` (on `stream` unless -1) since frame index `from`.
    std::vector<const rx_frame*> find(std::uint8_t type, std::size_t from = 0, std::int64_t stream = -1) const {
        std::vector<const rx_frame*> out;
        for (std::size_t i = from; i < frames.size(); ++i)
            if (frames[i].type == type && (stream < 0 || frames[i].stream == stream)) out.push_back(&frames[i]);
        return out;
    }
    std::optional<std::pair<std::uint32_t, std::uint32_t>> goaway() const {  // last stream id, code
        const auto g = find(GOAWAY);
        if (g.empty()) return std::nullopt;
        return std::make_pair(g.back()->word(0) & 0x7fffffffu, g.back()->word(4));
    }
    bool pending_bytes() const { return !buf_.empty(); }

private:
    void on_frame(const rx_frame& f) {
        std::string_view p = f.payload;
        switch (f.type) {
        case DATA: {
            if (f.flags & PADDED) {
                const std::size_t pad = static_cast<std::uint8_t>(p[0]);
                p = p.substr(1, p.size() - 1 - pad);
            }
            auto& s = streams[f.stream];
            s.body += p;
            if (f.flags & END_STREAM) s.ended = true;
            break;
        }
        case HEADERS:
        case CONTINUATION:
            if (f.type == HEADERS) {
                if (f.flags & PADDED) {
                    const std::size_t pad = static_cast<std::uint8_t>(p[0]);
                    p = p.substr(1, p.size() - 1 - pad);
                }
                if (f.flags & PRIORITY_FLAG) p.remove_prefix(5);
                block_.clear();
                block_end_stream_ = f.flags & END_STREAM;
            }
            block_ += p;
            if (f.flags & END_HEADERS) {
                auto& s = streams[f.stream];
                s.heads.push_back(inflate(block_));
                if (block_end_stream_) s.ended = true;
            }
            break;
        case RST_STREAM: streams[f.stream].resets.push_back(f.word(0)); break;
        default: break;
        }
    }

    fields_t inflate(std::string_view block) {
        fields_t out;
        auto* in = reinterpret_cast<const std::uint8_t*>(block.data());
        std::size_t left = block.size();
        for (;;) {
            nghttp2_nv nv;
            int flags = 0;
            const auto rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
            if (rv < 0) {
                ADD_FAILURE() << "server sent an undecodable header block";
                return out;
            }
            in += rv;
            left -= static_cast<std::size_t>(rv);
            if (flags & NGHTTP2_HD_INFLATE_EMIT)
                out.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                                 std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
            if (flags & NGHTTP2_HD_INFLATE_FINAL) {
                nghttp2_hd_inflate_end_headers(inflater_);
                return out;
            }
            if (rv == 0 && left == 0) return out;
        }
    }

    nghttp2_hd_inflater* inflater_ = nullptr;
    std::string buf_;
    std::string block_;
    bool block_end_stream_ = false;
};

// ---- the owner and the harness ------------------------------------------------------------

struct recorder : session_owner {
    std::vector<std::int32_t> requests;
    std::vector<std::int32_t> events;
    void on_request(std::int32_t stream) override { requests.push_back(stream); }
    void on_stream_event(std::int32_t stream) override { events.push_back(stream); }
    bool requested(std::int32_t id) const { return std::find(requests.begin(), requests.end(), id) != requests.end(); }
    std::size_t event_count(std::int32_t id) const {
        return static_cast<std::size_t>(std::count(events.begin(), events.end(), id));
    }
};

settings with_streams(std::uint32_t n) {
    settings s;
    s.max_concurrent_streams = n;
    return s;
}

struct harness {
    explicit harness(const settings& cfg = {}) : session(cfg, owner, 42) {}

    recorder owner;
    server_session session;
    client_view view;
    time_point now = time_point{} + 1h;

    // Feeds client bytes, then collects everything the server has to send.
    bool in(std::string_view bytes) {
        const bool ok = session.receive(bytes, now);
        pump();
        return ok;
    }
    void pump() {
        std::string out;
        session.send(out, SIZE_MAX);
        view.absorb(out);
    }
    // Preface + SETTINGS, then the ACK of the server's SETTINGS.
    void connect(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& client_settings = {}) {
        ASSERT_TRUE(in(std::string(preface_magic) + settings_frame(client_settings)));
        ASSERT_TRUE(in(settings_ack()));
    }
    std::string read(std::int32_t id, std::size_t room = 4096) {
        std::string out(room, '\0');
        const std::size_t n = session.read(id, out.data(), room);
        out.resize(n);
        return out;
    }
    std::string read_all(std::int32_t id) {
        std::string out;
        for (std::string piece; !(piece = read(id)).empty();) out += piece;
        return out;
    }
    const rx_stream& stream(std::uint32_t id) { return view.streams[id]; }
};

std::string status_of(const fields_t& head) {
    for (const auto& [n, v] : head)
        if (n == ":status") return v;
    return {};
}

// ---- connection setup ---------------------------------------------------------------------

TEST(H2Session, ServerPrefaceAndSettingsExchange) {
    settings cfg;
    cfg.max_concurrent_streams = 7;
    cfg.initial_window_size = 100000;
    cfg.max_frame_size = 32768;
    cfg.max_header_list_size = 20000;
    harness h(cfg);
    h.pump();  // the server speaks first: its SETTINGS, then the connection window
    ASSERT_GE(h.view.frames.size(), 2u);
    const auto& s = h.view.frames[0];
    ASSERT_EQ(s.type, SETTINGS);
    EXPECT_EQ(s.flags, 0);
    std::map<std::uint16_t, std::uint32_t> values;
    for (std::size_t i = 0; i + 6 <= s.payload.size(); i += 6)
        values[static_cast<std::uint16_t>(static_cast<std::uint8_t>(s.payload[i]) << 8 |
                                          static_cast<std::uint8_t>(s.payload[i + 1]))] = s.word(i + 2);
    EXPECT_EQ(values[NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS], 7u);
    EXPECT_EQ(values[NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE], 100000u);
    EXPECT_EQ(values[NGHTTP2_SETTINGS_MAX_FRAME_SIZE], 32768u);
    EXPECT_EQ(values[NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE], 20000u);
    EXPECT_EQ(values[NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL], 1u);
    const auto wu = h.view.find(WINDOW_UPDATE, 0, 0);
    ASSERT_EQ(wu.size(), 1u);
    EXPECT_EQ(wu[0]->word(0), (1u << 20) - 65535u);  // the connection window becomes 1 MiB

    const std::size_t mark = h.view.frames.size();
    ASSERT_TRUE(h.in(std::string(preface_magic) + settings_frame({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}})));
    const auto acks = h.view.find(SETTINGS, mark);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0]->flags, ACK);
    ASSERT_TRUE(h.in(settings_ack()));
    EXPECT_TRUE(h.session.want_read());
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Session, BadPrefaceEndsConnection) {
    harness h;
    EXPECT_FALSE(h.in("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Session, PingAnswered) {
    harness h;
    h.connect();
    const std::size_t mark = h.view.frames.size();
    ASSERT_TRUE(h.in(ping(0x0102030405060708ull)));
    const auto p = h.view.find(PING, mark);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0]->flags, ACK);
    EXPECT_EQ(p[0]->payload, std::string("\1\2\3\4\5\6\7\x08", 8));
}

// ---- requests and responses ---------------------------------------------------------------

TEST(H2Session, GetBecomesHttp1HeadAndResponseBecomesFrames) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/index.html?q=1", {{"accept", "*/*"}, {"cookie", "a=1"}, {"cookie", "b=2"}}),
                             END_STREAM | END_HEADERS)));
    ASSERT_EQ(h.owner.requests, std::vector<std::int32_t>{1});
    EXPECT_EQ(h.session.running(), 1u);
    EXPECT_EQ(h.read_all(1),
              "GET /index.html?q=1 HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n");
    EXPECT_TRUE(h.session.request_done(1));
    EXPECT_FALSE(h.session.stream_gone(1));

    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"));
    h.pump();
    const auto& s = h.stream(1);
    ASSERT_EQ(s.heads.size(), 1u);
    EXPECT_EQ(s.heads[0], (fields_t{{":status", "200"}, {"content-length", "5"}, {"content-type", "text/plain"}}));
    EXPECT_EQ(s.body, "hello");
    EXPECT_TRUE(s.ended);
    const auto d = h.view.find(DATA, 0, 1);
    ASSERT_FALSE(d.empty());
    EXPECT_TRUE(d.back()->flags & END_STREAM);
    EXPECT_TRUE(s.resets.empty());
    EXPECT_EQ(h.session.unsent(1), 0u);

    h.session.finish(1);
    EXPECT_EQ(h.session.running(), 0u);
    h.pump();
    EXPECT_TRUE(h.view.find(RST_STREAM).empty());
}

TEST(H2Session, ResponseWrittenInPieces) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    h.read_all(1);
    const std::string resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    for (char c : resp) {
        ASSERT_TRUE(h.session.write(1, std::string_view(&c, 1)));
        h.pump();
    }
    const auto& s = h.stream(1);
    ASSERT_EQ(s.heads.size(), 1u);
    EXPECT_EQ(s.heads[0], (fields_t{{":status", "200"}, {"x-a", "b"}}));
    EXPECT_EQ(s.body, "abcde");
    EXPECT_TRUE(s.ended);
}

TEST(H2Session, HeadRequestResponseEndsOnHeaders) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("HEAD", "/big"), END_STREAM | END_HEADERS)));
    EXPECT_EQ(h.read_all(1), "HEAD /big HTTP/1.1\r\nhost: example.com\r\n\r\n");
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"));
    h.pump();
    const auto& s = h.stream(1);
    ASSERT_EQ(s.heads.size(), 1u);
    EXPECT_EQ(s.heads[0], (fields_t{{":status", "200"}, {"content-length", "99999"}}));
    EXPECT_TRUE(s.ended);
    EXPECT_TRUE(h.view.find(DATA, 0, 1).empty());
}

TEST(H2Session, InformationalThenFinal) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/", {{"content-length", "2"}, {"expect", "100-continue"}}),
                             END_HEADERS)));
    EXPECT_EQ(h.read_all(1),
              "POST / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n");
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 100 Continue\r\n\r\n"));
    h.pump();
    ASSERT_EQ(h.stream(1).heads.size(), 1u);
    EXPECT_EQ(h.stream(1).heads[0], (fields_t{{":status", "100"}}));
    EXPECT_FALSE(h.stream(1).ended);
    ASSERT_TRUE(h.in(data(1, "ok", END_STREAM)));
    EXPECT_EQ(h.read_all(1), "ok");
    EXPECT_TRUE(h.session.request_done(1));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
    h.pump();
    ASSERT_EQ(h.stream(1).heads.size(), 2u);
    EXPECT_EQ(status_of(h.stream(1).heads[1]), "201");
    EXPECT_TRUE(h.stream(1).ended);
}

TEST(H2Session, ContentLengthBodyPassedAsIs) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("PUT", "/f", {{"content-length", "11"}}), END_HEADERS)));
    EXPECT_EQ(h.read_all(1), "PUT /f HTTP/1.1\r\nhost: example.com\r\ncontent-length: 11\r\n\r\n");
    ASSERT_TRUE(h.in(data(1, "hello ")));
    EXPECT_EQ(h.read_all(1), "hello ");
    EXPECT_FALSE(h.session.request_done(1));
    ASSERT_TRUE(h.in(data(1, "world", END_STREAM)));
    EXPECT_EQ(h.read_all(1), "world");
    EXPECT_TRUE(h.session.request_done(1));
}

TEST(H2Session, ContentLengthMismatchResetsStream) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("PUT", "/f", {{"content-length", "3"}}), END_HEADERS)));
    h.in(data(1, "toolong", END_STREAM));
    ASSERT_FALSE(h.stream(1).resets.empty());
    EXPECT_EQ(h.stream(1).resets[0], PROTOCOL_ERROR);
    EXPECT_TRUE(h.session.stream_gone(1));
}

TEST(H2Session, PostWithoutContentLengthIsRechunked) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/up"), END_HEADERS)));
    ASSERT_TRUE(h.owner.requested(1));
    EXPECT_EQ(h.read_all(1), "POST /up HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
    EXPECT_FALSE(h.session.request_done(1));
    const std::size_t events = h.owner.event_count(1);
    ASSERT_TRUE(h.in(data(1, "hello, world!")));
    EXPECT_GT(h.owner.event_count(1), events);
    EXPECT_EQ(h.read_all(1), "d\r\nhello, world!\r\n");
    EXPECT_FALSE(h.session.request_done(1));
    ASSERT_TRUE(h.in(data(1, "!", END_STREAM)));
    EXPECT_EQ(h.read_all(1), "1\r\n!\r\n0\r\n\r\n");
    EXPECT_TRUE(h.session.request_done(1));
}

TEST(H2Session, EmptyDataEndsChunkedBody) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/up"), END_HEADERS)));
    h.read_all(1);
    ASSERT_TRUE(h.in(data(1, "", END_STREAM)));
    EXPECT_EQ(h.read_all(1), "0\r\n\r\n");
    EXPECT_TRUE(h.session.request_done(1));
}

TEST(H2Session, RequestTrailersGoIntoTheTrailerSection) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/rpc", {{"te", "trailers"}}), END_HEADERS)));
    EXPECT_EQ(h.read_all(1), "POST /rpc HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
    ASSERT_TRUE(h.in(data(1, "ab")));
    std::string block;
    literal(block, "x-checksum", "c0ffee");
    ASSERT_TRUE(h.in(headers(1, block, END_STREAM | END_HEADERS)));
    EXPECT_EQ(h.read_all(1), "2\r\nab\r\n0\r\nx-checksum: c0ffee\r\n\r\n");
    EXPECT_TRUE(h.session.request_done(1));
}

TEST(H2Session, ReadInSmallPieces) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/p"), END_STREAM | END_HEADERS)));
    std::string all;
    for (std::string piece; !(piece = h.read(1, 3)).empty();) {
        EXPECT_LE(piece.size(), 3u);
        all += piece;
    }
    EXPECT_EQ(all, "GET /p HTTP/1.1\r\nhost: example.com\r\n\r\n");
    EXPECT_TRUE(h.session.request_done(1));
}

TEST(H2Session, HostMismatchIsStreamError) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/", {{"host", "other.example"}}), END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(1));
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], PROTOCOL_ERROR);
    EXPECT_EQ(h.session.running(), 0u);
    // The connection goes on.
    ASSERT_TRUE(h.in(headers(3, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_TRUE(h.owner.requested(3));
}

TEST(H2Session, ExtendedConnectWebSocket) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(
        1,
        request_block("CONNECT", "/chat", {{":protocol", "websocket"}, {"sec-websocket-version", "13"}}),
        END_HEADERS)));
    ASSERT_TRUE(h.owner.requested(1));
    const std::string head = h.read_all(1);
    const std::string prefix =
        "GET /chat HTTP/1.1\r\nhost: example.com\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: ";
    ASSERT_EQ(head.substr(0, prefix.size()), prefix);
    const std::string key = head.substr(prefix.size(), 24);
    EXPECT_EQ(key.substr(22), "==");
    EXPECT_EQ(head.substr(prefix.size() + 24), "\r\nsec-websocket-version: 13\r\n\r\n");

    ASSERT_TRUE(h.session.write(1,
                                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: xyz=\r\n\r\n\x81\x02hi"));
    h.pump();
    ASSERT_EQ(h.stream(1).heads.size(), 1u);
    EXPECT_EQ(h.stream(1).heads[0], (fields_t{{":status", "200"}}));
    EXPECT_EQ(h.stream(1).body, "\x81\x02hi");
    EXPECT_FALSE(h.stream(1).ended);
    // Client tunnel bytes reach the pipeline as they are.
    ASSERT_TRUE(h.in(data(1, "\x81\x85masks")));
    EXPECT_EQ(h.read_all(1), "\x81\x85masks");
    // The pipeline ends the tunnel: END_STREAM, no reset.
    h.session.finish(1);
    h.pump();
    EXPECT_TRUE(h.stream(1).ended);
    EXPECT_TRUE(h.stream(1).resets.empty() || h.stream(1).resets[0] == NO_ERROR);
}

TEST(H2Session, ExtendedConnectKeysDiffer) {
    harness h;
    h.connect();
    std::vector<std::string> keys;
    for (std::uint32_t id = 1; id <= 5; id += 2) {
        ASSERT_TRUE(h.in(headers(id, request_block("CONNECT", "/ws", {{":protocol", "websocket"}}), END_HEADERS)));
        const std::string head = h.read_all(static_cast<std::int32_t>(id));
        const auto at = head.find("sec-websocket-key: ");
        ASSERT_NE(at, std::string::npos);
        keys.push_back(head.substr(at + 19, 24));
    }
    EXPECT_NE(keys[0], keys[1]);
    EXPECT_NE(keys[1], keys[2]);
}

TEST(H2Session, ExtendedConnectOtherProtocolRefused) {
    harness h;
    h.connect();
    h.in(headers(1, request_block("CONNECT", "/x", {{":protocol", "connect-udp"}}), END_HEADERS));
    EXPECT_FALSE(h.owner.requested(1));
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], PROTOCOL_ERROR);
}

TEST(H2Session, MalformedResponseResetsStream) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    h.read_all(1);
    EXPECT_FALSE(h.session.write(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"));
    h.session.finish(1);
    h.pump();
    ASSERT_FALSE(h.stream(1).resets.empty());
    EXPECT_EQ(h.stream(1).resets[0], INTERNAL_ERROR);
    EXPECT_TRUE(h.stream(1).heads.empty());
}

TEST(H2Session, CompleteResponseBeforeRequestEndStopsTheClient) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/big", {{"content-length", "100000"}}), END_HEADERS)));
    h.read_all(1);
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"));
    h.pump();
    EXPECT_EQ(status_of(h.stream(1).heads.at(0)), "413");
    EXPECT_TRUE(h.stream(1).ended);
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], NO_ERROR);
    EXPECT_FALSE(h.session.stream_gone(1));  // the response went out whole
    h.session.finish(1);
    EXPECT_EQ(h.session.running(), 0u);
}

// ---- flow control -------------------------------------------------------------------------

TEST(H2Session, RequestWindowReopensOnlyAfterRead) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/up", {{"content-length", "50000"}}), END_HEADERS)));
    const std::string head = h.read_all(1);
    const std::size_t mark = h.view.frames.size();
    ASSERT_TRUE(h.in(data(1, std::string(40000, 'x'))));
    EXPECT_TRUE(h.view.find(WINDOW_UPDATE, mark).empty());

    // Part of it read: still nothing.
    EXPECT_EQ(h.read(1, 1000).size(), 1000u);
    h.pump();
    EXPECT_TRUE(h.view.find(WINDOW_UPDATE, mark).empty());

    // All of it read: the stream's window is given back.
    EXPECT_EQ(h.read_all(1).size(), 39000u);
    h.pump();
    const auto wu = h.view.find(WINDOW_UPDATE, mark, 1);
    ASSERT_EQ(wu.size(), 1u);
    EXPECT_EQ(wu[0]->word(0), 40000u);
    EXPECT_TRUE(h.view.find(WINDOW_UPDATE, mark, 0).empty());  // the 1 MiB connection window is far from half used
}

TEST(H2Session, UnreadRequestBodyIsHeldToTheWindow) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/up"), END_HEADERS)));
    h.read_all(1);
    // The stream window is 65536 (the server's SETTINGS, acknowledged): all of it may come.
    ASSERT_TRUE(h.in(data(1, std::string(65536, 'y'))));
    EXPECT_TRUE(h.stream(1).resets.empty());
    // One byte more without the pipeline reading is a flow-control violation.
    h.in(data(1, "z"));
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], FLOW_CONTROL_ERROR);
}

TEST(H2Session, LargeResponseWaitsForClientWindow) {
    harness h;
    h.connect();  // client windows: the default 65535 for the stream and the connection
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/large"), END_STREAM | END_HEADERS)));
    h.read_all(1);
    const std::string body(100000, 'b');
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + body));
    EXPECT_EQ(h.session.unsent(1), 100000u);
    const std::size_t events = h.owner.event_count(1);
    h.pump();
    EXPECT_EQ(h.stream(1).body.size(), 65535u);
    EXPECT_FALSE(h.stream(1).ended);
    EXPECT_EQ(h.session.unsent(1), 100000u - 65535u);
    EXPECT_GT(h.owner.event_count(1), events);  // the pipeline is told there is room again
    h.pump();
    EXPECT_EQ(h.stream(1).body.size(), 65535u);  // nothing more without a WINDOW_UPDATE

    ASSERT_TRUE(h.in(window_update(1, 20000)));
    EXPECT_EQ(h.stream(1).body.size(), 65535u);  // the connection window is still closed
    ASSERT_TRUE(h.in(window_update(0, 50000)));
    EXPECT_EQ(h.stream(1).body.size(), 85535u);
    EXPECT_EQ(h.session.unsent(1), 100000u - 85535u);
    ASSERT_TRUE(h.in(window_update(1, 50000)));
    EXPECT_EQ(h.stream(1).body.size(), 100000u);
    EXPECT_TRUE(h.stream(1).ended);
    EXPECT_EQ(h.session.unsent(1), 0u);
    EXPECT_EQ(h.stream(1).body, body);
}

TEST(H2Session, SendLimitStopsOnceReached) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n" + std::string(60000, 'q')));
    std::string out;
    h.session.send(out, 100);
    EXPECT_GE(out.size(), 100u);
    EXPECT_LT(out.size(), 60000u);
    EXPECT_TRUE(h.session.want_write());
    h.view.absorb(out);
    h.pump();
    EXPECT_EQ(h.stream(1).body.size(), 60000u);
}

// ---- resets, finish, shutdown -------------------------------------------------------------

TEST(H2Session, ClientResetMakesStreamGone) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/"), END_HEADERS)));
    h.read_all(1);
    const std::size_t events = h.owner.event_count(1);
    ASSERT_TRUE(h.in(rst(1, CANCEL)));
    EXPECT_GT(h.owner.event_count(1), events);
    EXPECT_TRUE(h.session.stream_gone(1));
    EXPECT_EQ(h.read(1).size(), 0u);
    EXPECT_FALSE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_EQ(h.session.running(), 1u);  // the pipeline still runs until it finishes
    const std::size_t mark = h.view.frames.size();
    h.session.finish(1);
    EXPECT_EQ(h.session.running(), 0u);
    h.pump();
    EXPECT_EQ(h.view.frames.size(), mark);  // nothing is sent for a reset stream
    EXPECT_TRUE(h.session.stream_gone(1));
}

TEST(H2Session, FinishWithoutResponseResets) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    h.session.finish(1);
    h.pump();
    EXPECT_TRUE(h.stream(1).heads.empty());
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], INTERNAL_ERROR);
}

TEST(H2Session, FinishWithTruncatedBodyResets) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"));
    h.pump();
    h.session.finish(1);
    h.pump();
    EXPECT_EQ(status_of(h.stream(1).heads.at(0)), "200");
    EXPECT_EQ(h.stream(1).body, "12345");
    EXPECT_FALSE(h.stream(1).ended);
    ASSERT_EQ(h.stream(1).resets.size(), 1u);
    EXPECT_EQ(h.stream(1).resets[0], INTERNAL_ERROR);
}

TEST(H2Session, FinishEndsCloseDelimitedBody) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil"));
    h.pump();
    EXPECT_FALSE(h.stream(1).ended);
    ASSERT_TRUE(h.session.write(1, " close"));
    h.session.finish(1);
    h.pump();
    EXPECT_EQ(h.stream(1).body, "until close");
    EXPECT_TRUE(h.stream(1).ended);
    EXPECT_TRUE(h.stream(1).resets.empty());
}

TEST(H2Session, FinishBeforeBufferedBodyIsSentStillDeliversIt) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'w')));
    h.session.finish(1);
    EXPECT_EQ(h.session.running(), 0u);
    h.pump();
    EXPECT_EQ(h.stream(1).body.size(), 65535u);
    ASSERT_TRUE(h.in(window_update(0, 10000) + window_update(1, 10000)));
    EXPECT_EQ(h.stream(1).body.size(), 70000u);
    EXPECT_TRUE(h.stream(1).ended);
    EXPECT_TRUE(h.stream(1).resets.empty());
}

TEST(H2Session, ShutdownSendsGoawayWithLastStream) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/a"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.in(headers(3, request_block("GET", "/b"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 204 No Content\r\n\r\n"));
    h.session.finish(1);
    h.session.shutdown();
    h.session.shutdown();  // once only
    h.pump();
    ASSERT_EQ(h.view.find(GOAWAY).size(), 1u);
    const auto g = h.view.goaway();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->first, 3u);
    EXPECT_EQ(g->second, NO_ERROR);
    // Streams after the GOAWAY are not processed; stream 3 still finishes.
    h.in(headers(5, request_block("GET", "/c"), END_STREAM | END_HEADERS));
    EXPECT_FALSE(h.owner.requested(5));
    ASSERT_TRUE(h.session.write(3, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"));
    h.session.finish(3);
    h.pump();
    EXPECT_TRUE(h.stream(3).ended);
    EXPECT_EQ(h.stream(3).body, "x");
    EXPECT_FALSE(h.session.want_write());
    EXPECT_FALSE(h.session.want_read());
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Session, HeaderListOverLimitGets431) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/", {{"x-big", std::string(33000, 'v')}}), END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(1));
    EXPECT_FALSE(h.session.abused());
    const auto& s = h.stream(1);
    ASSERT_EQ(s.heads.size(), 1u);
    EXPECT_EQ(s.heads[0], (fields_t{{":status", "431"}, {"content-length", "0"}}));
    EXPECT_TRUE(s.ended);
    EXPECT_EQ(h.session.running(), 0u);
    // Many fields adding up over the limit, on a stream whose request has a body.
    fields_t many;
    for (int i = 0; i < 40; ++i) many.emplace_back("x-f" + std::to_string(i), std::string(1000, 'a'));
    ASSERT_TRUE(h.in(headers(3, request_block("POST", "/", many), END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(3));
    EXPECT_EQ(status_of(h.stream(3).heads.at(0)), "431");
    EXPECT_TRUE(h.stream(3).ended);
    EXPECT_EQ(h.stream(3).resets, std::vector<std::uint32_t>{NO_ERROR});  // stop sending the body
    // A request within the limit still works.
    ASSERT_TRUE(h.in(headers(5, request_block("GET", "/", {{"x-ok", std::string(30000, 'o')}}), END_STREAM | END_HEADERS)));
    EXPECT_TRUE(h.owner.requested(5));
    EXPECT_FALSE(h.session.abused());
}

// ---- concurrency --------------------------------------------------------------------------

// Streams 1 and 3 get whole responses (nghttp2 closes them) but their pipelines have not
// finished: they still count.
TEST(H2Session, StreamsBeyondLimitWhilePipelinesRunAreRefused) {
    harness h(with_streams(2));
    h.connect();
    for (std::int32_t id : {1, 3}) {
        ASSERT_TRUE(h.in(headers(static_cast<std::uint32_t>(id), request_block("GET", "/"), END_STREAM | END_HEADERS)));
        h.read_all(id);
        ASSERT_TRUE(h.session.write(id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    }
    h.pump();
    EXPECT_TRUE(h.stream(1).ended);
    EXPECT_TRUE(h.stream(3).ended);
    EXPECT_EQ(h.session.running(), 2u);

    ASSERT_TRUE(h.in(headers(5, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(5));
    EXPECT_EQ(h.stream(5).resets, std::vector<std::uint32_t>{REFUSED_STREAM});
    EXPECT_EQ(h.session.refused(), 1u);

    h.session.finish(1);
    EXPECT_EQ(h.session.running(), 1u);
    ASSERT_TRUE(h.in(headers(7, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_TRUE(h.owner.requested(7));
    EXPECT_TRUE(h.stream(7).resets.empty());
    EXPECT_EQ(h.session.running(), 2u);
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Session, ResetStreamsWhosePipelinesRunStillCount) {
    harness h(with_streams(2));
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS) + rst(1, CANCEL)));
    ASSERT_TRUE(h.in(headers(3, request_block("GET", "/"), END_STREAM | END_HEADERS) + rst(3, CANCEL)));
    EXPECT_TRUE(h.session.stream_gone(1));
    EXPECT_TRUE(h.session.stream_gone(3));
    ASSERT_TRUE(h.in(headers(5, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(5));
    EXPECT_EQ(h.stream(5).resets, std::vector<std::uint32_t>{REFUSED_STREAM});
    h.session.finish(1);
    h.session.finish(3);
    ASSERT_TRUE(h.in(headers(7, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_TRUE(h.owner.requested(7));
}

// ---- abuse guards -------------------------------------------------------------------------

void expect_calm_goaway(harness& h, abuse kind) {
    ASSERT_TRUE(h.session.abused().has_value());
    EXPECT_EQ(*h.session.abused(), kind) << to_string(*h.session.abused());
    const auto g = h.view.goaway();
    ASSERT_TRUE(g) << "no GOAWAY";
    EXPECT_EQ(g->second, ENHANCE_YOUR_CALM);
}

TEST(H2Abuse, Names) {
    EXPECT_STREQ(to_string(abuse::rapid_reset), "rapid_reset");
    EXPECT_STREQ(to_string(abuse::continuation_flood), "continuation_flood");
    EXPECT_STREQ(to_string(abuse::settings_flood), "settings_flood");
    EXPECT_STREQ(to_string(abuse::ping_flood), "ping_flood");
    EXPECT_STREQ(to_string(abuse::empty_frames), "empty_frames");
    EXPECT_STREQ(to_string(abuse::hpack_bomb), "hpack_bomb");
    EXPECT_STREQ(to_string(abuse::too_many_streams), "too_many_streams");
}

std::string open_and_reset(std::uint32_t first_id, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        const std::uint32_t id = first_id + 2 * static_cast<std::uint32_t>(i);
        out += headers(id, request_block("GET", "/"), END_STREAM | END_HEADERS) + rst(id, CANCEL);
    }
    return out;
}

TEST(H2Abuse, RapidReset) {
    harness h(with_streams(1000));
    h.connect();
    ASSERT_TRUE(h.in(open_and_reset(1, 100)));
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.in(open_and_reset(201, 1)));
    expect_calm_goaway(h, abuse::rapid_reset);
    EXPECT_FALSE(h.session.receive(ping(1), h.now));
}

TEST(H2Abuse, ResetsAtAnHonestRateAreFine) {
    harness h(with_streams(1000));
    h.connect();
    ASSERT_TRUE(h.in(open_and_reset(1, 100)));  // the whole burst
    std::uint32_t id = 201;
    // Then 10 a second, the refill rate. (9 seconds: nghttp2's own backstop, 200 at once and
    // 20 a second, runs on the real clock, where this whole test takes no time.)
    for (int second = 0; second < 9; ++second) {
        h.now += 1s;
        ASSERT_TRUE(h.in(open_and_reset(id, 10))) << second;
        id += 20;
    }
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.view.goaway());
}

// Resets the server sends because the client broke a stream rule on purpose ("MadeYouReset",
// CVE-2025-8671): each started a pipeline, exactly like HEADERS + RST_STREAM does.
std::string open_and_provoke_reset(std::uint32_t first_id, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        const std::uint32_t id = first_id + 2 * static_cast<std::uint32_t>(i);
        out += headers(id, request_block("POST", "/", {{"content-length", "1"}}), END_HEADERS) + data(id, "xx", END_STREAM);
    }
    return out;
}

// What h2_connection does: a pipeline whose stream is gone stops and finishes.
void finish_gone(harness& h) {
    for (const auto id : h.owner.requests)
        if (h.session.stream_gone(id)) h.session.finish(id);
}

TEST(H2Abuse, ProvokedResetsStartPipelines) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(open_and_provoke_reset(1, 10)));
    EXPECT_EQ(h.owner.requests.size(), 10u);
    EXPECT_EQ(h.view.find(RST_STREAM).size(), 10u);
    for (const auto id : h.owner.requests) EXPECT_TRUE(h.session.stream_gone(id));
}

// Streams the client gets the server to reset (DATA beyond content-length here; a zero
// WINDOW_UPDATE works too) count like client resets ("MadeYouReset", CVE-2025-8671).
TEST(H2Abuse, ProvokedResetsCountAsRapidReset) {
    harness h;
    h.connect();
    std::uint32_t id = 1;
    for (int batch = 0; batch < 30 && !h.session.abused(); ++batch, id += 20) {
        h.in(open_and_provoke_reset(id, 10));
        finish_gone(h);
    }
    EXPECT_GT(h.owner.requests.size(), 100u);
    expect_calm_goaway(h, abuse::rapid_reset);
}

TEST(H2Abuse, ResetAfterResponseIsNotCounted) {
    harness h(with_streams(1000));
    h.connect();
    // The response is complete; the client cancels its (endless) upload: not abuse.
    for (std::uint32_t i = 0; i < 150; ++i) {
        const std::uint32_t id = 1 + 2 * i;
        ASSERT_TRUE(h.in(headers(id, request_block("POST", "/"), END_HEADERS)));
        ASSERT_TRUE(h.session.write(static_cast<std::int32_t>(id), "HTTP/1.1 204 No Content\r\n\r\n"));
        h.session.finish(static_cast<std::int32_t>(id));
        h.pump();
        ASSERT_TRUE(h.in(rst(id, CANCEL)));
    }
    EXPECT_FALSE(h.session.abused());
}

// A header block: HEADERS then `continuations` one-byte CONTINUATION frames, the last ending it.
std::string split_block(std::uint32_t stream, int continuations) {
    const std::string block = request_block("GET", "/", {{"x-long", std::string(100, 'l')}});
    const std::size_t head_len = block.size() - static_cast<std::size_t>(continuations);
    std::string out = frame(HEADERS, END_STREAM, stream, std::string_view(block).substr(0, head_len));
    for (int i = 0; i < continuations; ++i) {
        const bool last = i + 1 == continuations;
        out += frame(CONTINUATION, last ? END_HEADERS : 0, stream,
                     std::string_view(block).substr(head_len + static_cast<std::size_t>(i), 1));
    }
    return out;
}

TEST(H2Abuse, ContinuationFlood) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(split_block(1, 32)));  // 32 is allowed
    EXPECT_TRUE(h.owner.requested(1));
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.in(split_block(3, 33)));
    EXPECT_FALSE(h.owner.requested(3));
    expect_calm_goaway(h, abuse::continuation_flood);
}

TEST(H2Abuse, EndlessContinuationWithoutEndHeaders) {
    harness h;
    h.connect();
    // A valid block that never ends: one long literal value, a byte per CONTINUATION.
    std::string block = request_block("GET", "/");
    block.push_back(0x00);
    hpack_int(block, 0, 7, 1);
    block += "x";
    hpack_int(block, 0, 7, 1000);
    std::string flood = frame(HEADERS, 0, 1, block);
    for (int i = 0; i < 200; ++i) flood += frame(CONTINUATION, 0, 1, "v");
    EXPECT_FALSE(h.in(flood));
    expect_calm_goaway(h, abuse::continuation_flood);
}

// A block nghttp2 ignores (here: its stream already failed on a repeated :method) goes on
// with CONTINUATION frames nghttp2 never reports to on_begin_frame: nghttp2's own limit, set
// to the session's 32, catches them, and the session turns that into the counted GOAWAY.
std::string ignored_block_flood(int continuations) {
    std::string block;
    literal(block, ":method", "GET");
    std::string flood = frame(HEADERS, 0, 1, block);
    for (int i = 0; i < continuations; ++i) flood += frame(CONTINUATION, 0, 1, std::string(1, '\x82'));
    return flood;
}

TEST(H2Abuse, IgnoredBlockContinuationFloodStillEndsConnection) {
    harness h;
    h.connect();
    EXPECT_FALSE(h.in(ignored_block_flood(65)));
}

// See ignored_block_flood: 40 CONTINUATION frames in one ignored block trip the guard.
TEST(H2Abuse, IgnoredBlockContinuationFloodIsCounted) {
    harness h;
    h.connect();
    EXPECT_FALSE(h.in(ignored_block_flood(40)));
    expect_calm_goaway(h, abuse::continuation_flood);
}

TEST(H2Abuse, SettingsFlood) {
    harness h;
    h.connect();  // one SETTINGS already
    std::string flood;
    for (int i = 0; i < 99; ++i) flood += settings_frame();
    ASSERT_TRUE(h.in(flood));
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.in(settings_frame()));
    expect_calm_goaway(h, abuse::settings_flood);
}

TEST(H2Abuse, SettingsAtAnHonestRateAreFine) {
    harness h;
    h.connect();
    for (int i = 0; i < 300; ++i) {
        h.now += 100ms;
        ASSERT_TRUE(h.in(settings_frame({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 70000}}))) << i;
    }
    // SETTINGS ACKs from the client are never counted.
    std::string acks;
    for (int i = 0; i < 500; ++i) acks += settings_ack();
    h.in(acks);
    EXPECT_NE(h.session.abused(), abuse::settings_flood);
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Abuse, PingFlood) {
    harness h;
    h.connect();
    std::string flood;
    for (int i = 0; i < 100; ++i) flood += ping(static_cast<std::uint64_t>(i));
    ASSERT_TRUE(h.in(flood));
    EXPECT_EQ(h.view.find(PING).size(), 100u);
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.in(ping(100)));
    expect_calm_goaway(h, abuse::ping_flood);
}

TEST(H2Abuse, PingsAtAnHonestRateAreFine) {
    harness h;
    h.connect();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(h.in(ping(static_cast<std::uint64_t>(i))));
    for (int i = 0; i < 300; ++i) {
        h.now += 100ms;
        ASSERT_TRUE(h.in(ping(static_cast<std::uint64_t>(i)))) << i;
    }
    // PING ACKs are not counted.
    std::string acks;
    for (int i = 0; i < 500; ++i) acks += frame(PING, ACK, 0, std::string(8, '\0'));
    ASSERT_TRUE(h.in(acks));
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Abuse, EmptyDataFrames) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/"), END_HEADERS)));
    std::string flood;
    for (int i = 0; i < 100; ++i) flood += frame(DATA, 0, 1, "");
    ASSERT_TRUE(h.in(flood));
    EXPECT_FALSE(h.session.abused());
    EXPECT_FALSE(h.in(frame(DATA, 0, 1, "")));
    expect_calm_goaway(h, abuse::empty_frames);
}

TEST(H2Abuse, EmptyContinuationFrames) {
    harness h;
    h.connect();
    // Empty frames in many blocks (each below the CONTINUATION limit) add up.
    std::string flood;
    for (std::uint32_t s = 0; s < 5; ++s) {
        const std::uint32_t id = 1 + 2 * s;
        flood += frame(HEADERS, END_STREAM, id, request_block("GET", "/"));
        for (int i = 0; i < 30; ++i) flood += frame(CONTINUATION, 0, id, "");
        flood += frame(CONTINUATION, END_HEADERS, id, "");
    }
    EXPECT_FALSE(h.in(flood));
    expect_calm_goaway(h, abuse::empty_frames);
}

TEST(H2Abuse, EmptyFramesThatEndSomethingAreFine) {
    harness h(with_streams(1000));
    h.connect();
    for (std::uint32_t i = 0; i < 300; ++i) {
        const std::uint32_t id = 1 + 2 * i;
        ASSERT_TRUE(h.in(headers(id, request_block("POST", "/"), END_HEADERS) + frame(DATA, END_STREAM, id, "")));
        h.read_all(static_cast<std::int32_t>(id));
        ASSERT_TRUE(h.session.write(static_cast<std::int32_t>(id), "HTTP/1.1 204 No Content\r\n\r\n"));
        h.session.finish(static_cast<std::int32_t>(id));
        h.pump();
    }
    EXPECT_FALSE(h.session.abused());
}

// One 4 KiB field in the dynamic table, then referenced again and again with one byte each.
TEST(H2Abuse, HpackBomb) {
    harness h;
    h.connect();
    std::string block = request_block("GET", "/");
    literal(block, "x-b", std::string(4000, 'B'), true);  // dynamic table index 62
    for (int i = 0; i < 20; ++i) indexed(block, 62);
    EXPECT_FALSE(h.in(headers(1, block, END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(1));
    expect_calm_goaway(h, abuse::hpack_bomb);
}

TEST(H2Abuse, DynamicTableReuseBelowLimitIsFine) {
    harness h;
    h.connect();
    std::string first = request_block("GET", "/1");
    literal(first, "x-b", std::string(4000, 'B'), true);
    ASSERT_TRUE(h.in(headers(1, first, END_STREAM | END_HEADERS)));
    std::string second = request_block("GET", "/2");
    for (int i = 0; i < 6; ++i) indexed(second, 62);  // ~24 KiB decoded from 6 bytes, under the limit
    ASSERT_TRUE(h.in(headers(3, second, END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.owner.requested(3));
    const std::string head = h.read_all(3);
    std::size_t count = 0;
    for (std::size_t at = 0; (at = head.find("x-b: ", at)) != std::string::npos; ++at) ++count;
    EXPECT_EQ(count, 6u);
    EXPECT_FALSE(h.session.abused());
}

// The trailer section is a header list of its own: a plain literal trailer after a large (but
// allowed) head is neither over the limit nor an HPACK bomb.
TEST(H2Abuse, LargeHeadThenLiteralTrailersIsNotABomb) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/rpc", {{"x-pad", std::string(30000, 'p')}}), END_HEADERS)));
    ASSERT_TRUE(h.owner.requested(1));
    h.read_all(1);
    ASSERT_TRUE(h.in(data(1, "ab")));
    std::string trailers;
    literal(trailers, "x-t", std::string(3000, 't'));
    EXPECT_TRUE(h.in(headers(1, trailers, END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.session.abused());
    EXPECT_EQ(h.read_all(1), "2\r\nab\r\n0\r\nx-t: " + std::string(3000, 't') + "\r\n\r\n");
    EXPECT_FALSE(h.view.goaway());
}

TEST(H2Abuse, TooManyRefusedStreams) {
    harness h(with_streams(1));
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    ASSERT_TRUE(h.session.write(1, "HTTP/1.1 204 No Content\r\n\r\n"));  // never finished
    h.pump();
    std::uint32_t id = 3;
    for (int i = 0; i < 100; ++i, id += 2)
        ASSERT_TRUE(h.in(headers(id, request_block("GET", "/"), END_STREAM | END_HEADERS))) << i;
    EXPECT_EQ(h.session.refused(), 100u);
    EXPECT_EQ(h.view.find(RST_STREAM).size(), 100u);
    EXPECT_FALSE(h.session.abused());
    h.in(headers(id, request_block("GET", "/"), END_STREAM | END_HEADERS));
    EXPECT_EQ(h.session.refused(), 101u);
    expect_calm_goaway(h, abuse::too_many_streams);
    EXPECT_FALSE(h.session.receive(ping(1), h.now));
}

// Streams open at once beyond the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 ends
// the connection (RFC 9113 §5.1.2), and the session counts it.
TEST(H2Abuse, OpenStreamsBeyondAcknowledgedLimit) {
    harness h(with_streams(2));
    h.connect();
    ASSERT_TRUE(h.in(headers(1, request_block("POST", "/"), END_HEADERS)));
    ASSERT_TRUE(h.in(headers(3, request_block("POST", "/"), END_HEADERS)));
    h.in(headers(5, request_block("POST", "/"), END_HEADERS));  // counted when the GOAWAY goes out
    EXPECT_FALSE(h.owner.requested(5));
    EXPECT_FALSE(h.session.receive(ping(1), h.now));
    const auto g = h.view.goaway();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->second, PROTOCOL_ERROR);
    EXPECT_EQ(h.session.abused(), abuse::too_many_streams);
}

TEST(H2Session, HeadersOnSkippedStreamIdIsConnectionError) {
    harness h;
    h.connect();
    ASSERT_TRUE(h.in(headers(5, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_TRUE(h.owner.requested(5));
    EXPECT_FALSE(h.in(headers(3, request_block("GET", "/"), END_STREAM | END_HEADERS)));
    EXPECT_FALSE(h.owner.requested(3));
    const auto g = h.view.goaway();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->second, PROTOCOL_ERROR);
    EXPECT_FALSE(h.session.abused());
}

TEST(H2Abuse, ManyStreamsWithinTheLimitAreFine) {
    harness h(with_streams(10));
    h.connect();
    for (std::uint32_t i = 0; i < 500; ++i) {
        const std::uint32_t id = 1 + 2 * i;
        ASSERT_TRUE(h.in(headers(id, request_block("GET", "/"), END_STREAM | END_HEADERS)));
        const auto sid = static_cast<std::int32_t>(id);
        ASSERT_TRUE(h.owner.requested(sid));
        h.read_all(sid);
        ASSERT_TRUE(h.session.write(sid, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"));
        h.pump();
        h.session.finish(sid);
    }
    EXPECT_EQ(h.session.refused(), 0u);
    EXPECT_EQ(h.session.running(), 0u);
    EXPECT_FALSE(h.session.abused());
}

}  // namespace
}  // namespace sentinel::h2
