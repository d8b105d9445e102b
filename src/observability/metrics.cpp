#include "observability/metrics.hpp"
#include "observability/event_log.hpp"
#include "observability/tracing.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

namespace sentinel::observability {

const char* to_string(local_reply_reason reason) {
    static constexpr const char* names[] = {
        "bad_request", "uri_too_long", "headers_too_large", "body_too_large",
        "not_implemented", "version_not_supported", "no_route", "client_header_timeout",
        "client_body_timeout", "upstream_connect_failure", "upstream_connect_timeout",
        "upstream_response_timeout", "upstream_bad_response", "upstream_unavailable",
        "max_connections", "fixed_response", "builtin", "upstream_overloaded", "redirect",
        "agent_block", "agent_redirect", "agent_unavailable", "upgrade_required",
        "websocket_max_connections"};
    static_assert(std::size(names) == static_cast<std::size_t>(local_reply_reason::count_));
    return names[static_cast<std::size_t>(reason)];
}

const char* to_string(tls_failure reason) {
    static constexpr const char* names[] = {"timeout", "client_closed", "protocol_version",
                                            "no_shared_cipher", "client_certificate", "other"};
    static_assert(std::size(names) == static_cast<std::size_t>(tls_failure::count_));
    return names[static_cast<std::size_t>(reason)];
}

const char* to_string(audit_reason reason) {
    static constexpr const char* names[] = {"malformed_request", "request_smuggling", "uri_too_long",
                                            "headers_too_large", "path_traversal", "client_certificate",
                                            "auth_failure", "rate_limited", "agent_decision", "http2_abuse"};
    static_assert(std::size(names) == static_cast<std::size_t>(audit_reason::count_));
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
                                            "upstream_body_idle", "websocket_idle"};
    static_assert(std::size(names) == static_cast<std::size_t>(timeout_kind::count_));
    return names[static_cast<std::size_t>(kind)];
}

const char* to_string(websocket_refusal reason) {
    static constexpr const char* names[] = {"method", "http_version", "connection", "key", "version",
                                            "unsupported_version", "max_connections", "upstream_handshake",
                                            "not_enabled"};
    static_assert(std::size(names) == static_cast<std::size_t>(websocket_refusal::count_));
    return names[static_cast<std::size_t>(reason)];
}

http_method method_of(std::string_view m) noexcept {
    switch (m.size()) {
    case 3: return m == "GET" ? http_method::get : m == "PUT" ? http_method::put : http_method::other;
    case 4: return m == "HEAD" ? http_method::head : m == "POST" ? http_method::post : http_method::other;
    case 5: return m == "PATCH" ? http_method::patch : http_method::other;
    case 6: return m == "DELETE" ? http_method::delete_ : http_method::other;
    case 7: return m == "OPTIONS" ? http_method::options : http_method::other;
    default: return http_method::other;
    }
}

const char* to_string(http_method method) {
    static constexpr const char* names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
    static_assert(std::size(names) == static_cast<std::size_t>(http_method::count_));
    return names[static_cast<std::size_t>(method)];
}

