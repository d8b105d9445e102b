#include "observability/tracing.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace sentinel::observability::tracing {

std::atomic<std::uint64_t> stats::exported{0};
std::atomic<std::uint64_t> stats::dropped_queue_full{0};
std::atomic<std::uint64_t> stats::dropped_export_failed{0};
std::atomic<std::uint64_t> stats::export_requests{0};

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // upper case is invalid in traceparent
}

bool parse_hex(std::string_view text, std::uint8_t* out) {
    for (std::size_t i = 0; i < text.size() / 2; ++i) {
        const int hi = hex_value(text[2 * i]);
        const int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return true;
}

}  // namespace

bool parse_traceparent(std::string_view v, trace_context& out) {
    // Version 00 has exactly this length; later versions may append fields, but we only
    // accept what we can vouch for (the spec allows restarting the trace on anything else).
    if (v.size() != traceparent_size) return false;
    if (v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
    trace_context c;
    std::uint8_t flags[1];
    if (!parse_hex(v.substr(3, 32), c.trace_id) || !parse_hex(v.substr(36, 16), c.span_id) ||
        !parse_hex(v.substr(53, 2), flags))
        return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8)) return false;
    c.flags = flags[0];
    out = c;
    return true;
}

void to_hex(const std::uint8_t* bytes, std::size_t n, char* out) {
    static constexpr char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
}

void format_traceparent(char out[traceparent_size], const std::uint8_t trace_id[16], const std::uint8_t span_id[8],
                        std::uint8_t flags) {
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    to_hex(trace_id, 16, out + 3);
    out[35] = '-';
    to_hex(span_id, 8, out + 36);
    out[52] = '-';
    to_hex(&flags, 1, out + 53);
}

void make_span_id(std::uint8_t out[8], std::uint64_t random) {
    if (random == 0) random = 1;  // an all-zero id is invalid
    for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(random >> (56 - 8 * i));
}

void start_request(request_trace& t, std::string_view traceparent, int traceparent_count, std::string_view tracestate,
                   std::uint32_t percent, const std::uint64_t random[4]) {
    t.active = true;
    trace_context incoming;
    // Several traceparent fields are as invalid as a malformed one (W3C Trace Context §3.2).
    if (traceparent_count == 1 && parse_traceparent(traceparent, incoming)) {
        std::memcpy(t.trace_id, incoming.trace_id, 16);
        std::memcpy(t.parent_id, incoming.span_id, 8);
        t.has_parent = true;
        t.sampled = (incoming.flags & flag_sampled) != 0;  // parent-based
        if (tracestate.size() <= max_tracestate) t.tracestate.assign(tracestate);
        else t.tracestate.clear();
    } else {
        // A new trace; a tracestate without a valid traceparent is meaningless and dropped.
        make_span_id(t.trace_id, random[0]);
        make_span_id(t.trace_id + 8, random[1]);
        t.has_parent = false;
        t.sampled = sample_new_trace(percent, random[3]);
        t.tracestate.clear();
    }
    t.flags = t.sampled ? flag_sampled : 0;
    make_span_id(t.server_span_id, random[2]);
}

// ---------------------------------------------------------------- exporter

exporter::exporter(exporter_settings settings)
    : settings_(std::move(settings)), thread_([this] { run(); }) {}

exporter::~exporter() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    disconnect();
}

bool exporter::submit(std::string&& spans, std::uint32_t count) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || queued_spans_ + count > settings_.max_queue_spans) {
            stats::dropped_queue_full.fetch_add(count, std::memory_order_relaxed);
            return false;
        }
        queued_spans_ += count;
        queue_.push_back({std::move(spans), count});
    }
    wake_.notify_one();
    return true;
}

void exporter::run() {
    std::string batch;
    std::unique_lock lock(mutex_);
    bool give_up = false;  // stopping and the collector failed: drop the rest, do not wait again
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        while (!queue_.empty()) {
            // Several workers' hand-overs become one request, up to batch-size spans.
            batch.clear();
            std::uint32_t count = 0;
            while (!queue_.empty() && (count == 0 || count + queue_.front().count <= settings_.batch_size)) {
                batch += queue_.front().spans;
                count += queue_.front().count;
                queued_spans_ -= queue_.front().count;
                queue_.pop_front();
            }
            if (give_up) {
                stats::dropped_export_failed.fetch_add(count, std::memory_order_relaxed);
                continue;
            }
            lock.unlock();
            build_export_request(body_, settings_.service_name, settings_.service_version, batch);
            const bool ok = post(body_);
            if (ok) {
                stats::exported.fetch_add(count, std::memory_order_relaxed);
                stats::export_requests.fetch_add(1, std::memory_order_relaxed);
            } else {
                stats::dropped_export_failed.fetch_add(count, std::memory_order_relaxed);
            }
            lock.lock();
            if (!ok && stopping_) give_up = true;
        }
        if (stopping_) return;
    }
}

