// The HTTP/2 client layer for upstreams of protocol "h2": field_list, body_reader and
// request_translator (an HTTP/1.1 request to HTTP/2 fields, DATA and trailers), and
// client_session driven end to end by a server-side nghttp2 session in the test (so every
// frame the client sends is checked by a real peer, and every frame the server sends is one a
// real server could send).
#include <gtest/gtest.h>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/h2/client_session.hpp"
#include "http/h2/translate.hpp"
#include "http/http1/parser.hpp"

namespace sentinel::h2 {
namespace {

using namespace std::string_literals;
using fields_t = std::vector<std::pair<std::string, std::string>>;
using failure = client_session::failure;

fields_t copy(const std::vector<field>& fs) {
    fields_t out;
    for (const auto& f : fs) out.emplace_back(std::string(f.name), std::string(f.value));
    return out;
}

// ---- field_list ---------------------------------------------------------------------------

TEST(FieldList, NamesLowercasedValuesKept) {
    field_list l;
    l.add("Content-Type", "Text/HTML");
    l.add("X-MiXeD", "");
    EXPECT_EQ(copy(l.fields()), (fields_t{{"content-type", "Text/HTML"}, {"x-mixed", ""}}));
}

TEST(FieldList, ViewsSurviveGrowthAndClear) {
    field_list l;
    l.add("a", "1");
    ASSERT_EQ(l.fields().size(), 1u);
    // Enough fields to move the buffer several times; every view is rebuilt.
    for (int i = 0; i < 200; ++i) l.add("Name-" + std::to_string(i), std::string(50, static_cast<char>('a' + i % 26)));
    const auto& fs = l.fields();
    ASSERT_EQ(fs.size(), 201u);
    EXPECT_EQ(fs[0].name, "a");
    EXPECT_EQ(fs[0].value, "1");
    EXPECT_EQ(fs[200].name, "name-199");
    EXPECT_EQ(fs[200].value, std::string(50, static_cast<char>('a' + 199 % 26)));
    l.clear();
    EXPECT_TRUE(l.fields().empty());
    l.add("B", "2");
    EXPECT_EQ(copy(l.fields()), (fields_t{{"b", "2"}}));
}

// ---- body_reader --------------------------------------------------------------------------

TEST(BodyReader, ContentLengthInPiecesIgnoresWhatFollows) {
    body_reader r;
    r.start(http1::body_framing::content_length, 5);
    EXPECT_TRUE(r.expected());
    EXPECT_FALSE(r.complete());
    std::string out;
    std::string_view a = "hel";
    ASSERT_TRUE(r.feed(a, out));
    EXPECT_TRUE(a.empty());
    EXPECT_FALSE(r.complete());
    std::string_view b = "loEXTRA";
    ASSERT_TRUE(r.feed(b, out));
    EXPECT_TRUE(b.empty());
    EXPECT_TRUE(r.complete());
    EXPECT_EQ(out, "hello");
    std::string_view c = "more";
    ASSERT_TRUE(r.feed(c, out));
    EXPECT_EQ(out, "hello");
}

TEST(BodyReader, ZeroLengthAndNoneAreCompleteAtOnce) {
    body_reader r;
    r.start(http1::body_framing::content_length, 0);
    EXPECT_FALSE(r.expected());
    EXPECT_TRUE(r.complete());
    r.start(http1::body_framing::none, 0);
    EXPECT_FALSE(r.expected());
    EXPECT_TRUE(r.complete());
}

TEST(BodyReader, ChunkedTrailersFilteredByteByByte) {
    const std::string_view wire =
        "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nGrpc-Status: 0\r\nContent-Length: 3\r\nHost: x\r\n"
        "Connection: close\r\nTE: trailers\r\nX-Trim:  \t v a \t\r\n\r\n";
    body_reader r;
    r.start(http1::body_framing::chunked, 0);
    std::string out;
    for (char c : wire) {
        std::string_view one(&c, 1);
        ASSERT_TRUE(r.feed(one, out));
    }
    EXPECT_TRUE(r.complete());
    EXPECT_EQ(out, "Wikipedia");
    EXPECT_EQ(copy(r.trailers()), (fields_t{{"grpc-status", "0"}, {"x-trim", "v a"}}));
}

TEST(BodyReader, ChunkedWithoutTrailers) {
    body_reader r;
    r.start(http1::body_framing::chunked, 0);
    std::string out;
    std::string_view wire = "3\r\nabc\r\n0\r\n\r\n";
    ASSERT_TRUE(r.feed(wire, out));
    EXPECT_TRUE(r.complete());
    EXPECT_EQ(out, "abc");
    EXPECT_TRUE(r.trailers().empty());
}

TEST(BodyReader, BadChunkIsError) {
    body_reader r;
    r.start(http1::body_framing::chunked, 0);
    std::string out;
    std::string_view wire = "zz\r\nabc\r\n";
    EXPECT_FALSE(r.feed(wire, out));
}

TEST(BodyReader, UntilCloseCompletedByFinish) {
    body_reader r;
    r.start(http1::body_framing::until_close, 0);
    std::string out;
    std::string_view wire = "anything";
    ASSERT_TRUE(r.feed(wire, out));
    EXPECT_FALSE(r.complete());
    EXPECT_TRUE(r.finish());
    EXPECT_EQ(out, "anything");
}

// ---- request_translator -------------------------------------------------------------------

struct translated {
    bool error = false;
    int heads = 0;  // how many times status::head came back
    fields_t fields;
    std::string body;
    fields_t trailers;
    bool complete = false;
    bool body_expected = false;
    std::string method;
};

// Feeds `wire` in pieces of `piece` bytes.
translated translate(std::string_view wire, bool tls = false, std::size_t piece = std::string_view::npos) {
    request_translator t;
    t.start(tls, "origin.test:8080");
    translated r;
    while (!wire.empty() && !r.error) {
        std::string_view part = wire.substr(0, piece);
        wire.remove_prefix(part.size());
        while (!part.empty()) {
            const auto st = t.feed(part, r.body);
            if (st == request_translator::status::error) {
                r.error = true;
                break;
            }
            if (st == request_translator::status::head) {
                ++r.heads;
                r.fields = copy(t.fields());
                r.body_expected = t.body_expected();
                r.method = t.method();
            }
        }
    }
    r.complete = t.complete();
    if (r.complete) r.trailers = copy(t.trailers());
    return r;
}

TEST(RequestTranslator, GetPseudoHeadersFirstHopByHopDropped) {
    const auto r = translate(
        "GET /a/b?c=d HTTP/1.1\r\n"
        "Host: Example.COM:8443\r\n"
        "User-Agent: t/1\r\n"
        "Connection: keep-alive, X-Private\r\n"
        "X-Private: secret\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Trailer: x\r\n"
        "Accept: */*\r\n"
        "\r\n");
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.heads, 1);
    EXPECT_EQ(r.fields, (fields_t{{":method", "GET"},
                                  {":scheme", "http"},
                                  {":authority", "Example.COM:8443"},
                                  {":path", "/a/b?c=d"},
                                  {"user-agent", "t/1"},
                                  {"accept", "*/*"}}));
    EXPECT_FALSE(r.body_expected);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.method, "GET");
}

