// The SDK's server in-process on a temporary Unix socket, driven by a raw proxy-side client.
// Synchronisation is by protocol (a PING's PONG means every earlier frame was handled) and by
// condition variables in the test handler; there are no sleeps and no fixed ports.
#include "agents/sdk/cpp/server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "agents/sdk/cpp/config.hpp"
#include "agents/sdk/cpp/decision.hpp"
#include "raw_client.hpp"

namespace sentinel::agent_sdk {
namespace {

using testing::raw_client;
using testing::received_frame;
using ft = agent_protocol::frame_type;
constexpr std::uint8_t end_stream = agent_protocol::flag_end_stream;

// What tests and handlers share: gates that hold a handler until the test opens them, and
// counters of handler activity.
struct shared_state {
    std::mutex mutex;
    std::condition_variable cv;
    std::set<std::string> entered;   // gates a handler is waiting at
    std::set<std::string> released;  // gates the test opened
    int states_destroyed = 0;
    int completes = 0;

    void wait_at(const std::string& gate) {
        std::unique_lock lock(mutex);
        entered.insert(gate);
        cv.notify_all();
        if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return released.count(gate) > 0; }))
            throw std::runtime_error("gate " + gate + " never opened");
    }
    void wait_entered(const std::string& gate) {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered.count(gate) > 0; })) << gate;
    }
    void release(const std::string& gate) {
        std::lock_guard lock(mutex);
        released.insert(gate);
        cv.notify_all();
    }
    void wait_states_destroyed(int n) {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return states_destroyed >= n; }));
    }
};

// Per-stream user state whose destruction the tests observe.
struct tracked_state {
    explicit tracked_state(shared_state& s) : shared(s) {}
    ~tracked_state() {
        std::lock_guard lock(shared.mutex);
        ++shared.states_destroyed;
        shared.cv.notify_all();
    }
    shared_state& shared;
    int events = 0;
};

// Paths steer it: "/gate/<name>" waits at a gate, "/body" asks for the body, "/throw" throws.
class test_handler : public handler {
public:
    explicit test_handler(shared_state& s) : shared_(s) {}

    std::vector<config_error> configure(const v1::ConfigNode& config) override {
        std::vector<config_error> errors;
        for_each_key(config, {"greeting"}, errors, [&](const v1::ConfigNode& n) { string_value(n, errors); });
        return errors;
    }
    v1::Capabilities capabilities() const override {
        v1::Capabilities c;
        c.add_events(v1::REQUEST_HEADERS);
        c.add_events(v1::REQUEST_BODY);
        c.add_events(v1::REQUEST_COMPLETE);
        c.set_request_body_mode(v1::BODY_BUFFER);
        return c;
    }
    v1::Decision on_request_headers(stream_context& stream, const v1::RequestHeaders& event) override {
        stream.emplace_state<tracked_state>(shared_).events++;
        const std::string& path = event.path();
        if (path.starts_with("/gate/")) shared_.wait_at(path.substr(6));
        if (path == "/throw") throw std::runtime_error("boom");
        if (path == "/body") return need_more_body();
        v1::Decision d = allow();
        set_request_header(d, "X-Seen-Path", path);
        set_request_header(d, "X-Cancelled", stream.cancelled() ? "yes" : "no");
        return d;
    }
    v1::Decision on_request_body(stream_context& stream, const v1::BodyChunk& chunk) override {
        auto* st = stream.state<tracked_state>();
        if (st) st->events++;
        v1::Decision d = allow();
        set_request_header(d, "X-Body", chunk.data());
        set_request_header(d, "X-Events", st ? std::to_string(st->events) : "no state");
        return d;
    }
    void on_request_complete(stream_context&, const v1::RequestComplete&) override {
        std::lock_guard lock(shared_.mutex);
        ++shared_.completes;
    }

private:
    shared_state& shared_;
};