const char* status_class_name(std::size_t index) {
    static constexpr const char* names[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static_assert(std::size(names) == status_classes);
    return names[index < status_classes ? index : 0];
}

const char* to_string(upstream_try_failure reason) {
    static constexpr const char* names[] = {"connect_failure", "connect_timeout", "timeout",
                                            "reset", "bad_response", "refused"};
    static_assert(std::size(names) == static_cast<std::size_t>(upstream_try_failure::count_));
    return names[static_cast<std::size_t>(reason)];
}

template <class Slot>
Slot& labelled_metrics::find_or_create(std::map<std::string, Slot*, std::less<>>& map,
                                       std::deque<Slot>& store, std::string_view id) {
    // Only this worker inserts, so finding without the lock cannot race with an insert.
    if (auto it = map.find(id); it != map.end()) return *it->second;
    std::lock_guard lock(mutex_);
    Slot& slot = store.emplace_back();
    map.emplace(std::string(id), &slot);
    return slot;
}

listener_slot& labelled_metrics::listener(std::string_view id) {
    return find_or_create(listeners_, listener_store_, id);
}
route_slot& labelled_metrics::route(std::string_view id) { return find_or_create(routes_, route_store_, id); }
upstream_slot& labelled_metrics::upstream(std::string_view id) {
    return find_or_create(upstreams_, upstream_store_, id);
}

agent_slot& labelled_metrics::agent(std::string_view id) { return find_or_create(agents_, agent_store_, id); }

const char* to_string(agent_outcome outcome) {
    switch (outcome) {
    case agent_outcome::allow: return "allow";
    case agent_outcome::block: return "block";
    case agent_outcome::redirect: return "redirect";
    case agent_outcome::timeout: return "timeout";
    case agent_outcome::error: return "error";
    case agent_outcome::shed: return "shed";
    case agent_outcome::breaker_open: return "breaker_open";
    case agent_outcome::unavailable: return "unavailable";
    case agent_outcome::count_: break;
    }
    return "other";
}

const char* to_string(agent_protocol_error reason) {
    switch (reason) {
    case agent_protocol_error::bad_frame: return "bad_frame";
    case agent_protocol_error::bad_payload: return "bad_payload";
    case agent_protocol_error::unexpected_frame: return "unexpected_frame";
    case agent_protocol_error::bad_decision: return "bad_decision";
    case agent_protocol_error::handshake: return "handshake";
    case agent_protocol_error::count_: break;
    }
    return "other";
}

counter& labelled_metrics::requests(std::string_view listener, std::string_view route, http_method method,
                                    std::size_t status_class) {
    request_key key{std::string(listener), std::string(route), method, status_class};
    if (auto it = requests_.find(key); it != requests_.end()) return *it->second;
    std::lock_guard lock(mutex_);
    counter& c = request_store_.emplace_back();
    requests_.emplace(std::move(key), &c);
    return c;
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

// Prometheus label values escape backslash, quote and newline.
std::string escape_label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') { out += "\\n"; continue; }
        out += c;
    }
    return out;
}

// Sums of one histogram across workers: buckets (not cumulative), count, sum in seconds.
struct histogram_sum {
    std::array<std::uint64_t, duration_buckets.size() + 1> buckets{};
    std::uint64_t count = 0;
    std::uint64_t sum_micros = 0;
    void add(const histogram& h) {
        for (std::size_t b = 0; b < buckets.size(); ++b) buckets[b] += h.buckets[b].value();
        count += h.count.value();
        sum_micros += h.sum_micros.value();
    }
};

// Samples of one histogram series; `labels` is "" or `k="v"` pairs without braces.
void histogram_samples(std::string& out, std::string_view name, std::string_view labels, const histogram_sum& h) {
    const std::string sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= duration_buckets.size(); ++b) {
        cumulative += h.buckets[b];
        const std::string le = b < duration_buckets.size() ? fmt::format("{}", duration_buckets[b]) : "+Inf";
        sample(out, fmt::format("{}_bucket", name), fmt::format("{}{}le=\"{}\"", labels, sep, le),
               static_cast<double>(cumulative));
    }
    sample(out, fmt::format("{}_sum", name), labels, static_cast<double>(h.sum_micros) / 1e6);
    sample(out, fmt::format("{}_count", name), labels, static_cast<double>(h.count));
}

double process_limit_fds() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
    return static_cast<double>(rl.rlim_cur);
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