// A dead collector fails every batch: say so once per 10 s, the counters have the rest.
bool exporter::warning_due() {
    const auto now = std::chrono::steady_clock::now();
    if (last_warning_.time_since_epoch().count() != 0 && now - last_warning_ < std::chrono::seconds(10)) return false;
    last_warning_ = now;
    return true;
}

void exporter::disconnect() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool exporter::connect_collector() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(settings_.port);
    const std::string host = settings_.host.size() > 2 && settings_.host.front() == '['
                                 ? settings_.host.substr(1, settings_.host.size() - 2)
                                 : settings_.host;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) return false;
    const int timeout_ms = static_cast<int>(settings_.timeout.count());
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) continue;
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
            int err = 0;
            socklen_t len = sizeof err;
            if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) rc = -1;
        }
        if (rc != 0) {
            ::close(fd);
            continue;
        }
        // Blocking from here on, every send/recv bounded by the export timeout.
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd_ = fd;
        break;
    }
    ::freeaddrinfo(found);
    return fd_ >= 0;
}

namespace {

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    return true;
}

}  // namespace

// One POST on the kept-alive connection (a fresh one when there is none, and one retry on a
// fresh connection when a reused one turns out closed). True only for a 2xx answer.
bool exporter::post(const std::string& body) {
    constexpr std::size_t max_response = 64 * 1024;
    request_.clear();
    fmt::format_to(std::back_inserter(request_),
                   "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/x-protobuf\r\n"
                   "Content-Length: {}\r\nUser-Agent: sentinel\r\n\r\n",
                   settings_.path, settings_.host, settings_.port, body.size());
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = fd_ >= 0;
        if (!reused && !connect_collector()) {
            if (warning_due()) spdlog::warn("tracing: cannot connect to the OTLP collector {}:{}; spans dropped", settings_.host, settings_.port);
            return false;
        }
        if (!send_all(fd_, request_) || !send_all(fd_, body)) {
            disconnect();
            if (reused) continue;
            return false;
        }
        // Read the head, then the body by Content-Length (or to EOF / the chunked terminator).
        response_.clear();
        std::size_t head_end = std::string::npos;
        char buf[4096];
        bool failed = false;
        while (head_end == std::string::npos) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || response_.size() > max_response) {
                failed = true;
                break;
            }
            response_.append(buf, static_cast<std::size_t>(n));
            head_end = response_.find("\r\n\r\n");
        }
        if (failed) {
            disconnect();
            if (reused && response_.empty()) continue;  // the collector closed an idle connection
            if (warning_due()) spdlog::warn("tracing: no response from the OTLP collector {}:{}; spans dropped", settings_.host, settings_.port);
            return false;
        }
        int status = 0;
        if (response_.size() >= 12 && response_.compare(0, 5, "HTTP/") == 0)
            status = std::atoi(response_.c_str() + 9);
        std::size_t content_length = 0;
        bool has_length = false, chunked = false, close = false;
        std::string_view head(response_.data(), head_end);
        for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
            const std::size_t next = head.find("\r\n", pos + 2);
            const std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? head.npos : next - pos - 2);
            if (iequals_prefix(line, "content-length:")) {
                content_length = static_cast<std::size_t>(std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10));
                has_length = true;
            } else if (iequals_prefix(line, "transfer-encoding:") && line.find("chunked") != line.npos) {
                chunked = true;
            } else if (iequals_prefix(line, "connection:") && line.find("close") != line.npos) {
                close = true;
            }
            pos = next;
        }
        const std::size_t body_start = head_end + 4;
        auto body_complete = [&] {
            if (chunked) return response_.size() >= body_start + 5 &&
                                (response_.compare(response_.size() - 5, 5, "0\r\n\r\n") == 0);
            return has_length && response_.size() >= body_start + content_length;
        };
        while (!body_complete() && (has_length || chunked || close) && response_.size() <= max_response) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            response_.append(buf, static_cast<std::size_t>(n));
        }
        if (close || !body_complete()) disconnect();
        if (status >= 200 && status < 300) return true;
        if (warning_due())
            spdlog::warn("tracing: the OTLP collector {}:{} answered {}; spans dropped", settings_.host, settings_.port,
                         status);
        return false;
    }
    return false;
}

}  // namespace sentinel::observability::tracing