class temp_dir {
public:
    temp_dir() {
        char tmpl[] = "/tmp/agent_sdk_test_XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        path_ = tmpl;
    }
    ~temp_dir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// A server running on its own thread for the duration of a test.
class running_server {
public:
    explicit running_server(server_options options = {}) {
        options.name = "test-agent";
        options.version = "9.9.9";
        options.handle_signals = false;
        srv_ = std::make_unique<server>(options, [this] { return std::make_unique<test_handler>(shared); });
        std::string error;
        if (!srv_->listen(path, error)) throw std::runtime_error(error);
        thread_ = std::thread([this] { exit_status_ = srv_->run(); });
    }
    ~running_server() { stop(); }

    int stop() {
        if (thread_.joinable()) {
            srv_->shutdown();
            thread_.join();
        }
        return exit_status_;
    }
    // Waits for run() to return by itself (after a shutdown() that drains).
    int join() {
        thread_.join();
        return exit_status_;
    }

    server& srv() { return *srv_; }
    shared_state shared;
    temp_dir dir;
    std::string path = dir.file("agent.sock");

private:
    std::unique_ptr<server> srv_;
    std::thread thread_;
    int exit_status_ = -1;
};

v1::RequestHeaders request(const std::string& path) {
    v1::RequestHeaders r;
    r.set_method("GET");
    r.set_path(path);
    r.mutable_connection()->set_client_address("192.0.2.1");
    return r;
}

std::string header_of(const v1::Decision& d, std::string_view name) {
    for (const auto& m : d.request_headers())
        if (m.name() == name) return m.value();
    return "<absent>";
}

TEST(agent_server, handshake_answers_with_name_version_capabilities_and_limit) {
    server_options o;
    o.max_frame_size = 256 * 1024;
    running_server s(o);
    raw_client c(s.path);
    const auto ack = c.handshake();
    EXPECT_EQ(ack.version(), 1u);
    EXPECT_EQ(ack.agent_name(), "test-agent");
    EXPECT_EQ(ack.agent_version(), "9.9.9");
    EXPECT_EQ(ack.max_frame_size(), 256u * 1024);
    EXPECT_EQ(ack.config_errors_size(), 0);
    ASSERT_EQ(ack.capabilities().events_size(), 3);
    EXPECT_EQ(ack.capabilities().events(0), v1::REQUEST_HEADERS);
    EXPECT_EQ(ack.capabilities().request_body_mode(), v1::BODY_BUFFER);
}

TEST(agent_server, socket_file_is_0660) {
    running_server s;
    struct stat st{};
    ASSERT_EQ(::stat(s.path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST(agent_server, config_errors_return_the_node_path_and_refuse_streams) {
    running_server s;
    raw_client c(s.path);
    v1::Hello hello;
    hello.add_versions(1);
    auto* cfg = hello.mutable_config();
    cfg->set_name("config");
    cfg->set_path("agents.agent[t].config");
    auto* good = cfg->add_children();
    good->set_name("greeting");
    good->add_args()->set_string("hi");
    good->set_path("agents.agent[t].config.greeting");
    auto* bad = cfg->add_children();
    bad->set_name("colour");
    bad->set_path("agents.agent[t].config.colour");
    const auto ack = c.handshake(hello);
    EXPECT_EQ(ack.version(), 1u);
    ASSERT_EQ(ack.config_errors_size(), 1);
    EXPECT_EQ(ack.config_errors(0).path(), "agents.agent[t].config.colour");
    EXPECT_EQ(ack.config_errors(0).message(), "unknown key \"colour\"; expected greeting");
    // PINGs are still answered until the proxy closes, but no stream may open.
    EXPECT_TRUE(c.sync(5).empty());
    c.send(ft::request_headers, 1, request("/"), end_stream);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, validate_only_hello_is_answered_and_takes_no_streams) {
    running_server s;
    raw_client c(s.path);
    v1::Hello hello;
    hello.add_versions(1);
    hello.set_validate_only(true);
    const auto ack = c.handshake(hello);
    EXPECT_EQ(ack.version(), 1u);
    EXPECT_EQ(ack.config_errors_size(), 0);
    EXPECT_TRUE(c.sync(1).empty());
    c.send(ft::request_headers, 1, request("/"), end_stream);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, unsupported_version_gets_version_0_and_a_close) {
    running_server s;
    raw_client c(s.path);
    v1::Hello hello;
    hello.add_versions(2);
    hello.add_versions(3);
    const auto ack = c.handshake(hello);
    EXPECT_EQ(ack.version(), 0u);
    ASSERT_EQ(ack.config_errors_size(), 1);
    EXPECT_NE(ack.config_errors(0).message().find("version 1"), std::string::npos) << ack.config_errors(0).message();
    EXPECT_NE(ack.config_errors(0).message().find("[2, 3]"), std::string::npos) << ack.config_errors(0).message();
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, ping_is_answered_with_its_nonce) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    v1::Ping ping;
    ping.set_nonce(0xfeedface12345678ull);
    c.send(ft::ping, 0, ping);
    const auto f = c.expect_frame();
    EXPECT_EQ(f.header.type, ft::pong);
    EXPECT_EQ(f.header.stream_id, 0u);
    EXPECT_EQ(f.as<v1::Ping>().nonce(), 0xfeedface12345678ull);
}

TEST(agent_server, inline_handlers_answer_every_stream_of_one_write) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    std::string out;
    for (std::uint32_t id = 1; id <= 3; ++id)
        raw_client::append(out, ft::request_headers, id, request("/p" + std::to_string(id)), end_stream);
    c.send_raw(out);
    for (std::uint32_t id = 1; id <= 3; ++id) {
        const auto f = c.expect_frame();
        ASSERT_EQ(f.header.type, ft::decision);
        EXPECT_EQ(f.header.stream_id, id);
        EXPECT_EQ(f.header.flags, 0);
        const auto d = f.as<v1::Decision>();
        EXPECT_TRUE(d.has_allow());
        EXPECT_EQ(header_of(d, "X-Seen-Path"), "/p" + std::to_string(id));
    }
    c.sync(1);
    EXPECT_EQ(s.srv().stats().open_streams, 0u);
}

TEST(agent_server, concurrent_streams_are_answered_out_of_order_with_worker_threads) {
    server_options o;
    o.worker_threads = 2;
    running_server s(o);
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/gate/first"), end_stream);
    s.shared.wait_entered("first");
    // Stream 1 holds one worker; stream 2 is answered by the other meanwhile.
    c.send(ft::request_headers, 2, request("/fast"), end_stream);
    auto f = c.expect_frame();
    EXPECT_EQ(f.header.type, ft::decision);
    EXPECT_EQ(f.header.stream_id, 2u);
    s.shared.release("first");
    f = c.expect_frame();
    EXPECT_EQ(f.header.type, ft::decision);
    EXPECT_EQ(f.header.stream_id, 1u);
    EXPECT_EQ(header_of(f.as<v1::Decision>(), "X-Seen-Path"), "/gate/first");
}

TEST(agent_server, cancel_suppresses_the_decision_and_frees_the_stream) {
    server_options o;
    o.worker_threads = 2;
    running_server s(o);
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/gate/slow"), end_stream);
    s.shared.wait_entered("slow");
    v1::Cancel cancel;
    cancel.set_reason(v1::Cancel::TIMEOUT);
    c.send(ft::cancel, 1, cancel);
    EXPECT_TRUE(c.sync(1).empty());  // the CANCEL has been handled
    EXPECT_EQ(s.srv().stats().open_streams, 0u);
    s.shared.release("slow");
    // The stream's state dies only after its late decision was handed back and dropped.
    s.shared.wait_states_destroyed(1);
    EXPECT_TRUE(c.sync(2).empty()) << "a decision was sent for a cancelled stream";
    EXPECT_EQ(s.srv().stats().dropped_decisions, 1u);
    // A CANCEL for a stream that already ended is not an error (it crossed the answer).
    c.send(ft::cancel, 1, cancel);
    c.send(ft::request_headers, 2, request("/after"), end_stream);
    const auto f = c.expect_frame();
    EXPECT_EQ(f.header.stream_id, 2u);
}

TEST(agent_server, stream_state_lives_until_end_stream_complete_or_cancel) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    // Ends with the answer to an END_STREAM event.
    c.send(ft::request_headers, 1, request("/a"), end_stream);
    EXPECT_EQ(c.expect_frame().header.stream_id, 1u);
    c.sync(1);
    EXPECT_EQ(s.srv().stats().open_streams, 0u);
    s.shared.wait_states_destroyed(1);

    // Stays open after an answer without END_STREAM; REQUEST_COMPLETE ends it, unanswered.
    c.send(ft::request_headers, 2, request("/b"));
    EXPECT_EQ(c.expect_frame().header.stream_id, 2u);
    c.sync(2);
    EXPECT_EQ(s.srv().stats().open_streams, 1u);
    v1::RequestComplete done;
    done.set_status(200);
    c.send(ft::request_complete, 2, done, end_stream);
    EXPECT_TRUE(c.sync(3).empty());
    EXPECT_EQ(s.srv().stats().open_streams, 0u);
    s.shared.wait_states_destroyed(2);
    {
        std::lock_guard lock(s.shared.mutex);
        EXPECT_EQ(s.shared.completes, 1);
    }

    // Or CANCEL ends it.
    c.send(ft::request_headers, 3, request("/c"));
    EXPECT_EQ(c.expect_frame().header.stream_id, 3u);
    c.send(ft::cancel, 3, v1::Cancel{});
    EXPECT_TRUE(c.sync(4).empty());
    EXPECT_EQ(s.srv().stats().open_streams, 0u);
    s.shared.wait_states_destroyed(3);
}

TEST(agent_server, body_events_follow_need_more_body_and_keep_user_state) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/body"));
    auto f = c.expect_frame();
    EXPECT_TRUE(f.as<v1::Decision>().need_more_body());
    v1::BodyChunk chunk;
    chunk.set_data("hello");
    chunk.set_last(true);
    c.send(ft::request_body, 1, chunk, end_stream);
    f = c.expect_frame();
    EXPECT_EQ(f.header.stream_id, 1u);
    const auto d = f.as<v1::Decision>();
    EXPECT_EQ(header_of(d, "X-Body"), "hello");
    EXPECT_EQ(header_of(d, "X-Events"), "2");  // the state set by the headers event survived
}

