// The active health checker against real sockets on 127.0.0.1: servers answering a chosen
// status, a closed port, and a server that accepts but never answers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "upstream/health_checker.hpp"

namespace sentinel::upstream {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A tiny HTTP server on its own thread. Answers every request with `status`, or, when
// `silent`, accepts and then never reads nor answers (so checks time out).
class test_server {
public:
    explicit test_server(int status, bool silent = false)
        : status(status), silent(silent), acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~test_server() {
        io_.stop();
        thread_.join();
    }
    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
    std::string last_request() {
        std::lock_guard lock(mutex_);
        return last_request_;
    }

    std::atomic<int> status;
    std::atomic<bool> silent;
    std::atomic<int> requests{0};

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
            if (ec) return;
            auto s = std::make_shared<tcp::socket>(std::move(socket));
            if (silent) {
                held_.push_back(s);  // never answered, closed when the server stops
            } else {
                serve(s);
            }
            accept();
        });
    }
    void serve(std::shared_ptr<tcp::socket> s) {
        auto buf = std::make_shared<asio::streambuf>();
        asio::async_read_until(*s, *buf, "\r\n\r\n", [this, s, buf](boost::system::error_code ec, std::size_t n) {
            if (ec) return;
            {
                std::lock_guard lock(mutex_);
                last_request_.assign(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + n);
            }
            requests.fetch_add(1);
            auto reply = std::make_shared<std::string>("HTTP/1.1 " + std::to_string(status.load()) +
                                                       " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            asio::async_write(*s, asio::buffer(*reply), [s, reply](boost::system::error_code, std::size_t) {
                boost::system::error_code ignored;
                s->shutdown(tcp::socket::shutdown_both, ignored);
            });
        });
    }

    asio::io_context io_{1};
    tcp::acceptor acceptor_;
    std::vector<std::shared_ptr<tcp::socket>> held_;
    std::mutex mutex_;
    std::string last_request_;
    std::thread thread_;
};

// A port nobody listens on: bound, then closed, so connects are refused at once.
tcp::endpoint closed_port() {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::address_v4::loopback(), 0});
    auto ep = a.local_endpoint();
    a.close();
    return ep;
}

// Polls `cond` every 5 ms for at most `limit`.
bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 2000ms) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (cond()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return cond();
}

config::health_check_config fast_check(config::health_check_config::kind type =
                                           config::health_check_config::kind::http) {
    config::health_check_config hc;
    hc.type = type;
    hc.path = "/healthz";
    hc.interval = 20ms;
    hc.timeout = 300ms;
    hc.healthy = 2;
    hc.unhealthy = 3;
    return hc;
}

// Records every flip the checker reports.
struct flip_log {
    std::mutex mutex;
    std::vector<std::pair<bool, std::string>> flips;
    health_checker::change_callback callback() {
        return [this](const health_target&, bool healthy, std::string_view line) {
            std::lock_guard lock(mutex);
            flips.emplace_back(healthy, std::string(line));
        };
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return flips.size();
    }
    std::pair<bool, std::string> at(std::size_t i) {
        std::lock_guard lock(mutex);
        return flips.at(i);
    }
};

health_target target_for(const std::shared_ptr<endpoint_state>& state, tcp::endpoint address,
                         std::optional<config::health_check_config> hc) {
    return health_target{.state = state, .address = address, .host_header = "api.internal",
                         .check = std::move(hc), .upstream_id = "api"};
}

TEST(status_line, strict_parse) {
    EXPECT_EQ(parse_status_line("HTTP/1.1 200 OK"), 200);
    EXPECT_EQ(parse_status_line("HTTP/1.0 503 Service Unavailable"), 503);
    EXPECT_EQ(parse_status_line("HTTP/1.1 204"), 204);
    EXPECT_EQ(parse_status_line("HTTP/1.1 204 "), 204);
    EXPECT_FALSE(parse_status_line("HTTP/1.1 20 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 2000 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1  200 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/2 200 OK"));
    EXPECT_FALSE(parse_status_line("http/1.1 200 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 099 Nope"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 600 Nope"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 2x0 OK"));
    EXPECT_FALSE(parse_status_line("SSH-2.0-OpenSSH"));
    EXPECT_FALSE(parse_status_line(""));
}

