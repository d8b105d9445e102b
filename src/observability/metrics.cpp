#include "observability/metrics.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <fmt/format.h>

namespace sentinel::observability {

const char* to_string(local_reply_reason reason) {
    static constexpr const char* names[] = {
        "bad_request", "uri_too_long", "headers_too_large", "body_too_large",
        "not_implemented", "version_not_supported", "no_route", "client_header_timeout",
        "client_body_timeout", "upstream_connect_failure", "upstream_connect_timeout",
        "upstream_response_timeout", "upstream_bad_response", "upstream_unavailable",
        "max_connections", "fixed_response", "builtin", "upstream_overloaded", "redirect"};
    static_assert(std::size(names) == static_cast<std::size_t>(local_reply_reason::count_));
    return names[static_cast<std::size_t>(reason)];
}

const char* to_string(tls_failure reason) {
    static constexpr const char* names[] = {"timeout", "client_closed", "protocol_version",
                                            "no_shared_cipher", "client_certificate", "other"};
    static_assert(std::size(names) == static_cast<std::size_t>(tls_failure::count_));
    return names[static_cast<std::size_t>(reason)];
}

const char* to_string(upstream_refusal reason) {
    static constexpr const char* names[] = {"no_available_endpoint", "max_in_flight", "max_pending",
                                            "max_connections"};
    static_assert(std::size(names) == static_cast<std::size_t>(upstream_refusal::count_));
    return names[static_cast<std::size_t>(reason)];
}

const char* to_string(timeout_kind kind) {
    static constexpr const char* names[] = {"client_header", "client_body_idle", "keepalive_idle",
                                            "upstream_connect", "upstream_response_header",
                                            "upstream_body_idle"};
    static_assert(std::size(names) == static_cast<std::size_t>(timeout_kind::count_));
    return names[static_cast<std::size_t>(kind)];
}

void histogram::observe(std::chrono::microseconds elapsed) noexcept {
    const double seconds = static_cast<double>(elapsed.count()) / 1e6;
    std::size_t i = 0;
    while (i < duration_buckets.size() && seconds > duration_buckets[i]) ++i;
    buckets[i].inc();
    count.inc();
    sum_micros.inc(static_cast<std::uint64_t>(elapsed.count()));
}

namespace {

using workers_t = std::vector<const worker_metrics*>;

template <typename Get>
std::uint64_t sum(const workers_t& workers, Get get) {
    std::uint64_t total = 0;
    for (const auto* w : workers) total += get(*w);
    return total;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
    if (labels.empty())
        fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
    else
        fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
}

// Reads a "Key:  123 kB" line from /proc/self/status.
double proc_status_kb(std::string_view key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':')
            return std::strtod(line.c_str() + key.size() + 1, nullptr);
    return 0;
}

double process_cpu_seconds() {
    std::ifstream in("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the ")" that ends the command name: utime is field 14, stime 15.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> field; ++i) {
        if (i == 14) utime = std::strtod(field.c_str(), nullptr);
        if (i == 15) { stime = std::strtod(field.c_str(), nullptr); break; }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double open_fds() {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return static_cast<double>(n);
}

}  // namespace

std::string render_prometheus(const workers_t& w, const process_metrics& p) {
    std::string out;
    out.reserve(16 * 1024);
    auto simple = [&](std::string_view name, std::string_view type, std::string_view help, double v) {
        family(out, name, type, help);
        sample(out, name, {}, v);
    };

    simple("sentinel_downstream_connections_accepted_total", "counter",
           "Downstream connections accepted.",
           sum(w, [](auto& m) { return m.connections_accepted.value(); }));
    family(out, "sentinel_downstream_connections_rejected_total", "counter",
           "Downstream connections refused with 503 because a connection limit was reached.");
    sample(out, "sentinel_downstream_connections_rejected_total", "reason=\"max_connections\"",
           sum(w, [](auto& m) { return m.connections_rejected_max.value(); }));
    {
        std::int64_t active = 0;
        for (const auto* m : w) active += m->connections_active.value();
        simple("sentinel_downstream_connections_active", "gauge",
               "Downstream connections currently open.", static_cast<double>(active));
    }

    family(out, "sentinel_http_requests_total", "counter",
           "Downstream requests answered, by status class.");
    static constexpr const char* classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (std::size_t c = 0; c < 6; ++c)
        sample(out, "sentinel_http_requests_total", fmt::format("code=\"{}\"", classes[c]),
               sum(w, [c](auto& m) { return m.requests_by_class[c].value(); }));

    family(out, "sentinel_http_request_duration_seconds", "histogram",
           "Time from the first byte of a request to the last byte of its response.");
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= duration_buckets.size(); ++b) {
        cumulative += sum(w, [b](auto& m) { return m.request_duration.buckets[b].value(); });
        const std::string le = b < duration_buckets.size() ? fmt::format("{}", duration_buckets[b]) : "+Inf";
        sample(out, "sentinel_http_request_duration_seconds_bucket", fmt::format("le=\"{}\"", le),
               static_cast<double>(cumulative));
    }
    sample(out, "sentinel_http_request_duration_seconds_sum", {},
           static_cast<double>(sum(w, [](auto& m) { return m.request_duration.sum_micros.value(); })) / 1e6);
    sample(out, "sentinel_http_request_duration_seconds_count", {},
           sum(w, [](auto& m) { return m.request_duration.count.value(); }));