TEST(RequestTranslator, SchemeFollowsTls) {
    const auto r = translate("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true);
    ASSERT_FALSE(r.error);
    ASSERT_GE(r.fields.size(), 4u);
    EXPECT_EQ(r.fields[1], (std::pair<std::string, std::string>{":scheme", "https"}));
}

TEST(RequestTranslator, PostWithContentLength) {
    const auto r = translate("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world");
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.fields, (fields_t{{":method", "POST"},
                                  {":scheme", "http"},
                                  {":authority", "h"},
                                  {":path", "/up"},
                                  {"content-length", "11"},
                                  {"content-type", "text/plain"}}));
    EXPECT_TRUE(r.body_expected);
    EXPECT_EQ(r.body, "hello world");
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.trailers.empty());
}

TEST(RequestTranslator, ContentLengthBodyIncompleteUntilAllBytes) {
    const auto r = translate("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345");
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.body, "12345");
    EXPECT_FALSE(r.complete);
}

TEST(RequestTranslator, ChunkedBodyDechunkedTrailersKept) {
    const std::string wire =
        "POST /rpc HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nHost: evil\r\n\r\n";
    for (const std::size_t piece : {std::string::npos, std::size_t{1}, std::size_t{7}}) {
        const auto r = translate(wire, false, piece);
        ASSERT_FALSE(r.error) << piece;
        EXPECT_EQ(r.heads, 1) << piece;
        EXPECT_EQ(r.fields, (fields_t{{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/rpc"}}))
            << piece;  // no transfer-encoding
        EXPECT_TRUE(r.body_expected);
        EXPECT_EQ(r.body, "hello world") << piece;
        EXPECT_TRUE(r.complete) << piece;
        EXPECT_EQ(r.trailers, (fields_t{{"x-checksum", "abc"}})) << piece;
    }
}

TEST(RequestTranslator, GrpcAddsTeTrailers) {
    const auto r = translate(
        "POST /pkg.Svc/Call HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc+proto\r\nTE: trailers\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.fields, (fields_t{{":method", "POST"},
                                  {":scheme", "http"},
                                  {":authority", "h"},
                                  {":path", "/pkg.Svc/Call"},
                                  {"content-type", "application/grpc+proto"},
                                  {"te", "trailers"}}));
    EXPECT_TRUE(r.complete);
}

TEST(RequestTranslator, OtherContentTypeNoTe) {
    const auto r = translate("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n");
    ASSERT_FALSE(r.error);
    for (const auto& [n, v] : r.fields) EXPECT_NE(n, "te");
    EXPECT_FALSE(r.body_expected);
    EXPECT_TRUE(r.complete);
}

TEST(RequestTranslator, UpgradeIsError) {
    EXPECT_TRUE(translate("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                    .error);
}

TEST(RequestTranslator, MalformedHeadIsError) {
    EXPECT_TRUE(translate("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n").error);
    EXPECT_TRUE(translate("NOT A REQUEST\r\n\r\n").error);
}

TEST(RequestTranslator, RunawayHeadIsError) {
    std::string wire = "GET / HTTP/1.1\r\nHost: h\r\n";
    while (wire.size() < 300 * 1024) wire += "X-Fill: " + std::string(1000, 'f') + "\r\n";
    EXPECT_TRUE(translate(wire, false, 4096).error);
}

TEST(RequestTranslator, HeadSplitByteByByteEqualsWhole) {
    const std::string wire =
        "PATCH /p?q=1 HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\nConnection: x-b\r\nX-B: 2\r\nContent-Length: 4\r\n\r\nbody";
    const auto whole = translate(wire);
    const auto bytes = translate(wire, false, 1);
    ASSERT_FALSE(whole.error);
    ASSERT_FALSE(bytes.error);
    EXPECT_EQ(bytes.heads, 1);
    EXPECT_EQ(bytes.fields, whole.fields);
    EXPECT_EQ(bytes.body, "body");
    EXPECT_EQ(whole.body, "body");
    EXPECT_TRUE(bytes.complete);
    EXPECT_EQ(whole.fields, (fields_t{{":method", "PATCH"},
                                      {":scheme", "http"},
                                      {":authority", "h:1"},
                                      {":path", "/p?q=1"},
                                      {"x-a", "1"},
                                      {"content-length", "4"}}));
}

// ---- client_session against an nghttp2 server ---------------------------------------------

struct recorder final : client_owner {
    std::vector<std::uint32_t> events;
    void on_stream_event(std::uint32_t handle) override { events.push_back(handle); }
    std::size_t count(std::uint32_t handle) const {
        return static_cast<std::size_t>(std::count(events.begin(), events.end(), handle));
    }
};

struct srv_frame {
    std::uint8_t type = 0, flags = 0;
    std::int32_t stream = 0;
    std::uint32_t error_code = 0;  // RST_STREAM, GOAWAY
    std::int32_t increment = 0;    // WINDOW_UPDATE
};

struct srv_stream {
    fields_t headers;   // the request head
    fields_t trailers;  // the request's trailers
    std::string body;
    bool ended = false;  // END_STREAM received
    bool closed = false;
    std::uint32_t close_code = 0;
    // The response body being sent.
    std::string out;
    std::size_t out_at = 0;
    fields_t out_trailers;
};

// An HTTP/2 server on nghttp2, without I/O: what the client sends goes in, frames out.
class test_server {
public:
    using settings_t = std::vector<nghttp2_settings_entry>;

    // `manual_window`: request DATA is acknowledged only by consume() (flow control tests).
    explicit test_server(const settings_t& settings = {}, bool manual_window = false) {
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
            static_cast<test_server*>(u)->streams[f->hd.stream_id];
            return 0;
        });
        nghttp2_session_callbacks_set_on_header_callback(
            cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl, const std::uint8_t* v,
                   std::size_t vl, std::uint8_t, void* u) {
                auto& s = static_cast<test_server*>(u)->streams[f->hd.stream_id];
                auto& list = f->headers.cat == NGHTTP2_HCAT_HEADERS ? s.trailers : s.headers;
                list.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                                  std::string(reinterpret_cast<const char*>(v), vl));
                return 0;
            });
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
            cb, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t n, void* u) {
                static_cast<test_server*>(u)->streams[id].body.append(reinterpret_cast<const char*>(d), n);
                return 0;
            });
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
            auto* self = static_cast<test_server*>(u);
            srv_frame r{f->hd.type, f->hd.flags, f->hd.stream_id, 0, 0};
            if (f->hd.type == NGHTTP2_RST_STREAM) r.error_code = f->rst_stream.error_code;
            if (f->hd.type == NGHTTP2_GOAWAY) r.error_code = f->goaway.error_code;
            if (f->hd.type == NGHTTP2_WINDOW_UPDATE) r.increment = f->window_update.window_size_increment;
            self->received.push_back(r);
            if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
                self->streams[f->hd.stream_id].ended = true;
            return 0;
        });
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, [](nghttp2_session*, std::int32_t id, std::uint32_t code,
                                                                      void* u) {
            auto& s = static_cast<test_server*>(u)->streams[id];
            s.closed = true;
            s.close_code = code;
            return 0;
        });
        nghttp2_option* opt = nullptr;
        nghttp2_option_new(&opt);
        if (manual_window) nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_session_server_new2(&session, cb, this, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    }
    ~test_server() { nghttp2_session_del(session); }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;

    nghttp2_session* session = nullptr;
    std::map<std::int32_t, srv_stream> streams;
    std::vector<srv_frame> received;

    void take(std::string_view bytes) {
        const auto n = nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ASSERT_EQ(n, static_cast<ssize_t>(bytes.size())) << nghttp2_strerror(static_cast<int>(n));
    }
    std::string drain() {
        std::string out;
        for (;;) {
            const std::uint8_t* d = nullptr;
            const auto n = nghttp2_session_mem_send(session, &d);
            if (n <= 0) break;
            out.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
        }
        return out;
    }

    // A response head; `body`: a DATA provider sends it (std::nullopt: END_STREAM on HEADERS).
    void respond(std::int32_t id, int status, const fields_t& fields, std::optional<std::string> body,
                 const fields_t& trailers = {}) {
        std::vector<std::string> keep;  // nghttp2 copies the fields on submit
        keep.push_back(std::to_string(status));
        std::vector<nghttp2_nv> nva;
        nva.push_back(nv(":status", keep.back()));
        for (const auto& [n, v] : fields) nva.push_back(nv(n, v));
        nghttp2_data_provider provider{};
        if (body) {
            auto& s = streams[id];
            s.out = *body;
            s.out_at = 0;
            s.out_trailers = trailers;
            provider.source.ptr = &s;
            provider.read_callback = [](nghttp2_session* session, std::int32_t stream_id, std::uint8_t* buf,
                                        std::size_t length, std::uint32_t* flags, nghttp2_data_source* src,
                                        void*) -> ssize_t {
                auto* st = static_cast<srv_stream*>(src->ptr);
                const std::size_t n = std::min(length, st->out.size() - st->out_at);
                std::copy_n(st->out.data() + st->out_at, n, buf);
                st->out_at += n;
                if (st->out_at == st->out.size()) {
                    *flags |= NGHTTP2_DATA_FLAG_EOF;
                    if (!st->out_trailers.empty()) {
                        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                        std::vector<nghttp2_nv> t;
                        for (const auto& [tn, tv] : st->out_trailers) t.push_back(nv(tn, tv));
                        nghttp2_submit_trailer(session, stream_id, t.data(), t.size());
                    }
                }
                return static_cast<ssize_t>(n);
            };
        }
        ASSERT_EQ(nghttp2_submit_response(session, id, nva.data(), nva.size(), body ? &provider : nullptr), 0);
    }
    // A non-final (1xx) head, or trailers.
    void headers(std::int32_t id, const fields_t& fields, bool end_stream) {
        std::vector<nghttp2_nv> nva;
        for (const auto& [n, v] : fields) nva.push_back(nv(n, v));
        ASSERT_EQ(nghttp2_submit_headers(session, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id, nullptr,
                                         nva.data(), nva.size(), nullptr),
                  0);
    }
    void rst(std::int32_t id, std::uint32_t code) {
        ASSERT_EQ(nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, code), 0);
    }
    void goaway(std::int32_t last, std::uint32_t code = NGHTTP2_NO_ERROR) {
        ASSERT_EQ(nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, last, code, nullptr, 0), 0);
    }

    std::vector<srv_frame> frames(std::uint8_t type, std::int32_t stream = -1) const {
        std::vector<srv_frame> out;
        for (const auto& f : received)
            if (f.type == type && (stream < 0 || f.stream == stream)) out.push_back(f);
        return out;
    }
    std::string header(std::int32_t id, std::string_view name) const {
        const auto it = streams.find(id);
        if (it == streams.end()) return {};
        for (const auto& [n, v] : it->second.headers)
            if (n == name) return v;
        return {};
    }