TEST(health_checker, http_endpoint_goes_down_on_503_and_up_again_on_200) {
    test_server server(200);
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    flip_log log;
    health_checker checker;
    checker.on_change(log.callback());
    checker.update({target_for(state, server.endpoint(), fast_check())});

    ASSERT_TRUE(wait_for([&] { return server.requests.load() >= 3; }));
    EXPECT_TRUE(state->healthy.load());
    EXPECT_EQ(server.last_request(),
              "GET /healthz HTTP/1.1\r\nHost: api.internal\r\nUser-Agent: sentinel-health-check\r\n"
              "Connection: close\r\n\r\n");
    EXPECT_EQ(log.size(), 0u);

    server.status = 503;
    ASSERT_TRUE(wait_for([&] { return !state->healthy.load(); }));
    ASSERT_TRUE(wait_for([&] { return log.size() == 1; }));
    EXPECT_FALSE(log.at(0).first);
    EXPECT_EQ(log.at(0).second,
              "health: upstream \"api\" endpoint 127.0.0.1:1 is now DOWN "
              "(3 consecutive failures: status 503)");
    EXPECT_FALSE(state->available(now_ms()));

    server.status = 200;
    ASSERT_TRUE(wait_for([&] { return state->healthy.load(); }));
    ASSERT_TRUE(wait_for([&] { return log.size() == 2; }));
    EXPECT_EQ(log.at(1).second,
              "health: upstream \"api\" endpoint 127.0.0.1:1 is now UP (2 consecutive successes)");
}

TEST(health_checker, unhealthy_threshold_counts_consecutive_failures) {
    // With a long interval the checks can be counted: two failures are not enough.
    test_server server(500);
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    auto hc = fast_check();
    hc.interval = 150ms;
    health_checker checker;
    checker.update({target_for(state, server.endpoint(), hc)});
    ASSERT_TRUE(wait_for([&] { return server.requests.load() >= 2; }));
    if (server.requests.load() == 2) {
        EXPECT_TRUE(state->healthy.load());
    }
    ASSERT_TRUE(wait_for([&] { return !state->healthy.load(); }));
    EXPECT_GE(server.requests.load(), 3);
}

TEST(health_checker, expect_status_list) {
    test_server server(204);
    auto up = std::make_shared<upstream_state>("api");
    auto ok_state = std::make_shared<endpoint_state>("127.0.0.1:1", up, false);
    auto bad_state = std::make_shared<endpoint_state>("127.0.0.1:2", up, true);
    auto accepts_204 = fast_check();
    accepts_204.expect_status = {204};
    accepts_204.healthy = 1;
    auto accepts_200 = fast_check();
    accepts_200.expect_status = {200};
    accepts_200.unhealthy = 1;
    health_checker checker;
    checker.update({target_for(ok_state, server.endpoint(), accepts_204),
                    target_for(bad_state, server.endpoint(), accepts_200)});
    EXPECT_TRUE(wait_for([&] { return ok_state->healthy.load() && !bad_state->healthy.load(); }));
}

TEST(health_checker, tcp_check_against_a_closed_port_goes_down) {
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    flip_log log;
    health_checker checker;
    checker.on_change(log.callback());
    checker.update({target_for(state, closed_port(), fast_check(config::health_check_config::kind::tcp))});
    ASSERT_TRUE(wait_for([&] { return log.size() == 1; }));
    EXPECT_FALSE(state->healthy.load());
    EXPECT_EQ(log.at(0).second,
              "health: upstream \"api\" endpoint 127.0.0.1:1 is now DOWN "
              "(3 consecutive failures: connection refused)");
}

TEST(health_checker, tcp_check_succeeds_on_connect) {
    test_server server(200, true);  // never answers: a TCP check only needs the connect
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, false);
    health_checker checker;
    checker.update({target_for(state, server.endpoint(), fast_check(config::health_check_config::kind::tcp))});
    EXPECT_TRUE(wait_for([&] { return state->healthy.load(); }));
}