TEST(agent_server, body_without_need_more_body_is_a_protocol_error) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/plain"));
    EXPECT_EQ(c.expect_frame().header.type, ft::decision);
    c.send(ft::request_body, 1, v1::BodyChunk{});
    EXPECT_TRUE(c.closed_by_agent());
    EXPECT_EQ(s.srv().stats().protocol_errors, 1u);
}

TEST(agent_server, second_event_before_the_decision_is_a_protocol_error) {
    server_options o;
    o.worker_threads = 1;
    running_server s(o);
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/gate/held"));
    s.shared.wait_entered("held");
    c.send(ft::request_headers, 1, request("/again"));
    EXPECT_TRUE(c.closed_by_agent());
    s.shared.release("held");
}

TEST(agent_server, streams_may_start_out_of_id_order) {
    // The proxy allocates ids in order, but a stream whose first event comes late (its agent
    // wants only later events) starts after higher ids did.
    running_server s;
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 9, request("/nine"), end_stream);
    EXPECT_EQ(c.expect_frame().header.stream_id, 9u);
    c.send(ft::request_headers, 4, request("/four"), end_stream);
    const auto f = c.expect_frame();
    EXPECT_EQ(f.header.stream_id, 4u);
    EXPECT_EQ(header_of(f.as<v1::Decision>(), "X-Seen-Path"), "/four");
}