    family(out, "sentinel_local_replies_total", "counter",
           "Responses generated by Sentinel itself, by reason.");
    for (std::size_t r = 0; r < static_cast<std::size_t>(local_reply_reason::count_); ++r)
        sample(out, "sentinel_local_replies_total",
               fmt::format("reason=\"{}\"", to_string(static_cast<local_reply_reason>(r))),
               sum(w, [r](auto& m) { return m.local_replies[r].value(); }));

    family(out, "sentinel_timeouts_total", "counter", "Timeouts that fired, by kind.");
    for (std::size_t t = 0; t < static_cast<std::size_t>(timeout_kind::count_); ++t)
        sample(out, "sentinel_timeouts_total",
               fmt::format("kind=\"{}\"", to_string(static_cast<timeout_kind>(t))),
               sum(w, [t](auto& m) { return m.timeouts[t].value(); }));

    simple("sentinel_downstream_received_bytes_total", "counter",
           "Bytes received from downstream clients.", sum(w, [](auto& m) { return m.bytes_received.value(); }));
    simple("sentinel_downstream_sent_bytes_total", "counter",
           "Bytes sent to downstream clients.", sum(w, [](auto& m) { return m.bytes_sent.value(); }));
    simple("sentinel_upstream_requests_total", "counter", "Requests sent to upstream endpoints.",
           sum(w, [](auto& m) { return m.upstream_requests.value(); }));
    simple("sentinel_upstream_connect_failures_total", "counter",
           "Upstream connection attempts that failed or timed out.",
           sum(w, [](auto& m) { return m.upstream_connect_failures.value(); }));
    simple("sentinel_upstream_pool_connections_created_total", "counter",
           "Upstream connections opened.", sum(w, [](auto& m) { return m.upstream_connections_created.value(); }));
    simple("sentinel_upstream_pool_connections_reused_total", "counter",
           "Requests sent on a pooled (reused) upstream connection.",
           sum(w, [](auto& m) { return m.upstream_connections_reused.value(); }));
    family(out, "sentinel_tls_handshakes_total", "counter", "Completed downstream TLS handshakes, by protocol version.");
    sample(out, "sentinel_tls_handshakes_total", "version=\"TLSv1.2\"",
           sum(w, [](auto& m) { return m.tls_handshakes_tls12.value(); }));
    sample(out, "sentinel_tls_handshakes_total", "version=\"TLSv1.3\"",
           sum(w, [](auto& m) { return m.tls_handshakes_tls13.value(); }));
    simple("sentinel_tls_resumed_handshakes_total", "counter",
           "Downstream TLS handshakes that resumed a session (ticket or session cache).",
           sum(w, [](auto& m) { return m.tls_resumed.value(); }));
    family(out, "sentinel_tls_handshake_failures_total", "counter", "Failed downstream TLS handshakes, by reason.");
    for (std::size_t i = 0; i < static_cast<std::size_t>(tls_failure::count_); ++i) {
        const std::string label = std::string("reason=\"") + to_string(static_cast<tls_failure>(i)) + "\"";
        sample(out, "sentinel_tls_handshake_failures_total", label,
               sum(w, [i](auto& m) { return m.tls_failures[i].value(); }));
    }
    simple("sentinel_upstream_retries_total", "counter",
           "Upstream tries after the first, by a route's retry policy.",
           sum(w, [](auto& m) { return m.upstream_retries.value(); }));
    simple("sentinel_upstream_retry_budget_exhausted_total", "counter",
           "Retries not made because the upstream's retry budget was used up.",
           sum(w, [](auto& m) { return m.upstream_retry_budget_exhausted.value(); }));
    simple("sentinel_upstream_breaker_refusals_total", "counter",
           "Endpoint picks refused by an open or saturated half-open circuit breaker.",
           sum(w, [](auto& m) { return m.upstream_breaker_refusals.value(); }));
    family(out, "sentinel_upstream_refused_total", "counter",
           "Requests answered 503 before reaching an endpoint, by reason.");
    for (std::size_t i = 0; i < static_cast<std::size_t>(upstream_refusal::count_); ++i) {
        const std::string label = std::string("reason=\"") + to_string(static_cast<upstream_refusal>(i)) + "\"";
        sample(out, "sentinel_upstream_refused_total", label,
               sum(w, [i](auto& m) { return m.upstream_refused[i].value(); }));
    }
    simple("sentinel_upstream_stale_connection_retries_total", "counter",
           "Requests retried on a fresh connection after a reused one failed before any response byte.",
           sum(w, [](auto& m) { return m.upstream_stale_retries.value(); }));
    family(out, "sentinel_upstream_tls_handshakes_total", "counter",
           "Completed TLS handshakes towards upstream endpoints, by whether a session was resumed.");
    sample(out, "sentinel_upstream_tls_handshakes_total", "resumed=\"false\"",
           sum(w, [](auto& m) { return m.upstream_tls_handshakes_full.value(); }));
    sample(out, "sentinel_upstream_tls_handshakes_total", "resumed=\"true\"",
           sum(w, [](auto& m) { return m.upstream_tls_handshakes_resumed.value(); }));
    simple("sentinel_upstream_tls_handshake_failures_total", "counter",
           "Failed TLS handshakes towards upstream endpoints (certificate verification, protocol, timeout).",
           sum(w, [](auto& m) { return m.upstream_tls_handshake_failures.value(); }));
    simple("sentinel_upstream_bad_responses_total", "counter",
           "Upstream responses rejected as malformed (answered 502).",
           sum(w, [](auto& m) { return m.upstream_bad_responses.value(); }));
    simple("sentinel_proxy_protocol_errors_total", "counter",
           "Connections closed because of a missing or malformed PROXY protocol header.",
           sum(w, [](auto& m) { return m.proxy_protocol_errors.value(); }));
    simple("sentinel_access_log_dropped_lines_total", "counter",
           "Access-log lines dropped because the writer queue was full.",
           sum(w, [](auto& m) { return m.access_log_dropped_lines.value(); }));