private:
    static nghttp2_nv nv(std::string_view n, std::string_view v) {
        return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
    }
};

// Moves bytes both ways until neither side has anything to say.
void pump(client_session& client, test_server& server) {
    for (int round = 0; round < 1000; ++round) {
        std::string up;
        client.send(up, std::size_t{1} << 24);
        if (!up.empty()) server.take(up);
        const std::string down = server.drain();
        if (!down.empty()) {
            EXPECT_TRUE(client.receive(down));
        }
        if (up.empty() && down.empty()) return;
    }
    ADD_FAILURE() << "pump did not settle";
}

std::string read_all(client_session& client, std::uint32_t handle, std::size_t room = 4096) {
    std::string out;
    std::string buf(room, '\0');
    for (std::size_t n; (n = client.read(handle, buf.data(), buf.size())) > 0;) out.append(buf, 0, n);
    return out;
}

struct parsed_response {
    bool ok = false;
    int status = 0;
    fields_t headers;
    http1::body_framing framing = http1::body_framing::none;
    std::size_t head_size = 0;
};

// The first head of `bytes`, by the strict HTTP/1.1 response parser.
parsed_response parse_head(std::string_view bytes, std::string_view method = "GET") {
    http1::response_head head;
    const auto r = http1::parse_response(bytes, http1::limits{}, method, head);
    parsed_response p;
    p.ok = r.status == http1::parse_status::done;
    if (!p.ok) return p;
    p.status = head.status;
    for (const auto& h : head.headers) p.headers.emplace_back(std::string(h.name), std::string(h.value));
    p.framing = head.framing;
    p.head_size = r.consumed;
    return p;
}