TEST(agent_server, more_open_streams_than_max_concurrency_is_a_protocol_error) {
    server_options o;
    o.max_streams_per_connection = 2;
    running_server s(o);
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/a"));
    c.send(ft::request_headers, 2, request("/b"));
    EXPECT_EQ(c.sync(1).size(), 2u);
    c.send(ft::request_headers, 3, request("/c"));
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, no_hello_within_the_handshake_timeout_closes) {
    server_options o;
    o.handshake_timeout = std::chrono::milliseconds(50);
    running_server s(o);
    raw_client c(s.path);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, a_decision_over_the_proxys_frame_limit_closes_the_connection) {
    running_server s;
    raw_client c(s.path);
    v1::Hello hello;
    hello.add_versions(1);
    hello.set_max_frame_size(100);
    c.handshake(hello);
    c.send(ft::request_headers, 1, request("/short"), end_stream);
    EXPECT_EQ(c.expect_frame().header.type, ft::decision);
    c.send(ft::request_headers, 2, request("/" + std::string(200, 'x')), end_stream);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, unsubscribed_event_is_a_protocol_error) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    c.send(ft::response_headers, 1, v1::ResponseHeaders{});
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, a_throwing_handler_closes_the_connection_not_the_agent) {
    running_server s;
    {
        raw_client c(s.path);
        c.handshake();
        c.send(ft::request_headers, 1, request("/throw"), end_stream);
        EXPECT_TRUE(c.closed_by_agent());
    }
    raw_client again(s.path);
    EXPECT_EQ(again.handshake().version(), 1u);
}