std::string render_prometheus(const workers_t& w, const process_metrics& p, const config_figures& figures) {
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
    // Labelled families: every worker's slots, summed by label values.
    std::map<std::string, std::array<double, 4>> per_listener;  // bytes in, bytes out, http, https
    std::map<std::string, histogram_sum> per_route;
    struct websocket_sums {
        double active = 0;
        std::array<std::uint64_t, static_cast<std::size_t>(websocket_refusal::count_)> refused{};
    };
    std::map<std::string, websocket_sums> per_route_websocket;
    struct upstream_sums {
        histogram_sum request, connect, header;
        std::array<std::uint64_t, status_classes> responses{};
        std::array<std::uint64_t, static_cast<std::size_t>(upstream_try_failure::count_)> failures{};
    };
    std::map<std::string, upstream_sums> per_upstream;
    std::map<std::tuple<std::string, std::string, http_method, std::size_t>, std::uint64_t> requests;
    struct agent_sums {
        std::array<std::uint64_t, static_cast<std::size_t>(agent_outcome::count_)> decisions{};
        std::array<std::uint64_t, static_cast<std::size_t>(agent_protocol_error::count_)> errors{};
        std::uint64_t fail_open = 0, late = 0, cancels = 0, connects = 0, connect_failures = 0;
        double connections = 0, in_flight = 0;
        histogram_sum latency;
    };
    std::map<std::string, agent_sums> per_agent;
    for (const auto* m : w) {
        m->labelled.each_agent([&](const std::string& id, const agent_slot& a) {
            auto& v = per_agent[id];
            for (std::size_t i = 0; i < v.decisions.size(); ++i) v.decisions[i] += a.decisions[i].value();
            for (std::size_t i = 0; i < v.errors.size(); ++i) v.errors[i] += a.protocol_errors[i].value();
            v.fail_open += a.fail_open.value();
            v.late += a.late_decisions.value();
            v.cancels += a.cancels.value();
            v.connects += a.connects.value();
            v.connect_failures += a.connect_failures.value();
            v.connections += static_cast<double>(a.connections.value());
            v.in_flight += static_cast<double>(a.in_flight.value());
            v.latency.add(a.latency);
        });
        m->labelled.each_listener([&](const std::string& id, const listener_slot& l) {
            auto& v = per_listener[id];
            v[0] += static_cast<double>(l.request_bytes.value());
            v[1] += static_cast<double>(l.response_bytes.value());
            v[2] += static_cast<double>(l.active_http.value());
            v[3] += static_cast<double>(l.active_https.value());
        });
        m->labelled.each_route([&](const std::string& id, const route_slot& r) {
            per_route[id].add(r.duration);
            auto& ws = per_route_websocket[id];
            ws.active += static_cast<double>(r.websocket_active.value());
            for (std::size_t i = 0; i < ws.refused.size(); ++i) ws.refused[i] += r.websocket_refused[i].value();
        });
        m->labelled.each_upstream([&](const std::string& id, const upstream_slot& u) {
            auto& v = per_upstream[id];
            v.request.add(u.request_duration);
            v.connect.add(u.connect_duration);
            v.header.add(u.response_header_duration);
            for (std::size_t i = 0; i < status_classes; ++i) v.responses[i] += u.responses[i].value();
            for (std::size_t i = 0; i < v.failures.size(); ++i) v.failures[i] += u.try_failures[i].value();
        });
        m->labelled.each_request([&](const std::string& l, const std::string& r, http_method meth, std::size_t c,
                                     const counter& n) { requests[{l, r, meth, c}] += n.value(); });
    }

    family(out, "sentinel_downstream_connections_active", "gauge",
           "Downstream connections currently open, by listener and protocol.");
    for (const auto& [id, v] : per_listener) {
        const std::string l = escape_label(id);
        sample(out, "sentinel_downstream_connections_active", fmt::format("listener=\"{}\",protocol=\"http\"", l), v[2]);
        sample(out, "sentinel_downstream_connections_active", fmt::format("listener=\"{}\",protocol=\"https\"", l), v[3]);
    }
    family(out, "sentinel_http_request_bytes_total", "counter",
           "Downstream request bytes (heads and bodies) of finished requests, by listener.");
    for (const auto& [id, v] : per_listener)
        sample(out, "sentinel_http_request_bytes_total", fmt::format("listener=\"{}\"", escape_label(id)), v[0]);
    family(out, "sentinel_http_response_bytes_total", "counter",
           "Downstream response bytes of finished requests, by listener.");
    for (const auto& [id, v] : per_listener)
        sample(out, "sentinel_http_response_bytes_total", fmt::format("listener=\"{}\"", escape_label(id)), v[1]);

    family(out, "sentinel_http_requests_total", "counter",
           "Downstream requests answered, by listener, route (\"\" when unrouted), method and status class.");
    for (const auto& [key, n] : requests) {
        const auto& [l, r, meth, c] = key;
        sample(out, "sentinel_http_requests_total",
               fmt::format("listener=\"{}\",route=\"{}\",method=\"{}\",status_class=\"{}\"", escape_label(l),
                           escape_label(r), to_string(meth), status_class_name(c)),
               static_cast<double>(n));
    }

    family(out, "sentinel_http_request_duration_seconds", "histogram",
           "Time from the first byte of a request to the last byte of its response, by route (\"\" when unrouted).");
    for (const auto& [id, h] : per_route)
        histogram_samples(out, "sentinel_http_request_duration_seconds", fmt::format("route=\"{}\"", escape_label(id)), h);

    family(out, "sentinel_websocket_connections_active", "gauge",
           "WebSocket tunnels open now (all workers), by route.");
    for (const auto& [id, v] : per_route_websocket)
        sample(out, "sentinel_websocket_connections_active", fmt::format("route=\"{}\"", escape_label(id)), v.active);
    family(out, "sentinel_websocket_upgrades_refused_total", "counter",
           "WebSocket upgrades that did not become a tunnel, by route and reason.");
    for (const auto& [id, v] : per_route_websocket)
        for (std::size_t i = 0; i < v.refused.size(); ++i)
            sample(out, "sentinel_websocket_upgrades_refused_total",
                   fmt::format("route=\"{}\",reason=\"{}\"", escape_label(id),
                               to_string(static_cast<websocket_refusal>(i))),
                   static_cast<double>(v.refused[i]));

    family(out, "sentinel_upstream_request_duration_seconds", "histogram",
           "Time from the start of the final upstream try to the end of the relayed response, by upstream.");
    for (const auto& [id, v] : per_upstream)
        histogram_samples(out, "sentinel_upstream_request_duration_seconds",
                          fmt::format("upstream=\"{}\"", escape_label(id)), v.request);
    family(out, "sentinel_upstream_connect_duration_seconds", "histogram",
           "Time to open a new upstream connection (TCP connect plus TLS handshake), by upstream.");
    for (const auto& [id, v] : per_upstream)
        histogram_samples(out, "sentinel_upstream_connect_duration_seconds",
                          fmt::format("upstream=\"{}\"", escape_label(id)), v.connect);
    family(out, "sentinel_upstream_response_header_duration_seconds", "histogram",
           "Time from the start of an upstream try to its response head, by upstream.");
    for (const auto& [id, v] : per_upstream)
        histogram_samples(out, "sentinel_upstream_response_header_duration_seconds",
                          fmt::format("upstream=\"{}\"", escape_label(id)), v.header);
    family(out, "sentinel_upstream_responses_total", "counter",
           "Response heads received from upstream endpoints, by upstream and status class.");
    for (const auto& [id, v] : per_upstream)
        for (std::size_t c = 0; c < status_classes; ++c)
            sample(out, "sentinel_upstream_responses_total",
                   fmt::format("upstream=\"{}\",status_class=\"{}\"", escape_label(id), status_class_name(c)),
                   static_cast<double>(v.responses[c]));
    family(out, "sentinel_upstream_try_failures_total", "counter",
           "Upstream tries that ended without a usable response, by upstream and reason.");
    for (const auto& [id, v] : per_upstream)
        for (std::size_t i = 0; i < v.failures.size(); ++i)
            sample(out, "sentinel_upstream_try_failures_total",
                   fmt::format("upstream=\"{}\",reason=\"{}\"", escape_label(id),
                               to_string(static_cast<upstream_try_failure>(i))),
                   static_cast<double>(v.failures[i]));

    family(out, "sentinel_agent_decisions_total", "counter",
           "Agent consultations, by agent and outcome (allow, block, redirect, timeout, error, shed, breaker_open, unavailable).");
    for (const auto& [id, v] : per_agent)
        for (std::size_t i = 0; i < v.decisions.size(); ++i)
            sample(out, "sentinel_agent_decisions_total",
                   fmt::format("agent=\"{}\",outcome=\"{}\"", escape_label(id), to_string(static_cast<agent_outcome>(i))),
                   static_cast<double>(v.decisions[i]));
    family(out, "sentinel_agent_fail_open_total", "counter",
           "Requests let through without the agent's decision because its failure-mode is open, by agent.");
    for (const auto& [id, v] : per_agent)
        sample(out, "sentinel_agent_fail_open_total", fmt::format("agent=\"{}\"", escape_label(id)), static_cast<double>(v.fail_open));
    family(out, "sentinel_agent_latency_seconds", "histogram",
           "Time from sending an event to an agent to receiving its decision, by agent.");
    for (const auto& [id, v] : per_agent)
        histogram_samples(out, "sentinel_agent_latency_seconds", fmt::format("agent=\"{}\"", escape_label(id)), v.latency);
    family(out, "sentinel_agent_protocol_errors_total", "counter",
           "Agent connections closed because the agent broke the protocol, by agent and reason.");
    for (const auto& [id, v] : per_agent)
        for (std::size_t i = 0; i < v.errors.size(); ++i)
            sample(out, "sentinel_agent_protocol_errors_total",
                   fmt::format("agent=\"{}\",reason=\"{}\"", escape_label(id), to_string(static_cast<agent_protocol_error>(i))),
                   static_cast<double>(v.errors[i]));
    family(out, "sentinel_agent_late_decisions_total", "counter",
           "Decisions that arrived after the proxy had given up on the stream (dropped), by agent.");
    for (const auto& [id, v] : per_agent)
        sample(out, "sentinel_agent_late_decisions_total", fmt::format("agent=\"{}\"", escape_label(id)), static_cast<double>(v.late));
    family(out, "sentinel_agent_cancels_total", "counter", "CANCEL frames sent to agents, by agent.");
    for (const auto& [id, v] : per_agent)
        sample(out, "sentinel_agent_cancels_total", fmt::format("agent=\"{}\"", escape_label(id)), static_cast<double>(v.cancels));
    family(out, "sentinel_agent_connects_total", "counter",
           "Agent connections established (handshake completed) and attempts that failed, by agent and result.");
    for (const auto& [id, v] : per_agent) {
        sample(out, "sentinel_agent_connects_total", fmt::format("agent=\"{}\",result=\"ok\"", escape_label(id)), static_cast<double>(v.connects));
        sample(out, "sentinel_agent_connects_total", fmt::format("agent=\"{}\",result=\"failed\"", escape_label(id)), static_cast<double>(v.connect_failures));
    }
    family(out, "sentinel_agent_connections", "gauge", "Agent connections ready now (all workers), by agent.");
    for (const auto& [id, v] : per_agent)
        sample(out, "sentinel_agent_connections", fmt::format("agent=\"{}\"", escape_label(id)), v.connections);
    family(out, "sentinel_agent_in_flight", "gauge", "Requests waiting on or holding a stream at an agent now, by agent.");
    for (const auto& [id, v] : per_agent)
        sample(out, "sentinel_agent_in_flight", fmt::format("agent=\"{}\"", escape_label(id)), v.in_flight);

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
    simple("sentinel_upstream_pool_idle_connections", "gauge",
           "Idle upstream connections kept for reuse, all workers (as of the last 100 ms pool sweep).",
           sum(w, [](auto& m) { return static_cast<double>(m.upstream_pool_idle.value()); }));
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
    simple("sentinel_access_log_sampled_out_total", "counter",
           "Requests not written to the access log because sample-percent skipped them.",
           sum(w, [](auto& m) { return m.access_log_sampled_out.value(); }));
    simple("sentinel_audit_log_dropped_lines_total", "counter",
           "Audit-log lines dropped because the writer queue was full.",
           sum(w, [](auto& m) { return m.audit_log_dropped_lines.value(); }));
    simple("sentinel_http2_connections_total", "counter", "Downstream connections that spoke HTTP/2 (ALPN h2 or h2c prior knowledge).",
           sum(w, [](auto& m) { return m.http2_connections.value(); }));
    simple("sentinel_http2_connections_active", "gauge", "Downstream HTTP/2 connections open now.",
           sum(w, [](auto& m) { return static_cast<std::uint64_t>(m.http2_connections_active.value()); }));
    simple("sentinel_http2_streams_total", "counter", "HTTP/2 request streams started (each runs the request pipeline).",
           sum(w, [](auto& m) { return m.http2_streams.value(); }));
    simple("sentinel_http2_streams_refused_total", "counter",
           "HTTP/2 streams refused with REFUSED_STREAM (over max-concurrent-streams).",
           sum(w, [](auto& m) { return m.http2_streams_refused.value(); }));
    family(out, "sentinel_http2_abuse_total", "counter",
           "HTTP/2 connections ended with GOAWAY(ENHANCE_YOUR_CALM), by kind of abuse.");
    for (std::size_t i = 0; i < http2_abuse_kinds.size(); ++i)
        sample(out, "sentinel_http2_abuse_total", fmt::format("kind=\"{}\"", http2_abuse_kinds[i]),
               sum(w, [i](auto& m) { return m.http2_abuse[i].value(); }));
    family(out, "sentinel_audit_events_total", "counter",
           "Security decisions (refused requests and connections), by reason.");
    for (std::size_t i = 0; i < static_cast<std::size_t>(audit_reason::count_); ++i)
        sample(out, "sentinel_audit_events_total",
               fmt::format("reason=\"{}\"", to_string(static_cast<audit_reason>(i))),
               sum(w, [i](auto& m) { return m.audit_events[i].value(); }));
    {
        using tracing::stats;
        simple("sentinel_tracing_spans_exported_total", "counter",
               "Spans accepted by the OTLP collector.", static_cast<double>(stats::exported.load()));
        family(out, "sentinel_tracing_spans_dropped_total", "counter",
               "Spans not exported, by reason: the exporter queue was full, or the export failed or was rejected.");
        sample(out, "sentinel_tracing_spans_dropped_total", "reason=\"queue_full\"",
               static_cast<double>(stats::dropped_queue_full.load()));
        sample(out, "sentinel_tracing_spans_dropped_total", "reason=\"export_failed\"",
               static_cast<double>(stats::dropped_export_failed.load()));
        simple("sentinel_tracing_export_requests_total", "counter",
               "OTLP export requests the collector accepted.", static_cast<double>(stats::export_requests.load()));
    }
    simple("sentinel_log_suppressed_lines_total", "counter",
           "Error-log lines not written because their message repeated past error-log repeat-limit.",
           static_cast<double>(event_log::suppressed_total()));

    family(out, "sentinel_config_reloads_total", "counter", "Configuration reloads, by result.");
    sample(out, "sentinel_config_reloads_total", "result=\"success\"", p.reloads_success.load());
    sample(out, "sentinel_config_reloads_total", "result=\"failure\"", p.reloads_failure.load());
    family(out, "sentinel_config_info", "gauge", "The active configuration; the hash label identifies it.");
    sample(out, "sentinel_config_info", fmt::format("hash=\"{}\"", p.config_hash), 1);
    simple("sentinel_config_load_timestamp_seconds", "gauge",
           "Unix time the active configuration was loaded.", p.config_load_time.load());
    simple("sentinel_workers", "gauge", "Worker threads serving traffic.", p.workers);
    simple("sentinel_listeners", "gauge", "Traffic listeners bound.", static_cast<double>(p.listeners));
    simple("sentinel_routes", "gauge", "Routes in the active configuration.", static_cast<double>(figures.routes));
    simple("sentinel_upstreams", "gauge", "Upstreams in the active configuration.",
           static_cast<double>(figures.upstreams));
    family(out, "sentinel_build_info", "gauge", "The running build; the version label identifies it.");
    sample(out, "sentinel_build_info", fmt::format("version=\"{}\"", escape_label(figures.version)), 1);

    const double start = std::chrono::duration<double>(p.start_time.time_since_epoch()).count();
    simple("sentinel_process_start_time_seconds", "gauge", "Unix time the process started.", start);
    simple("sentinel_process_uptime_seconds", "gauge", "Seconds since the process started.",
           std::chrono::duration<double>(std::chrono::system_clock::now() - p.start_time).count());
    simple("sentinel_process_cpu_seconds_total", "counter", "User and system CPU time used.",
           process_cpu_seconds());
    simple("sentinel_process_resident_memory_bytes", "gauge", "Resident set size.",
           proc_status_kb("VmRSS") * 1024);
    simple("sentinel_process_virtual_memory_bytes", "gauge", "Virtual memory size.",
           proc_status_kb("VmSize") * 1024);
    simple("sentinel_process_threads", "gauge", "Threads in the process.", proc_status_kb("Threads"));
    simple("sentinel_process_open_fds", "gauge", "Open file descriptors.", open_fds());
    simple("sentinel_process_max_fds", "gauge", "Soft limit on open file descriptors (0: unlimited).",
           process_limit_fds());
    return out;
}

}  // namespace sentinel::observability