class ClientSession : public ::testing::Test {
protected:
    // A connected client: both prefaces and SETTINGS (and their ACKs) exchanged.
    void connect(const test_server::settings_t& settings = {}, bool manual_window = false, bool tls = false) {
        server = std::make_unique<test_server>(settings, manual_window);
        client = std::make_unique<client_session>(owner, tls, "origin.test:8080");
        pump(*client, *server);
    }
    std::uint32_t request(std::string_view wire) {
        const auto h = client->open();
        EXPECT_TRUE(client->write(h, wire));
        pump(*client, *server);
        return h;
    }
    // The nghttp2 stream id of the n-th request (1, 3, 5...).
    static std::int32_t sid(int n) { return 2 * n - 1; }

    recorder owner;
    std::unique_ptr<test_server> server;
    std::unique_ptr<client_session> client;
};

constexpr std::string_view get_wire = "GET /index.html?x=1 HTTP/1.1\r\nHost: upstream.test\r\nAccept: text/html\r\n\r\n";

TEST_F(ClientSession, PrefaceAndSettings) {
    connect();
    // The client's SETTINGS reached the server and was acknowledged both ways.
    EXPECT_FALSE(server->frames(NGHTTP2_SETTINGS).empty());
    EXPECT_EQ(nghttp2_session_get_remote_settings(server->session, NGHTTP2_SETTINGS_ENABLE_PUSH), 0u);
    EXPECT_EQ(nghttp2_session_get_remote_settings(server->session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 256u * 1024);
    // The connection window was widened.
    EXPECT_GT(nghttp2_session_get_remote_window_size(server->session), 65535);
    EXPECT_TRUE(client->accepts_streams());
    EXPECT_EQ(client->streams(), 0u);
    EXPECT_TRUE(client->want_read());
}

TEST_F(ClientSession, GetReachesServerWithPseudoHeaders) {
    connect();
    const auto h = request(get_wire);
    EXPECT_EQ(client->streams(), 1u);
    ASSERT_EQ(server->streams.count(1), 1u);
    const auto& s = server->streams[1];
    EXPECT_EQ(s.headers, (fields_t{{":method", "GET"},
                                   {":scheme", "http"},
                                   {":authority", "upstream.test"},
                                   {":path", "/index.html?x=1"},
                                   {"accept", "text/html"}}));
    EXPECT_TRUE(s.ended);  // END_STREAM on HEADERS
    EXPECT_TRUE(s.body.empty());
    EXPECT_EQ(client->failed(h), failure::none);
    EXPECT_FALSE(client->response_done(h));
    char none[16];
    EXPECT_EQ(client->read(h, none, sizeof(none)), 0u);  // no response bytes yet
}

TEST_F(ClientSession, TlsSchemeHttps) {
    connect({}, false, true);
    request(get_wire);
    EXPECT_EQ(server->header(1, ":scheme"), "https");
}

TEST_F(ClientSession, ContentLengthResponse) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 200, {{"content-type", "text/plain"}, {"content-length", "11"}}, std::string("hello world"));
    pump(*client, *server);
    EXPECT_GT(owner.count(h), 0u);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nhello world");
    const auto p = parse_head(bytes);
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.framing, http1::body_framing::content_length);
    EXPECT_TRUE(client->response_done(h));
    EXPECT_EQ(client->failed(h), failure::none);
    client->close(h);
    pump(*client, *server);
    EXPECT_EQ(client->streams(), 0u);
    EXPECT_TRUE(server->frames(NGHTTP2_RST_STREAM).empty());  // finished both ways: nothing to cancel
}

TEST_F(ClientSession, ResponseWithoutLengthIsChunked) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 200, {{"x-a", "1"}}, std::string("abcdef"));
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    const auto p = parse_head(bytes);
    ASSERT_TRUE(p.ok) << bytes;
    EXPECT_EQ(p.framing, http1::body_framing::chunked);
    EXPECT_EQ(bytes.substr(0, p.head_size), "HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n");
    EXPECT_EQ(bytes.substr(p.head_size), "6\r\nabcdef\r\n0\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, ResponseBodyReadInOneBytePieces) {
    connect();
    const auto h = request(get_wire);
    const std::string body(40000, 'z');
    server->respond(1, 200, {}, body);
    pump(*client, *server);
    const auto bytes = read_all(*client, h, 1);
    const auto p = parse_head(bytes);
    ASSERT_TRUE(p.ok);
    http1::chunked_decoder dec;
    std::string_view rest = std::string_view(bytes).substr(p.head_size);
    std::string got;
    for (;;) {
        std::size_t used = 0;
        std::string_view d;
        const auto st = dec.decode(rest, used, d);
        ASSERT_NE(st, http1::chunked_decoder::status::error);
        got.append(d);
        rest.remove_prefix(used);
        if (st == http1::chunked_decoder::status::done) break;
        ASSERT_FALSE(rest.empty());
    }
    EXPECT_TRUE(rest.empty());
    EXPECT_EQ(got, body);
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, TrailersBecomeTrailerSection) {
    connect();
    const auto h = request(
        "POST /pkg.Svc/Call HTTP/1.1\r\nHost: g\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0"s);
    EXPECT_EQ(server->header(1, "te"), "trailers");
    EXPECT_EQ(server->streams[1].body.size(), 5u);
    server->respond(1, 200, {{"content-type", "application/grpc"}}, std::string("\0\0\0\0\0", 5),
                    {{"grpc-status", "0"}, {"grpc-message", "ok"}});
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    const auto p = parse_head(bytes, "POST");
    ASSERT_TRUE(p.ok) << bytes;
    EXPECT_EQ(p.framing, http1::body_framing::chunked);
    EXPECT_EQ(bytes.substr(p.head_size), "5\r\n\0\0\0\0\0\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"s);
    EXPECT_TRUE(client->response_done(h));
    EXPECT_EQ(client->failed(h), failure::none);
}