TEST(health_checker, silent_server_times_out) {
    test_server server(200, true);
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    auto hc = fast_check();
    hc.timeout = 100ms;
    hc.unhealthy = 2;
    flip_log log;
    health_checker checker;
    checker.on_change(log.callback());
    const auto start = std::chrono::steady_clock::now();
    checker.update({target_for(state, server.endpoint(), hc)});
    ASSERT_TRUE(wait_for([&] { return log.size() == 1; }));
    // Two checks that each waited out the whole timeout.
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_FALSE(state->healthy.load());
    EXPECT_EQ(log.at(0).second,
              "health: upstream \"api\" endpoint 127.0.0.1:1 is now DOWN "
              "(2 consecutive failures: timeout after 100ms)");
}

TEST(health_checker, start_unhealthy_endpoint_needs_healthy_successes) {
    test_server server(200);
    auto up = std::make_shared<upstream_state>("api");
    auto hc = fast_check();
    hc.start_unhealthy = true;
    hc.healthy = 3;
    hc.interval = 50ms;
    // Whoever creates the state applies start-unhealthy (see health_target).
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, !hc.start_unhealthy);
    EXPECT_FALSE(state->available(now_ms()));
    flip_log log;
    health_checker checker;
    checker.on_change(log.callback());
    checker.update({target_for(state, server.endpoint(), hc)});
    ASSERT_TRUE(wait_for([&] { return server.requests.load() >= 1; }));
    ASSERT_TRUE(wait_for([&] { return state->healthy.load(); }));
    EXPECT_GE(server.requests.load(), 3);
    ASSERT_TRUE(wait_for([&] { return log.size() == 1; }));
    EXPECT_TRUE(log.at(0).first);
}

TEST(health_checker, update_keeps_known_targets_and_releases_dropped_checks) {
    test_server server(503);
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    auto hc = fast_check();
    hc.unhealthy = 1;
    health_checker checker;
    checker.update({target_for(state, server.endpoint(), hc)});
    ASSERT_TRUE(wait_for([&] { return !state->healthy.load(); }));

    // Same state, new settings: it stays down (no restart from the initial state) and the
    // new expectation applies from the next check.
    auto accept_503 = hc;
    accept_503.expect_status = {503};
    accept_503.healthy = 1;
    checker.update({target_for(state, server.endpoint(), accept_503)});
    ASSERT_TRUE(wait_for([&] { return state->healthy.load(); }));

    // No longer checked: nothing would ever bring it back, so it is marked healthy.
    checker.update({target_for(state, server.endpoint(), hc)});
    ASSERT_TRUE(wait_for([&] { return !state->healthy.load(); }));
    checker.update({target_for(state, server.endpoint(), std::nullopt)});
    ASSERT_TRUE(wait_for([&] { return state->healthy.load(); }));
    const int seen = server.requests.load();
    std::this_thread::sleep_for(100ms);  // five intervals: no check may arrive any more
    EXPECT_LE(server.requests.load(), seen + 1);  // one may have been in flight
}

TEST(health_checker, sweeps_expired_ejections_of_unchecked_endpoints) {
    auto up = std::make_shared<upstream_state>("api");
    up->endpoint_count = 2;
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    config::outlier_config od;
    od.consecutive_failures = 1;
    od.base_ejection = 50ms;
    od.max_ejected_percent = 50;
    state->report(now_ms(), attempt_result::connect_failure, 0us, nullptr, &od);
    ASSERT_EQ(up->ejected.load(), 1u);
    health_checker checker;
    checker.update({target_for(state, closed_port(), std::nullopt)});
    EXPECT_TRUE(wait_for([&] { return up->ejected.load() == 0; }, 1000ms));
    EXPECT_EQ(state->ejected_until.load(), 0);
}

TEST(health_checker, destruction_cancels_a_hanging_check) {
    test_server server(200, true);
    auto up = std::make_shared<upstream_state>("api");
    auto state = std::make_shared<endpoint_state>("127.0.0.1:1", up, true);
    auto hc = fast_check();
    hc.timeout = 10s;
    const auto start = std::chrono::steady_clock::now();
    {
        health_checker checker;
        checker.update({target_for(state, server.endpoint(), hc)});
        std::this_thread::sleep_for(50ms);  // let the check connect and start waiting
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_TRUE(state->healthy.load());
}

}  // namespace
}  // namespace sentinel::upstream
