#include "upstream/health_checker.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <random>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>

#include "http/h2/client_session.hpp"

namespace sentinel::upstream {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto sweep_period = std::chrono::milliseconds(100);
// A status line longer than this is not a status line; the check fails instead of buffering.
constexpr std::size_t max_status_line = 4096;

// One checked endpoint. Lives as long as its coroutine or its entry in the target map.
struct check_task {
    check_task(asio::io_context& io, health_target t)
        : target(std::move(t)), socket(io), timer(io), deadline(io) {}

    health_target target;  // replaced in place by update(); each check works on a copy
    tcp::socket socket;
    asio::steady_timer timer;     // waits between checks
    asio::steady_timer deadline;  // bounds one whole check
    bool stopped = false;
    bool timed_out = false;
    std::uint64_t generation = 0;  // which check a deadline belongs to
};

struct check_result {
    bool ok = false;
    std::string reason;  // why it failed
};

std::string describe(const boost::system::error_code& ec) {
    if (ec == asio::error::connection_refused) return "connection refused";
    if (ec == asio::error::eof) return "connection closed before the status line";
    std::string text = ec.message();
    if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    return text;
}

// Request-target and Host come from the config or DNS; one stray CR or LF would let them
// smuggle a second request, so such a check fails instead of being sent.
bool header_safe(std::string_view s) {
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool status_accepted(int status, const config::health_check_config& hc) {
    if (hc.expect_status.empty()) return status >= 200 && status <= 399;
    return std::find(hc.expect_status.begin(), hc.expect_status.end(), status) !=
           hc.expect_status.end();
}

// The check's verdict once `seen` holds a whole status line; nothing while it does not.
std::optional<check_result> judge_status_line(std::string_view seen, const config::health_check_config& hc) {
    const auto end = seen.find("\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    const auto status = parse_status_line(seen.substr(0, end));
    if (!status) return check_result{false, "malformed status line"};
    if (!status_accepted(*status, hc)) return check_result{false, "status " + std::to_string(*status)};
    return check_result{true, {}};
}

std::string address_text(const tcp::endpoint& address) {
    const auto ip = address.address();
    std::string host = ip.is_v6() ? "[" + ip.to_string() + "]" : ip.to_string();
    return host + ":" + std::to_string(address.port());
}

}  // namespace

std::optional<int> parse_status_line(std::string_view line) {
    constexpr std::string_view prefix = "HTTP/1.";
    if (line.size() < 12 || line.substr(0, prefix.size()) != prefix) return std::nullopt;
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!digit(line[7]) || line[8] != ' ') return std::nullopt;
    if (!digit(line[9]) || !digit(line[10]) || !digit(line[11])) return std::nullopt;
    if (line.size() > 12 && line[12] != ' ') return std::nullopt;
    const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 100 || status > 599) return std::nullopt;
    return status;
}

struct health_checker::impl {
    struct entry {
        health_target target;
        std::shared_ptr<check_task> task;  // null when the target has no check
    };

    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    asio::steady_timer sweep_timer{io};
    // Everything below is touched on the checker thread only.
    std::unordered_map<endpoint_state*, entry> entries;
    change_callback callback;
    std::minstd_rand rng{std::random_device{}()};
    bool stopping = false;
    std::thread thread;  // last: started once everything above exists

    impl() {
        asio::co_spawn(io, sweep(), asio::detached);
        thread = std::thread([this] { io.run(); });
    }

    void apply(std::vector<health_target> targets);
    void stop_task(entry& e, bool mark_healthy);
    void stop_all();
    awaitable<void> sweep();
    awaitable<void> run(std::shared_ptr<check_task> task);
    template <class Stream>
    awaitable<check_result> http_exchange(Stream& stream, check_task& task, const std::string& request,
                                          const config::health_check_config& hc);
    template <class Stream>
    awaitable<check_result> h2_exchange(Stream& stream, check_task& task, const std::string& request,
                                        const config::health_check_config& hc, bool tls,
                                        const std::string& authority);
    template <class Stream>
    awaitable<check_result> exchange(Stream& stream, check_task& task, const std::string& request,
                                     const health_target& target, const std::string& authority) {
        if (target.h2) co_return co_await h2_exchange(stream, task, request, *target.check, target.tls != nullptr, authority);
        co_return co_await http_exchange(stream, task, request, *target.check);
    }
    awaitable<check_result> check_once(std::shared_ptr<check_task> task_ptr,
                                       const health_target& target);
    void report_flip(const health_target& target, bool healthy, const std::string& reason);
};