TEST_F(ClientSession, TrailersOnlyResponse) {
    // gRPC "trailers-only": one HEADERS with END_STREAM and no content-length.
    connect();
    const auto h = request(get_wire);
    server->respond(1, 200, {{"grpc-status", "12"}}, std::nullopt);
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 200 OK\r\ngrpc-status: 12\r\ncontent-length: 0\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, TrailersOfContentLengthResponseDropped) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 200, {{"content-length", "2"}}, std::string("ok"), {{"x-t", "1"}});
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, NoContentHasNoBody) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 204, {{"x-a", "1"}}, std::nullopt);
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n");
    EXPECT_TRUE(parse_head(bytes).ok);
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, NotModifiedWithEmptyDataHasNoBody) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 304, {{"etag", "\"x\""}}, std::string());  // END_STREAM on an empty DATA
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, HeadResponseKeepsContentLengthWithoutBody) {
    connect();
    const auto h = request("HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(server->header(1, ":method"), "HEAD");
    server->respond(1, 200, {{"content-length", "12345"}}, std::nullopt);
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "HTTP/1.1 200 OK\r\ncontent-length: 12345\r\n\r\n");
    const auto p = parse_head(bytes, "HEAD");
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.head_size, bytes.size());
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, HeadResponseWithoutLengthNotChunked) {
    connect();
    const auto h = request("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    server->respond(1, 200, {{"x-a", "b"}}, std::string());
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 200 OK\r\nx-a: b\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, ContinueBeforeFinalHead) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
    pump(*client, *server);
    EXPECT_EQ(server->header(1, "expect"), "100-continue");
    server->headers(1, {{":status", "100"}}, false);
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_FALSE(client->response_done(h));
    ASSERT_TRUE(client->write(h, "data"));
    pump(*client, *server);
    EXPECT_EQ(server->streams[1].body, "data");
    EXPECT_TRUE(server->streams[1].ended);
    server->respond(1, 201, {{"content-length", "0"}}, std::nullopt);
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
}

TEST_F(ClientSession, EarlyHintsThenFinal) {
    connect();
    const auto h = request(get_wire);
    server->headers(1, {{":status", "103"}, {"link", "</s.css>; rel=preload"}}, false);
    server->respond(1, 200, {{"content-length", "1"}}, std::string("x"));
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes,
              "HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n"
              "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx");
    const auto first = parse_head(bytes);
    ASSERT_TRUE(first.ok);
    EXPECT_EQ(first.status, 103);
    const auto second = parse_head(std::string_view(bytes).substr(first.head_size));
    ASSERT_TRUE(second.ok);
    EXPECT_EQ(second.status, 200);
}

TEST_F(ClientSession, PostWithContentLength) {
    connect();
    const auto h = request("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\na=1&b=2");
    const auto& s = server->streams[1];
    EXPECT_EQ(server->header(1, ":method"), "POST");
    EXPECT_EQ(server->header(1, "content-length"), "7");
    EXPECT_EQ(s.body, "a=1&b=2");
    EXPECT_TRUE(s.ended);
    EXPECT_EQ(client->unsent(h), 0u);
}

TEST_F(ClientSession, PostBodyInPiecesAfterHead) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n"));
    pump(*client, *server);  // the head goes, DATA is deferred
    EXPECT_EQ(server->streams.count(1), 1u);
    EXPECT_FALSE(server->streams[1].ended);
    ASSERT_TRUE(client->write(h, "abc"));
    pump(*client, *server);
    EXPECT_EQ(server->streams[1].body, "abc");
    EXPECT_FALSE(server->streams[1].ended);
    ASSERT_TRUE(client->write(h, "def"));
    pump(*client, *server);
    EXPECT_EQ(server->streams[1].body, "abcdef");
    EXPECT_TRUE(server->streams[1].ended);
}

TEST_F(ClientSession, ChunkedRequestDechunkedWithTrailers) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
    pump(*client, *server);
    ASSERT_TRUE(client->write(h, "lo\r\n"));
    pump(*client, *server);
    EXPECT_EQ(server->streams[1].body, "hello");
    EXPECT_FALSE(server->streams[1].ended);
    ASSERT_TRUE(client->write(h, "0\r\nX-Sum: 5\r\n\r\n"));
    pump(*client, *server);
    const auto& s = server->streams[1];
    EXPECT_EQ(s.body, "hello");
    EXPECT_TRUE(s.ended);
    EXPECT_EQ(s.trailers, (fields_t{{"x-sum", "5"}}));
    EXPECT_TRUE(server->header(1, "transfer-encoding").empty());
    EXPECT_TRUE(server->header(1, "content-length").empty());
}

