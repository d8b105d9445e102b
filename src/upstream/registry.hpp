// The long-lived owner of upstream state across snapshots.
//
// Every reload and every DNS change builds new upstream_groups, but an endpoint's health,
// breaker, ejection and latency figures must carry over: the registry hands out the same
// endpoint_state for the same (upstream id, "ip:port") and the same upstream_state for the
// same upstream id. It also caches DNS answers so a reload does not block on resolution of
// names it already knows, and re-resolves them on each upstream's `dns-refresh` schedule.
//
// Used from the main thread (build) and the DNS refresher thread (refresh_dns); a mutex
// guards it. Never touched by workers.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/model/config.hpp"
#include "upstream/upstream_group.hpp"

namespace sentinel::upstream {

class upstream_registry {
public:
    // Resolves a host name; empty result = failure, with `error` set. Replaceable for tests.
    using resolver_fn = std::function<std::vector<boost::asio::ip::address>(const std::string& host,
                                                                             std::string& error)>;
    upstream_registry();
    explicit upstream_registry(resolver_fn resolver) : resolve_(std::move(resolver)) {}

    // The groups of `cfg`, in config order, with one balancer per worker. Names not yet in
    // the DNS cache are resolved now (blocking). A name that does not resolve is an error.
    // Indices of `backup_upstream` are resolved within the returned vector.
    std::vector<upstream_group> build(const config::config& cfg, std::uint32_t workers,
                                      std::vector<std::string>& errors);

    // Re-resolves the names of `cfg` whose refresh period elapsed. Returns true when any
    // answer changed (the caller then rebuilds the snapshot). A failed lookup keeps the
    // previous answer (and is logged): a DNS outage must not empty an upstream.
    bool refresh_dns(const config::config& cfg,
                     std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

private:
    struct dns_entry {
        std::vector<boost::asio::ip::address> addresses;
        std::chrono::steady_clock::time_point resolved_at;
    };

    resolver_fn resolve_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<upstream_state>> upstreams_;
    std::unordered_map<std::string, std::shared_ptr<endpoint_state>> endpoints_;  // "id|ip:port"
    std::unordered_map<std::string, dns_entry> dns_;  // by host name (IP literals are not cached)
};

}  // namespace sentinel::upstream