void health_checker::impl::apply(std::vector<health_target> targets) {
    if (stopping) return;
    std::unordered_map<endpoint_state*, entry> next;
    for (auto& t : targets) {
        if (!t.state) continue;
        endpoint_state* key = t.state.get();
        entry e{std::move(t), nullptr};
        if (auto old = entries.find(key); old != entries.end()) {
            e.task = std::move(old->second.task);
            entries.erase(old);
        }
        if (e.target.check && e.task) {
            e.task->target = e.target;  // keeps its schedule; the next check uses this
        } else if (e.target.check) {
            e.task = std::make_shared<check_task>(io, e.target);
            asio::co_spawn(io, run(e.task), asio::detached);
        } else if (e.task) {
            stop_task(e, true);
        }
        next[key] = std::move(e);  // a duplicate state: the last target wins
    }
    for (auto& [key, e] : entries) stop_task(e, true);
    entries = std::move(next);
}

void health_checker::impl::stop_task(entry& e, bool mark_healthy) {
    if (!e.task) return;
    e.task->stopped = true;
    e.task->timer.cancel();
    e.task->deadline.cancel();
    boost::system::error_code ignored;
    e.task->socket.close(ignored);
    e.task.reset();
    if (mark_healthy) {
        auto& state = *e.target.state;
        state.check_successes = 0;
        state.check_failures = 0;
        state.healthy.store(true, std::memory_order_relaxed);
    }
}

void health_checker::impl::stop_all() {
    stopping = true;
    sweep_timer.cancel();
    for (auto& [key, e] : entries) stop_task(e, false);
    entries.clear();
}

awaitable<void> health_checker::impl::sweep() {
    while (!stopping) {
        const std::int64_t now = now_ms();
        for (auto& [key, e] : entries) e.target.state->sweep_ejection(now);
        sweep_timer.expires_after(sweep_period);
        co_await sweep_timer.async_wait(use_tuple);
    }
}

awaitable<void> health_checker::impl::run(std::shared_ptr<check_task> task) {
    {
        // First check right away, but not all of them in the same millisecond after a reload.
        const auto interval = task->target.check->interval;
        const auto spread = std::clamp<std::int64_t>(interval.count() / 10, 0, 500);
        std::uniform_int_distribution<std::int64_t> jitter(0, spread);
        task->timer.expires_after(std::chrono::milliseconds(jitter(rng)));
        co_await task->timer.async_wait(use_tuple);
    }
    while (!task->stopped) {
        const auto started = asio::steady_timer::clock_type::now();
        const health_target target = task->target;  // update() may replace it meanwhile
        check_result result = co_await check_once(task, target);
        if (task->stopped) break;
        if (target.state->record_check(result.ok, *target.check))
            report_flip(target, result.ok, result.reason);
        // Measured from the start, so a slow check does not stretch the interval.
        task->timer.expires_at(started + target.check->interval);
        co_await task->timer.async_wait(use_tuple);
    }
}

awaitable<check_result> health_checker::impl::check_once(std::shared_ptr<check_task> task_ptr,
                                                          const health_target& target) {
    check_task& task = *task_ptr;
    const config::health_check_config& hc = *target.check;
    boost::system::error_code ignored;
    task.socket.close(ignored);
    task.socket = tcp::socket(io);
    task.timed_out = false;
    const std::uint64_t generation = ++task.generation;
    task.deadline.expires_after(hc.timeout);
    // The closing of the socket ends whichever step of the check is pending. A deadline
    // that had already fired when its check ended (too late to cancel) finds a newer
    // generation and leaves the next check alone, or finds the task gone.
    task.deadline.async_wait([weak = std::weak_ptr(task_ptr), generation](
                                 const boost::system::error_code& ec) {
        auto t = weak.lock();
        if (ec || !t || t->generation != generation) return;
        t->timed_out = true;
        boost::system::error_code ignored;
        t->socket.close(ignored);
    });
    auto finish = [&](check_result r) {
        task.deadline.cancel();
        ++task.generation;
        task.socket.close(ignored);
        if (!r.ok && task.timed_out)
            r.reason = "timeout after " + std::to_string(hc.timeout.count()) + "ms";
        return r;
    };

    auto [ec] = co_await task.socket.async_connect(target.address, use_tuple);
    if (task.stopped) co_return finish({false, "stopped"});
    if (ec) co_return finish({false, describe(ec)});
    if (hc.type == config::health_check_config::kind::tcp) co_return finish({true, {}});

    std::string host = hc.host ? *hc.host : target.host_header;
    if (host.empty()) host = address_text(target.address);
    if (!header_safe(hc.path) || !header_safe(host) || hc.path.empty())
        co_return finish({false, "invalid path or host for the check request"});
    std::string request;
    request.reserve(96 + hc.path.size() + host.size());
    request.append("GET ").append(hc.path).append(" HTTP/1.1\r\nHost: ").append(host);
    request.append("\r\nUser-Agent: sentinel-health-check\r\nConnection: close\r\n\r\n");
    if (!target.tls) co_return finish(co_await exchange(task.socket, task, request, target, host));

    SSL* ssl = SSL_new(target.tls->native());
    if (ssl == nullptr) co_return finish({false, "cannot create a TLS session"});
    std::string error;
    const std::string key = address_text(target.address);
    if (!target.tls->prepare(ssl, target.tls_host, key, error)) {
        SSL_free(ssl);
        co_return finish({false, "TLS: " + error});
    }
    asio::ssl::stream<tcp::socket&> stream(task.socket, ssl);  // owns `ssl` from here
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (task.stopped) co_return finish({false, "stopped"});
    if (hec) {
        const std::string why = tls::client_context::verify_error(stream.native_handle(), {});
        co_return finish({false, "TLS handshake failed: " + (why.empty() ? describe(hec) : why)});
    }
    target.tls->remember(stream.native_handle(), key);
    if (target.h2 && !tls::selected_h2(stream.native_handle()))
        co_return finish({false, "the server did not select h2 in ALPN"});
    co_return finish(co_await exchange(stream, task, request, target, host));
}