TEST_F(ClientSession, EmptyChunkedRequestEndsStream) {
    connect();
    request("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    EXPECT_TRUE(server->streams[1].ended);
    EXPECT_TRUE(server->streams[1].body.empty());
    EXPECT_TRUE(server->streams[1].trailers.empty());
}

TEST_F(ClientSession, UpgradeRequestRefusedByWrite) {
    connect();
    const auto h = client->open();
    EXPECT_FALSE(client->write(h, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
    EXPECT_NE(client->failed(h), failure::none);
    pump(*client, *server);
    EXPECT_TRUE(server->streams.empty());
    EXPECT_FALSE(client->write(h, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
}

TEST_F(ClientSession, RequestBodyWaitsForServerWindow) {
    connect({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}}, true);
    const std::string body(5000, 'b');
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + body));
    pump(*client, *server);
    EXPECT_EQ(server->streams[1].body.size(), 1000u);
    EXPECT_EQ(client->unsent(h), 4000u);
    EXPECT_FALSE(server->streams[1].ended);
    owner.events.clear();
    // The server reads what it has: the window opens, the next 1000 bytes go.
    std::size_t rounds = 0;
    while (!server->streams[1].ended && rounds++ < 10) {
        ASSERT_EQ(nghttp2_session_consume(server->session, 1, 1000), 0);
        pump(*client, *server);
    }
    EXPECT_EQ(rounds, 4u);  // 1000 bytes each time: 4000 after the first 1000
    EXPECT_EQ(server->streams[1].body, body);
    EXPECT_EQ(client->unsent(h), 0u);
    EXPECT_GT(owner.count(h), 0u);  // room to write was signalled
}

TEST_F(ClientSession, ResponseWindowOpensOnlyAsReadDrains) {
    connect();
    const auto h = request(get_wire);
    std::string body(1 << 20, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    server->respond(1, 200, {{"content-length", std::to_string(body.size())}}, body);
    pump(*client, *server);
    // The server sent one stream window and is blocked.
    EXPECT_EQ(server->streams[1].out_at, 256u * 1024);
    EXPECT_EQ(nghttp2_session_get_stream_remote_window_size(server->session, 1), 0);
    EXPECT_TRUE(server->frames(NGHTTP2_WINDOW_UPDATE, 1).empty());
    // Reading part of it acknowledges nothing yet.
    std::string got;
    std::string buf(1000, '\0');
    const auto n = client->read(h, buf.data(), buf.size());
    ASSERT_EQ(n, buf.size());
    got.append(buf);
    pump(*client, *server);
    EXPECT_TRUE(server->frames(NGHTTP2_WINDOW_UPDATE, 1).empty());
    EXPECT_EQ(server->streams[1].out_at, 256u * 1024);
    // Draining it does.
    got += read_all(*client, h);
    pump(*client, *server);
    EXPECT_FALSE(server->frames(NGHTTP2_WINDOW_UPDATE, 1).empty());
    EXPECT_GT(server->streams[1].out_at, 256u * 1024);
    for (int i = 0; i < 100 && !client->response_done(h); ++i) {
        got += read_all(*client, h);
        pump(*client, *server);
    }
    EXPECT_TRUE(client->response_done(h));
    const auto p = parse_head(got);
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(got.substr(p.head_size), body);
}

TEST_F(ClientSession, UnreadStreamDoesNotBlockAnother) {
    connect();
    const auto a = request(get_wire);
    const auto b = request(get_wire);
    server->respond(sid(1), 200, {}, std::string(300 * 1024, 'a'));
    server->respond(sid(2), 200, {{"content-length", "2"}}, std::string("ok"));
    pump(*client, *server);
    EXPECT_FALSE(client->response_done(a));
    const auto bytes = read_all(*client, b);
    EXPECT_EQ(bytes, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    EXPECT_TRUE(client->response_done(b));
}

TEST_F(ClientSession, RefusedStreamIsRetryable) {
    connect();
    const auto h = request(get_wire);
    owner.events.clear();
    server->rst(1, NGHTTP2_REFUSED_STREAM);
    pump(*client, *server);
    EXPECT_EQ(client->failed(h), failure::refused);
    EXPECT_GT(owner.count(h), 0u);
    EXPECT_FALSE(client->response_done(h));
    EXPECT_FALSE(client->write(h, "x"));
    client->close(h);
    EXPECT_EQ(client->streams(), 0u);
}

TEST_F(ClientSession, ResetAfterHeadIsReset) {
    connect();
    const auto h = request(get_wire);
    server->headers(1, {{":status", "200"}, {"content-length", "100"}}, false);
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
    server->rst(1, NGHTTP2_INTERNAL_ERROR);
    pump(*client, *server);
    EXPECT_EQ(client->failed(h), failure::reset);
    EXPECT_FALSE(client->response_done(h));
}

TEST_F(ClientSession, ResetAfterCompleteResponseIsNoFailure) {
    // RFC 9113 §8.1: a server may answer early and stop the upload with RST_STREAM(NO_ERROR).
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"));
    pump(*client, *server);
    server->respond(1, 413, {{"content-length", "0"}}, std::nullopt);
    pump(*client, *server);
    EXPECT_FALSE(server->streams[1].closed);  // the upload is still expected
    server->rst(1, NGHTTP2_NO_ERROR);
    pump(*client, *server);
    EXPECT_EQ(client->failed(h), failure::none);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n");
    EXPECT_TRUE(client->response_done(h));
    EXPECT_FALSE(client->write(h, "more"));  // the stream is closed: nothing more to upload
    client->close(h);
    pump(*client, *server);
    EXPECT_TRUE(server->frames(NGHTTP2_RST_STREAM, 1).empty());
}

TEST_F(ClientSession, GoawayRefusesStreamsBeyondLastId) {
    connect();
    const auto a = request(get_wire);
    const auto b = request(get_wire);
    ASSERT_EQ(server->streams.size(), 2u);
    server->goaway(1);
    pump(*client, *server);
    EXPECT_FALSE(client->accepts_streams());
    EXPECT_EQ(client->failed(b), failure::refused);
    EXPECT_EQ(client->failed(a), failure::none);
    server->respond(1, 200, {{"content-length", "1"}}, std::string("k"));
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, a), "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nk");
    EXPECT_TRUE(client->response_done(a));
}

TEST_F(ClientSession, GoawayWithErrorAfterProcessing) {
    connect();
    const auto a = request(get_wire);
    server->headers(1, {{":status", "200"}}, false);
    server->goaway(1, NGHTTP2_INTERNAL_ERROR);
    pump(*client, *server);
    EXPECT_FALSE(client->accepts_streams());
    // The stream stays open (covered by last-stream-id); the connection loss fails it.
    client->fail_all();
    EXPECT_EQ(client->failed(a), failure::reset);
}

// A request whose HEADERS had not left when the GOAWAY arrived (or that was written after it)
// is never started by nghttp2, and no stream-close callback reports it: the handle must still
// learn that it failed (refused: the server never saw it), or the exchange waits forever.
// BUG: client_session sets no on_frame_not_send_callback, so failed() stays none.
TEST_F(ClientSession, RequestQueuedWhenGoawayArrivesIsRefused) {
    connect();
    const auto a = request(get_wire);
    server->goaway(1);
    const auto b = client->open();
    ASSERT_TRUE(client->write(b, get_wire));  // queued, not sent: the GOAWAY is received first
    EXPECT_TRUE(client->receive(server->drain()));
    pump(*client, *server);
    EXPECT_EQ(server->streams.size(), 1u);  // the server never saw the second request
    EXPECT_EQ(client->failed(a), failure::none);
    EXPECT_EQ(client->failed(b), failure::refused);
    EXPECT_GT(owner.count(b), 0u);
}

TEST_F(ClientSession, RequestWrittenAfterGoawayIsRefused) {
    connect();
    request(get_wire);
    server->goaway(1);
    pump(*client, *server);
    ASSERT_FALSE(client->accepts_streams());
    // An exchange that opened its handle before the GOAWAY writes its head now.
    const auto b = client->open();
    const bool written = client->write(b, get_wire);
    pump(*client, *server);
    EXPECT_EQ(server->streams.size(), 1u);
    EXPECT_TRUE(!written || client->failed(b) == failure::refused);
    EXPECT_EQ(client->failed(b), failure::refused);
}

TEST_F(ClientSession, CloseUnfinishedSendsCancel) {
    connect();
    const auto h = request(get_wire);
    server->headers(1, {{":status", "200"}}, false);  // a head, a body still to come
    pump(*client, *server);
    client->close(h);
    pump(*client, *server);
    const auto rsts = server->frames(NGHTTP2_RST_STREAM, 1);
    ASSERT_EQ(rsts.size(), 1u);
    EXPECT_EQ(rsts[0].error_code, static_cast<std::uint32_t>(NGHTTP2_CANCEL));
    EXPECT_TRUE(server->streams[1].closed);
    EXPECT_EQ(client->streams(), 0u);
    EXPECT_EQ(client->failed(h), failure::reset);  // an unknown handle
}

TEST_F(ClientSession, CloseWithUnsentRequestBodySendsCancel) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
    pump(*client, *server);
    client->close(h);
    pump(*client, *server);
    const auto rsts = server->frames(NGHTTP2_RST_STREAM, 1);
    ASSERT_EQ(rsts.size(), 1u);
    EXPECT_EQ(rsts[0].error_code, static_cast<std::uint32_t>(NGHTTP2_CANCEL));
}

TEST_F(ClientSession, CloseBeforeHeadSendsNothing) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "GET / HTTP/1.1\r\n"));
    client->close(h);
    pump(*client, *server);
    EXPECT_TRUE(server->streams.empty());
    EXPECT_TRUE(server->frames(NGHTTP2_RST_STREAM).empty());
    EXPECT_EQ(client->streams(), 0u);
}

