#include "server/upstream_status.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace sentinel::server {

namespace {

const char* breaker_name(upstream::breaker_state s) {
    switch (s) {
    case upstream::breaker_state::closed: return "closed";
    case upstream::breaker_state::open: return "open";
    case upstream::breaker_state::half_open: return "half_open";
    }
    return "closed";
}

// Calls fn(group, endpoint, role) for every endpoint, primaries first.
template <class F>
void each_endpoint(const std::vector<upstream::upstream_group>& groups, F&& fn) {
    for (const auto& g : groups) {
        for (const auto& e : g.primary.endpoints) fn(g, e, "primary");
        for (const auto& e : g.backup.endpoints) fn(g, e, "backup");
    }
}

}  // namespace

void render_upstream_metrics(const std::vector<upstream::upstream_group>& groups, std::string& out) {
    const auto now = upstream::now_ms();
    auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    // Label values are upstream ids and endpoint addresses from the config: bounded.
    auto per_endpoint = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
        family(name, type, help);
        each_endpoint(groups, [&](const upstream::upstream_group& g, const upstream::endpoint& e, const char*) {
            fmt::format_to(std::back_inserter(out), "{}{{upstream=\"{}\",endpoint=\"{}\"}} {}\n", name, g.id, e.key,
                           value(*e.state));
        });
    };
    per_endpoint("sentinel_upstream_endpoint_healthy", "gauge",
                 "1 when the endpoint passes active health checks (or has none).",
                 [](const upstream::endpoint_state& s) { return s.healthy.load() ? 1 : 0; });
    per_endpoint("sentinel_upstream_endpoint_available", "gauge",
                 "1 when new requests may go to the endpoint (healthy, not ejected, breaker not open).",
                 [now](const upstream::endpoint_state& s) { return s.available(now) ? 1 : 0; });
    per_endpoint("sentinel_upstream_endpoint_ejected", "gauge",
                 "1 while outlier detection ejects the endpoint.",
                 [now](const upstream::endpoint_state& s) { return s.ejected_until.load() > now ? 1 : 0; });
    per_endpoint("sentinel_upstream_endpoint_ejections_total", "counter",
                 "Times outlier detection ejected the endpoint (decays after sustained success).",
                 [](const upstream::endpoint_state& s) { return s.ejections.load(); });
    family("sentinel_upstream_endpoint_breaker_state", "gauge",
           "Circuit breaker state of the endpoint: 1 for the current state.");
    each_endpoint(groups, [&](const upstream::upstream_group& g, const upstream::endpoint& e, const char*) {
        const auto current = e.state->breaker.load();
        for (auto s : {upstream::breaker_state::closed, upstream::breaker_state::open, upstream::breaker_state::half_open})
            fmt::format_to(std::back_inserter(out), "sentinel_upstream_endpoint_breaker_state{{upstream=\"{}\",endpoint=\"{}\",state=\"{}\"}} {}\n",
                           g.id, e.key, breaker_name(s), s == current ? 1 : 0);
    });
    per_endpoint("sentinel_upstream_endpoint_in_flight_requests", "gauge",
                 "Requests in flight to the endpoint, all workers.",
                 [](const upstream::endpoint_state& s) { return s.in_flight.load(); });
    per_endpoint("sentinel_upstream_endpoint_latency_ewma_seconds", "gauge",
                 "Peak-EWMA of the endpoint's time to response head (0 before the first sample).",
                 [](const upstream::endpoint_state& s) { return static_cast<double>(s.ewma_us.load()) / 1e6; });

    auto per_upstream = [&](std::string_view name, std::string_view help, auto value) {
        family(name, "gauge", help);
        for (const auto& g : groups)
            fmt::format_to(std::back_inserter(out), "{}{{upstream=\"{}\"}} {}\n", name, g.id, value(*g.state));
    };
    per_upstream("sentinel_upstream_in_flight_requests", "Requests in flight to the upstream, all workers.",
                 [](const upstream::upstream_state& s) { return s.in_flight.load(); });
    per_upstream("sentinel_upstream_open_connections", "Open connections to the upstream's endpoints (pooled included).",
                 [](const upstream::upstream_state& s) { return s.connections.load(); });
    per_upstream("sentinel_upstream_pending_connects", "Requests waiting for a new connection to the upstream.",
                 [](const upstream::upstream_state& s) { return s.pending.load(); });
    per_upstream("sentinel_upstream_retries_in_flight", "Retries in flight (what the retry budget limits).",
                 [](const upstream::upstream_state& s) { return s.retries_in_flight.load(); });
}

std::string upstreams_json(const std::vector<upstream::upstream_group>& groups) {
    namespace json = boost::json;
    const auto now = upstream::now_ms();
    json::array list;
    for (const auto& g : groups) {
        json::array endpoints;
        auto add = [&](const upstream::endpoint& e, bool backup) {
            const auto& s = *e.state;
            const auto ejected_until = s.ejected_until.load();
            json::object o;
            o["address"] = e.key;
            o["host"] = e.host;
            o["weight"] = e.weight;
            o["backup"] = backup;
            o["healthy"] = s.healthy.load();
            o["available"] = s.available(now);
            o["ejected"] = ejected_until > now;
            o["ejected_for_ms"] = ejected_until > now ? ejected_until - now : 0;
            o["ejections"] = s.ejections.load();
            o["breaker"] = breaker_name(s.breaker.load());
            o["in_flight"] = s.in_flight.load();
            o["latency_ewma_ms"] = static_cast<double>(s.ewma_us.load()) / 1000.0;
            endpoints.push_back(std::move(o));
        };
        for (const auto& e : g.primary.endpoints) add(e, false);
        for (const auto& e : g.backup.endpoints) add(e, true);
        json::object u;
        u["id"] = g.id;
        u["load_balancing"] = [&] {
            static constexpr const char* names[] = {"round-robin", "weighted-round-robin", "least-connections",
                                                    "random", "power-of-two-choices", "consistent-hash", "peak-ewma"};
            return names[static_cast<int>(g.cfg->balancing)];
        }();
        u["in_flight"] = g.state->in_flight.load();
        u["connections"] = g.state->connections.load();
        u["pending"] = g.state->pending.load();
        u["retries_in_flight"] = g.state->retries_in_flight.load();
        u["endpoints"] = std::move(endpoints);
        if (g.backup_upstream >= 0) u["backup_upstream"] = groups[static_cast<std::size_t>(g.backup_upstream)].id;
        list.push_back(std::move(u));
    }
    json::object root;
    root["upstreams"] = std::move(list);
    return json::serialize(root) + "\n";
}

}  // namespace sentinel::server