template <class Stream>
awaitable<check_result> health_checker::impl::http_exchange(Stream& stream, check_task& task,
                                                             const std::string& request,
                                                             const config::health_check_config& hc) {
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(request), use_tuple);
    if (task.stopped) co_return check_result{false, "stopped"};
    if (wec) co_return check_result{false, describe(wec)};

    std::array<char, max_status_line> buffer;
    std::size_t filled = 0;
    for (;;) {
        auto [rec, n] = co_await stream.async_read_some(
            asio::buffer(buffer.data() + filled, buffer.size() - filled), use_tuple);
        if (task.stopped) co_return check_result{false, "stopped"};
        filled += n;
        if (auto result = judge_status_line({buffer.data(), filled}, hc)) co_return *result;
        if (rec) co_return check_result{false, describe(rec)};
        if (filled == buffer.size()) co_return check_result{false, "status line too long"};
    }
}

template <class Stream>
awaitable<check_result> health_checker::impl::h2_exchange(Stream& stream, check_task& task,
                                                           const std::string& request,
                                                           const config::health_check_config& hc,
                                                           bool tls, const std::string& authority) {
    // The session translates the same HTTP/1.1 request into one stream and the response back
    // into HTTP/1.1 bytes, so the status line is judged as for an HTTP/1.1 check. Nothing
    // waits on stream events: this loop polls the session after every read.
    struct no_waiters final : h2::client_owner {
        void on_stream_event(std::uint32_t) override {}
    } owner;
    h2::client_session session(owner, tls, authority);
    const std::uint32_t handle = session.open();
    if (!session.write(handle, request)) co_return check_result{false, "cannot encode the check request"};

    std::string out;
    std::array<char, 16384> in;
    std::array<char, max_status_line> head;
    std::size_t filled = 0;
    for (;;) {
        while (session.want_write()) {
            out.clear();
            session.send(out, in.size() * 4);
            if (out.empty()) break;
            auto [wec, written] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
            if (task.stopped) co_return check_result{false, "stopped"};
            if (wec) co_return check_result{false, describe(wec)};
        }
        filled += session.read(handle, head.data() + filled, head.size() - filled);
        if (auto result = judge_status_line({head.data(), filled}, hc)) co_return *result;
        if (filled == head.size()) co_return check_result{false, "status line too long"};
        if (session.failed(handle) != h2::client_session::failure::none)
            co_return check_result{false, "HTTP/2 stream reset before the response"};
        if (!session.want_read()) co_return check_result{false, "HTTP/2 connection closed (GOAWAY)"};
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(in), use_tuple);
        if (task.stopped) co_return check_result{false, "stopped"};
        if (n > 0 && !session.receive({in.data(), n}))
            co_return check_result{false, "HTTP/2 protocol error"};
        if (rec) co_return check_result{false, describe(rec)};
    }
}

void health_checker::impl::report_flip(const health_target& target, bool healthy,
                                       const std::string& reason) {
    const auto& state = *target.state;
    std::string line = "health: upstream \"" + target.upstream_id + "\" endpoint " + state.key;
    if (healthy) {
        line += " is now UP (" + std::to_string(state.check_successes) + " consecutive successes)";
    } else {
        line += " is now DOWN (" + std::to_string(state.check_failures) +
                " consecutive failures: " + reason + ")";
    }
    if (callback) {
        callback(target, healthy, line);
        return;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);  // one write: lines never interleave
}

health_checker::health_checker() : impl_(std::make_unique<impl>()) {}

health_checker::~health_checker() {
    // Every coroutine ends once its timer or socket is cancelled, and run() returns when
    // nothing is left: no handler is destroyed mid-flight.
    asio::post(impl_->io, [i = impl_.get()] { i->stop_all(); });
    impl_->guard.reset();
    impl_->thread.join();
}

void health_checker::update(std::vector<health_target> targets) {
    asio::post(impl_->io, [i = impl_.get(), t = std::move(targets)]() mutable { i->apply(std::move(t)); });
}

void health_checker::on_change(change_callback fn) {
    asio::post(impl_->io, [i = impl_.get(), fn = std::move(fn)]() mutable { i->callback = std::move(fn); });
}

}  // namespace sentinel::upstream