// Streams closed (or reset) with response bytes never read give their share of the connection
// window back: 30 x 200 KiB is more than the 4 MiB connection window.
TEST_F(ClientSession, UnreadResponsesDoNotLeakConnectionWindow) {
    for (const bool reset : {false, true}) {
        connect();
        for (int i = 1; i <= 30; ++i) {
            const auto h = request(get_wire);
            server->headers(sid(i), {{":status", "200"}}, false);
            const std::string body(200 * 1024, 'x');
            ASSERT_EQ(nghttp2_session_get_stream_remote_window_size(server->session, sid(i)), 256 * 1024);
            // DATA without END_STREAM straight from the server's session.
            auto& s = server->streams[sid(i)];
            s.out = body;
            nghttp2_data_provider provider{};
            provider.source.ptr = &s;
            provider.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                        std::uint32_t* flags, nghttp2_data_source* src, void*) -> ssize_t {
                auto* st = static_cast<srv_stream*>(src->ptr);
                const std::size_t n = std::min(length, st->out.size() - st->out_at);
                std::copy_n(st->out.data() + st->out_at, n, buf);
                st->out_at += n;
                if (st->out_at == st->out.size()) *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                return static_cast<ssize_t>(n);
            };
            ASSERT_EQ(nghttp2_submit_data(server->session, NGHTTP2_FLAG_NONE, sid(i), &provider), 0);
            pump(*client, *server);
            ASSERT_EQ(s.out_at, body.size()) << "stream " << i << (reset ? " reset" : " closed");
            if (reset) {
                server->rst(sid(i), NGHTTP2_INTERNAL_ERROR);
                pump(*client, *server);
                EXPECT_EQ(client->failed(h), failure::reset);
            }
            client->close(h);
            pump(*client, *server);
        }
        EXPECT_EQ(client->streams(), 0u);
    }
}

TEST_F(ClientSession, FailAll) {
    connect();
    const auto done = request(get_wire);
    const auto sent = request(get_wire);
    const auto unsubmitted = client->open();
    ASSERT_TRUE(client->write(unsubmitted, "GET / HTTP/1.1\r\nHo"));
    server->respond(1, 200, {{"content-length", "0"}}, std::nullopt);
    pump(*client, *server);
    owner.events.clear();
    client->fail_all();
    EXPECT_EQ(client->failed(done), failure::none);  // its response is complete
    EXPECT_EQ(client->failed(sent), failure::reset);
    EXPECT_EQ(client->failed(unsubmitted), failure::refused);
    EXPECT_GT(owner.count(sent), 0u);
    EXPECT_GT(owner.count(unsubmitted), 0u);
    EXPECT_FALSE(client->write(sent, "x"));
    EXPECT_EQ(read_all(*client, done), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    EXPECT_TRUE(client->response_done(done));
}

TEST_F(ClientSession, MaxConcurrentStreamsFromServer) {
    connect({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
    EXPECT_TRUE(client->accepts_streams());
    const auto a = request(get_wire);
    EXPECT_TRUE(client->accepts_streams());
    const auto b = client->open();
    EXPECT_FALSE(client->accepts_streams());  // two handles in use
    ASSERT_TRUE(client->write(b, get_wire));
    pump(*client, *server);
    EXPECT_FALSE(client->accepts_streams());
    server->respond(1, 204, {}, std::nullopt);
    pump(*client, *server);
    read_all(*client, a);
    client->close(a);
    EXPECT_TRUE(client->accepts_streams());
}

TEST_F(ClientSession, PeerAssumedToAllow100StreamsBeforeItsSettings) {
    server = std::make_unique<test_server>();
    client = std::make_unique<client_session>(owner, false);
    std::vector<std::uint32_t> handles;
    while (client->accepts_streams() && handles.size() < 2000) handles.push_back(client->open());
    EXPECT_EQ(handles.size(), 100u);
}

TEST_F(ClientSession, ManyStreamsInterleaved) {
    connect();
    std::vector<std::uint32_t> hs;
    for (int i = 0; i < 10; ++i)
        hs.push_back(request("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n"));
    for (int i = 9; i >= 0; --i) {
        EXPECT_EQ(server->header(sid(i + 1), ":path"), "/" + std::to_string(i));
        const std::string body = "body" + std::to_string(i);
        server->respond(sid(i + 1), 200, {{"content-length", std::to_string(body.size())}}, body);
    }
    pump(*client, *server);
    for (int i = 0; i < 10; ++i) {
        const std::string body = "body" + std::to_string(i);
        EXPECT_EQ(read_all(*client, hs[i]), "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) +
                                                 "\r\n\r\n" + body);
        EXPECT_TRUE(client->response_done(hs[i]));
        client->close(hs[i]);
    }
    EXPECT_EQ(client->streams(), 0u);
}

TEST_F(ClientSession, ServerPingAnswered) {
    connect();
    const std::uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ASSERT_EQ(nghttp2_submit_ping(server->session, NGHTTP2_FLAG_NONE, opaque), 0);
    pump(*client, *server);
    const auto pings = server->frames(NGHTTP2_PING);
    ASSERT_EQ(pings.size(), 1u);
    EXPECT_TRUE(pings[0].flags & NGHTTP2_FLAG_ACK);
}

TEST_F(ClientSession, ProtocolErrorFromServerEndsConnection) {
    connect();
    const auto h = request(get_wire);
    // A DATA frame on stream 0 is a connection error: nghttp2 answers GOAWAY(PROTOCOL_ERROR)
    // and wants nothing more (receive() itself reports only fatal errors).
    client->receive(std::string("\x00\x00\x01\x00\x00\x00\x00\x00\x00x", 10));
    EXPECT_FALSE(client->accepts_streams());
    std::string out;
    client->send(out, 1 << 20);
    server->take(out);
    const auto goaways = server->frames(NGHTTP2_GOAWAY);
    ASSERT_EQ(goaways.size(), 1u);
    EXPECT_EQ(goaways[0].error_code, static_cast<std::uint32_t>(NGHTTP2_PROTOCOL_ERROR));
    EXPECT_FALSE(client->want_read());
    EXPECT_FALSE(client->want_write());
    client->fail_all();
    EXPECT_EQ(client->failed(h), failure::reset);
}

// ---- probes of edge cases -------------------------------------------------------------------

// A two-digit :status never becomes an HTTP/1.1 head (nghttp2 refuses it): the stream fails.
TEST_F(ClientSession, TwoDigitStatusFailsTheStream) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 99, {{"content-length", "2"}}, std::string("ok"));
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "");
    EXPECT_EQ(client->failed(h), failure::reset);
}