struct malformed_case {
    const char* name;
    std::string bytes;  // sent after a successful handshake (or instead of it)
    bool before_handshake = false;
};
// Names the case in ctest's listing instead of dumping its bytes.
void PrintTo(const malformed_case& c, std::ostream* os) { *os << c.name; }

std::string header_bytes(std::uint32_t length, std::uint8_t type, std::uint8_t flags, std::uint32_t stream) {
    std::string h(agent_protocol::frame_header_size, '\0');
    agent_protocol::encode_header(h.data(), {length, static_cast<ft>(type), flags, stream});
    return h;
}

std::string frame_with(const v1::RequestHeaders& r, std::uint8_t type, std::uint8_t flags, std::uint32_t stream) {
    const std::string payload = r.SerializeAsString();
    return header_bytes(static_cast<std::uint32_t>(payload.size()), type, flags, stream) + payload;
}

class agent_server_malformed : public ::testing::TestWithParam<malformed_case> {};

TEST_P(agent_server_malformed, closes_the_connection) {
    server_options o;
    o.max_frame_size = 4096;
    running_server s(o);
    raw_client c(s.path);
    if (!GetParam().before_handshake) c.handshake();
    c.send_raw(GetParam().bytes);
    EXPECT_TRUE(c.closed_by_agent());
    EXPECT_EQ(s.srv().stats().protocol_errors, 1u);
    // The agent itself is fine.
    raw_client next(s.path);
    EXPECT_EQ(next.handshake().version(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    frames, agent_server_malformed,
    ::testing::Values(
        malformed_case{"unknown_type", header_bytes(0, 0x7f, 0, 1)},
        malformed_case{"reserved_flag", frame_with(request("/"), 0x10, 0x02, 1)},
        malformed_case{"too_large", header_bytes(4097, 0x11, 0, 1)},
        malformed_case{"decision_from_the_proxy", header_bytes(0, 0x20, 0, 1)},
        malformed_case{"health_from_the_proxy", header_bytes(0, 0x05, 0, 0)},
        malformed_case{"stream_frame_on_stream_0", frame_with(request("/"), 0x10, 0, 0)},
        malformed_case{"ping_on_a_stream", header_bytes(0, 0x03, 0, 7)},
        malformed_case{"unparseable_payload", header_bytes(3, 0x10, 0, 1) + "\xff\xff\xff"},
        malformed_case{"second_hello", header_bytes(0, 0x01, 0, 0)},
        malformed_case{"event_before_hello", frame_with(request("/"), 0x10, 0, 1), true},
        malformed_case{"garbage_hello", header_bytes(2, 0x01, 0, 0) + "\xff\xff", true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(agent_server, a_frame_split_across_writes_is_reassembled) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    std::string out;
    raw_client::append(out, ft::request_headers, 1, request("/split"), end_stream);
    for (char ch : out) {
        c.send_raw(std::string_view(&ch, 1));
    }
    const auto f = c.expect_frame();
    EXPECT_EQ(header_of(f.as<v1::Decision>(), "X-Seen-Path"), "/split");
}

TEST(agent_server, health_goes_to_every_connection_and_to_later_ones) {
    running_server s;
    raw_client a(s.path), b(s.path);
    a.handshake();
    b.handshake();
    s.srv().report_health(v1::Health::UNHEALTHY, "rules failed to load");
    for (raw_client* c : {&a, &b}) {
        const auto f = c->expect_frame();
        ASSERT_EQ(f.header.type, ft::health);
        EXPECT_EQ(f.as<v1::Health>().status(), v1::Health::UNHEALTHY);
        EXPECT_EQ(f.as<v1::Health>().message(), "rules failed to load");
    }
    raw_client late(s.path);
    late.handshake();
    const auto f = late.expect_frame();
    ASSERT_EQ(f.header.type, ft::health);
    EXPECT_EQ(f.as<v1::Health>().status(), v1::Health::UNHEALTHY);
}

TEST(agent_server, shutdown_drains_open_streams_then_returns_0) {
    running_server s;
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/open"));  // no END_STREAM: stays open
    EXPECT_EQ(c.expect_frame().header.type, ft::decision);
    s.srv().shutdown();
    const auto f = c.expect_frame();
    ASSERT_EQ(f.header.type, ft::drain);
    // The socket file is gone at once; the open stream may still finish.
    EXPECT_FALSE(std::filesystem::exists(s.path));
    v1::RequestComplete done;
    c.send(ft::request_complete, 1, done, end_stream);
    EXPECT_EQ(s.join(), 0);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, shutdown_gives_up_on_streams_after_the_drain_timeout) {
    server_options o;
    o.drain_timeout = std::chrono::milliseconds(100);
    running_server s(o);
    raw_client c(s.path);
    c.handshake();
    c.send(ft::request_headers, 1, request("/never-completes"));
    EXPECT_EQ(c.expect_frame().header.type, ft::decision);
    s.srv().shutdown();
    EXPECT_EQ(c.expect_frame().header.type, ft::drain);
    EXPECT_EQ(s.join(), 0);
    EXPECT_TRUE(c.closed_by_agent());
}

TEST(agent_server, listen_replaces_a_stale_socket_but_not_a_live_one_or_a_file) {
    temp_dir dir;
    auto make = [] { return server({.handle_signals = false}, [] { return std::make_unique<handler>(); }); };
    std::string error;

    // Stale: bound by a process that is gone (nobody listens).
    const std::string stale = dir.file("stale.sock");
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, stale.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::close(fd);
    }
    auto a = make();
    EXPECT_TRUE(a.listen(stale, error)) << error;

    // Live: `a` listens on it now.
    auto b = make();
    EXPECT_FALSE(b.listen(stale, error));
    EXPECT_NE(error.find("another process is listening"), std::string::npos) << error;

    const std::string plain = dir.file("plain");
    { std::ofstream(plain) << "keep me"; }
    auto c = make();
    EXPECT_FALSE(c.listen(plain, error));
    EXPECT_TRUE(std::filesystem::exists(plain));

    EXPECT_FALSE(c.listen("tcp://nohostport", error));
}

TEST(agent_server, tcp_listener_speaks_the_same_protocol) {
    auto shared = std::make_shared<shared_state>();
    server srv({.name = "tcp-agent", .handle_signals = false}, [shared] { return std::make_unique<test_handler>(*shared); });
    std::string error;
    ASSERT_TRUE(srv.listen("tcp://127.0.0.1:0", error)) << error;
    ASSERT_NE(srv.tcp_port(), 0);
    std::thread t([&] { srv.run(); });
    {
        raw_client c(srv.tcp_port());
        EXPECT_EQ(c.handshake().agent_name(), "tcp-agent");
        c.send(ft::request_headers, 1, request("/tcp"), end_stream);
        EXPECT_EQ(header_of(c.expect_frame().as<v1::Decision>(), "X-Seen-Path"), "/tcp");
    }
    srv.shutdown();
    t.join();
}

}  // namespace
}  // namespace sentinel::agent_sdk
