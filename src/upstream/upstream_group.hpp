// An upstream group as the workers see it: resolved endpoints, their shared live state, and
// one balancer per worker. Built on the main thread (DNS resolution happens off the workers)
// and shared read-only by every worker through the snapshot; only `balancers[w]` is written,
// and only by worker w.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/model/config.hpp"
#include "tls/tls_context.hpp"
#include "upstream/balancer.hpp"
#include "upstream/endpoint_state.hpp"

namespace sentinel::upstream {

struct endpoint {
    boost::asio::ip::tcp::endpoint address;
    std::string key;   // "ip:port": identifies the per-worker connection pool and the state
    std::string host;  // the name or IP as written in the config (Host for health checks)
    std::uint32_t weight = 1;
    std::shared_ptr<endpoint_state> state;
};

struct endpoint_set {
    std::vector<endpoint> endpoints;
    std::unique_ptr<balancer_factory> factory;
    std::vector<std::unique_ptr<balancer>> balancers;  // one per worker
};

struct upstream_group {
    std::string id;
    const config::upstream_config* cfg = nullptr;  // owned by the snapshot's config
    endpoint_set primary;
    endpoint_set backup;  // endpoints marked backup=#true
    std::shared_ptr<upstream_state> state;
    int backup_upstream = -1;  // index in the snapshot's groups, or -1
    // `tls` configured: the context every connection to these endpoints is made with (null =
    // plain TCP). Carried over from the previous snapshot while the settings and their files
    // are unchanged, so a reload keeps pooled connections and cached sessions; a new context
    // is a new pool identity (see connection_pool::take).
    std::shared_ptr<const tls::client_context> tls;
};

}  // namespace sentinel::upstream