// Found by fuzz_h2_client: nghttp2 accepts any three-digit :status but 101, "000" to "099"
// included. Below 100 is no HTTP status: the stream fails and read() yields nothing.
TEST_F(ClientSession, StatusBelow100FailsTheStream) {
    connect();
    const auto h = request(get_wire);
    server->headers(1, {{":status", "099"}, {"x-a", "1"}}, false);
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    EXPECT_EQ(bytes, "");
    EXPECT_EQ(client->failed(h), failure::reset);
}

// A status of 600..999 passes nghttp2 and the strict HTTP/1.1 parser alike: kept as is.
TEST_F(ClientSession, ThreeDigitStatusAbove599KeptAsIs) {
    connect();
    const auto h = request(get_wire);
    server->respond(1, 999, {{"content-length", "0"}}, std::nullopt);
    pump(*client, *server);
    const auto bytes = read_all(*client, h);
    const auto p = parse_head(bytes);
    ASSERT_TRUE(p.ok) << bytes;
    EXPECT_EQ(p.status, 999);
}

// The response header list limit (64 KiB, SETTINGS_MAX_HEADER_LIST_SIZE) applies to each header
// block: informational heads do not add up.
TEST_F(ClientSession, HeaderListLimitIsPerBlockNotPerResponse) {
    connect();
    const auto h = request(get_wire);
    const std::string link(25 * 1024, 'l');
    server->headers(1, {{":status", "103"}, {"link", link}}, false);
    server->headers(1, {{":status", "103"}, {"link", link}}, false);
    server->respond(1, 200, {{"content-length", "0"}, {"x-big", link}}, std::nullopt);
    pump(*client, *server);
    EXPECT_EQ(client->failed(h), failure::none);
    const auto bytes = read_all(*client, h);
    EXPECT_TRUE(client->response_done(h));
    EXPECT_NE(bytes.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
}

// A raw HTTP/2 frame, and an HPACK literal field without indexing or Huffman coding (nghttp2's
// server would refuse to send what these tests need).
std::string raw_frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::string_view payload) {
    const std::size_t n = payload.size();
    std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n), static_cast<char>(type),
                  static_cast<char>(flags),   static_cast<char>(stream >> 24), static_cast<char>(stream >> 16),
                  static_cast<char>(stream >> 8), static_cast<char>(stream)};
    return f.append(payload);
}
void hpack_int(std::string& out, std::uint8_t first, int prefix, std::uint64_t v) {
    const std::uint64_t max = (1u << prefix) - 1;
    if (v < max) {
        out.push_back(static_cast<char>(first | v));
        return;
    }
    out.push_back(static_cast<char>(first | max));
    for (v -= max; v >= 128; v >>= 7) out.push_back(static_cast<char>(0x80 | (v & 127)));
    out.push_back(static_cast<char>(v));
}
void hpack_literal(std::string& out, std::string_view name, std::string_view value) {
    out.push_back(0x00);
    hpack_int(out, 0, 7, name.size());
    out += name;
    hpack_int(out, 0, 7, value.size());
    out += value;
}
// A header block as HEADERS plus CONTINUATION frames of at most 16 KiB.
std::string raw_headers(std::uint32_t stream, std::string_view block, bool end_stream) {
    std::string out;
    bool first = true;
    do {
        const std::size_t n = std::min<std::size_t>(block.size(), 16384);
        const bool last = n == block.size();
        const auto flags = static_cast<std::uint8_t>((first && end_stream ? NGHTTP2_FLAG_END_STREAM : 0) |
                                                     (last ? NGHTTP2_FLAG_END_HEADERS : 0));
        out += raw_frame(first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, stream, block.substr(0, n));
        block.remove_prefix(n);
        first = false;
    } while (!block.empty());
    return out;
}

TEST_F(ClientSession, HeaderListOverLimitResetsTheStream) {
    connect();
    const auto h = request(get_wire);
    std::string block;
    hpack_literal(block, ":status", "200");
    hpack_literal(block, "content-length", "0");
    for (const char* name : {"x-a", "x-b", "x-c"}) hpack_literal(block, name, std::string(30 * 1024, 'b'));
    client->receive(raw_headers(1, block, true));
    std::string out;
    client->send(out, 1 << 20);
    server->take(out);
    EXPECT_EQ(client->failed(h), failure::reset);
    EXPECT_FALSE(client->response_done(h));
}

// The server answered (END_STREAM) while a chunked upload was still open; the exchange then
// writes the last chunk and closes the handle at once, before nghttp2 sent the request's
// END_STREAM: it still goes out (no RST_STREAM INTERNAL_ERROR).
TEST_F(ClientSession, CloseRightAfterLastChunkDoesNotResetWithInternalError) {
    connect();
    const auto h = client->open();
    ASSERT_TRUE(client->write(h, "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
    pump(*client, *server);
    server->respond(1, 200, {{"content-length", "0"}}, std::nullopt);
    pump(*client, *server);
    EXPECT_EQ(read_all(*client, h), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    ASSERT_TRUE(client->response_done(h));
    ASSERT_TRUE(client->write(h, "0\r\n\r\n"));
    client->close(h);
    pump(*client, *server);
    for (const auto& f : server->frames(NGHTTP2_RST_STREAM, 1))
        EXPECT_NE(f.error_code, static_cast<std::uint32_t>(NGHTTP2_INTERNAL_ERROR));
    EXPECT_TRUE(server->streams[1].ended);
}

// An HTTP/1.0 request without Host: the :authority is the upstream endpoint's (RFC 9113
// §8.3.1 allows no empty one).
TEST(RequestTranslator, NoHostTakesTheEndpointAsAuthority) {
    const auto r = translate("GET / HTTP/1.0\r\n\r\n");
    ASSERT_FALSE(r.error);
    for (const auto& [n, v] : r.fields)
        if (n == ":authority") {
            EXPECT_EQ(v, "origin.test:8080");
        }
}

TEST_F(ClientSession, RequestWithoutHostGoesToTheEndpointAuthority) {
    connect();
    const auto h = request("GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(server->header(1, ":authority"), "origin.test:8080");
    EXPECT_EQ(client->failed(h), failure::none);
}

}  // namespace
}  // namespace sentinel::h2