    family(out, "sentinel_config_reloads_total", "counter", "Configuration reloads, by result.");
    sample(out, "sentinel_config_reloads_total", "result=\"success\"", p.reloads_success.load());
    sample(out, "sentinel_config_reloads_total", "result=\"failure\"", p.reloads_failure.load());
    family(out, "sentinel_config_info", "gauge", "The active configuration; the hash label identifies it.");
    sample(out, "sentinel_config_info", fmt::format("hash=\"{}\"", p.config_hash), 1);
    simple("sentinel_config_load_timestamp_seconds", "gauge",
           "Unix time the active configuration was loaded.", p.config_load_time.load());
    simple("sentinel_workers", "gauge", "Worker threads serving traffic.", p.workers);
    simple("sentinel_listeners", "gauge", "Traffic listeners bound.", static_cast<double>(p.listeners));

    const double start = std::chrono::duration<double>(p.start_time.time_since_epoch()).count();
    simple("sentinel_process_start_time_seconds", "gauge", "Unix time the process started.", start);
    simple("sentinel_process_uptime_seconds", "gauge", "Seconds since the process started.",
           std::chrono::duration<double>(std::chrono::system_clock::now() - p.start_time).count());
    simple("sentinel_process_cpu_seconds_total", "counter", "User and system CPU time used.",
           process_cpu_seconds());
    simple("sentinel_process_resident_memory_bytes", "gauge", "Resident set size.",
           proc_status_kb("VmRSS") * 1024);
    simple("sentinel_process_open_fds", "gauge", "Open file descriptors.", open_fds());
    return out;
}

}  // namespace sentinel::observability
