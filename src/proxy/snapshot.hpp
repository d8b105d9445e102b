// Everything a worker needs to serve requests under one configuration, built off the workers
// (server/) and published to each of them. Immutable once built: a request keeps the
// snapshot it started with, so a reload never changes the rules under a request in flight.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/agent_state.hpp"
#include "config/model/config.hpp"
#include "http/http1/message.hpp"
#include "proxy/websocket_registry.hpp"
#include "observability/access_log.hpp"
#include "observability/tracing.hpp"
#include "router/route_table.hpp"
#include "tls/tls_context.hpp"
#include "upstream/registry.hpp"
#include "upstream/upstream_group.hpp"

namespace sentinel::proxy {

struct snapshot {
    std::shared_ptr<const config::config> cfg;
    router::route_table routes;
    std::vector<upstream::upstream_group> upstreams;
    std::vector<int> route_upstream;  // per cfg->routes index: index into upstreams, or -1
    http1::limits limits;
    std::uint64_t max_body = 0;
    std::shared_ptr<observability::access_log> access_log;  // null: no access log
    std::shared_ptr<observability::tracing::exporter> tracer;  // null: no tracing
    std::shared_ptr<observability::access_log> audit_log;   // same writer class; null: none
    // Listener settings by listen key (see listen_key()); sockets are matched to it on accept.
    std::unordered_map<std::string, const config::listener_config*> listeners;
    // TLS contexts of the https listeners, by listen key.
    std::unordered_map<std::string, std::shared_ptr<const tls::server_context>> tls_contexts;
    // Agents, by cfg->agents index: the state shared across workers and reloads, the identity
    // of the settings, and where to connect (a worker keeps its connections while the key and
    // the target are unchanged: see channel_key()).
    std::vector<std::shared_ptr<agent::agent_state>> agent_states;
    std::vector<std::string> agent_keys;
    std::vector<std::string> agent_targets;  // the Unix socket path, or "tcp://ip:port" resolved now
    std::vector<std::vector<std::uint32_t>> route_agents;  // per cfg->routes index: cfg->agents indexes
    // Per cfg->routes index: the open-WebSocket counter of routes with `websocket #true`
    // (shared across workers and reloads), null for the others.
    std::vector<std::shared_ptr<websocket_counter>> route_websockets;

    explicit snapshot(std::shared_ptr<const config::config> c)
        : cfg(std::move(c)), routes(cfg->routes) {}

    // Certificate files (or OCSP responses) changed on disk since this snapshot was built.
    bool tls_files_changed() const;

    std::string channel_key(std::size_t agent) const { return agent_keys[agent] + '\n' + agent_targets[agent]; }

    const std::vector<std::uint32_t>& agents_for(const config::route_config& route) const {
        return route_agents[static_cast<std::size_t>(&route - cfg->routes.data())];
    }

    websocket_counter* websockets_for(const config::route_config& route) const {
        return route_websockets[static_cast<std::size_t>(&route - cfg->routes.data())].get();
    }

    const upstream::upstream_group* upstream_for(const config::route_config& route) const {
        const auto index = static_cast<std::size_t>(&route - cfg->routes.data());
        const int u = route_upstream[index];
        return u < 0 ? nullptr : &upstreams[static_cast<std::size_t>(u)];
    }
};

// The identity of a listening socket across reloads: same key = keep the socket.
std::string listen_key(const config::listener_config& listener);

// Builds a snapshot: upstream groups from `registry` (resolved endpoints, their shared state,
// one balancer per worker), agent states and WebSocket counters from theirs, and the access log (reusing `previous`'s writer when the path is
// unchanged). On failure returns null and appends errors.
std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const config::config> cfg,
                                               const snapshot* previous,
                                               upstream::upstream_registry& registry,
                                               agent::agent_registry& agents,
                                               websocket_registry& websockets,
                                               std::uint32_t workers,
                                               std::vector<std::string>& errors);

}  // namespace sentinel::proxy
