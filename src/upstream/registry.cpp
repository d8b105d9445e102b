#include "upstream/registry.hpp"

#include <spdlog/spdlog.h>

#include <set>
#include <unordered_set>

#include "upstream/dns.hpp"

namespace sentinel::upstream {

namespace {

std::string address_key(const boost::asio::ip::address& a, std::uint16_t port) {
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(port);
}

bool is_literal(const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    return !ec;
}

void make_balancers(endpoint_set& set, config::load_balancing kind, std::uint32_t workers) {
    if (set.endpoints.empty()) return;
    set.factory = balancer_factory::create(kind, set.endpoints);
    for (std::uint32_t w = 0; w < workers; ++w)
        set.balancers.push_back(set.factory->make(0x9e3779b97f4a7c15ull * (w + 1)));
}

}  // namespace

upstream_registry::upstream_registry() : resolve_(&resolve_host) {}

std::vector<upstream_group> upstream_registry::build(const config::config& cfg, std::uint32_t workers,
                                                     std::vector<std::string>& errors) {
    std::lock_guard lock(mutex_);
    std::vector<upstream_group> groups;
    groups.reserve(cfg.upstreams.size());
    std::unordered_set<std::string> live_upstreams, live_endpoints;

    for (const auto& u : cfg.upstreams) {
        upstream_group group;
        group.id = u.id;
        group.cfg = &u;
        auto& state = upstreams_[u.id];
        if (!state) state = std::make_shared<upstream_state>(u.id);
        group.state = state;
        live_upstreams.insert(u.id);

        const bool start_healthy = !(u.health_check && u.health_check->start_unhealthy);
        bool failed = false;
        for (const auto& ep : u.endpoints) {
            std::vector<boost::asio::ip::address> addresses;
            if (is_literal(ep.address.host)) {
                addresses = {boost::asio::ip::make_address(ep.address.host)};
            } else {
                auto it = dns_.find(ep.address.host);
                if (it == dns_.end()) {
                    std::string error;
                    auto resolved = resolve_(ep.address.host, error);
                    if (resolved.empty()) {
                        errors.push_back("upstream \"" + u.id + "\": " + error);
                        failed = true;
                        continue;
                    }
                    it = dns_.emplace(ep.address.host,
                                      dns_entry{std::move(resolved), std::chrono::steady_clock::now()}).first;
                }
                addresses = it->second.addresses;
            }
            for (const auto& a : addresses) {
                endpoint e;
                e.address = boost::asio::ip::tcp::endpoint(a, ep.address.port);
                e.key = address_key(a, ep.address.port);
                e.host = ep.address.host;
                e.weight = ep.weight;
                const std::string state_key = u.id + "|" + e.key;
                auto& es = endpoints_[state_key];
                if (!es) es = std::make_shared<endpoint_state>(e.key, state, start_healthy);
                e.state = es;
                live_endpoints.insert(state_key);
                auto& set = ep.backup ? group.backup : group.primary;
                // The same address listed twice (or two names resolving to it) is one endpoint.
                bool duplicate = false;
                for (const auto& existing : set.endpoints) duplicate = duplicate || existing.key == e.key;
                if (!duplicate) set.endpoints.push_back(std::move(e));
            }
        }
        if (failed) continue;
        state->endpoint_count.store(static_cast<std::uint32_t>(group.primary.endpoints.size() +
                                                                group.backup.endpoints.size()),
                                    std::memory_order_relaxed);
        make_balancers(group.primary, u.balancing, workers);
        make_balancers(group.backup, u.balancing, workers);
        groups.push_back(std::move(group));
    }
    for (auto& g : groups) {
        if (!g.cfg->backup_upstream) continue;
        for (std::size_t i = 0; i < groups.size(); ++i)
            if (groups[i].id == *g.cfg->backup_upstream) g.backup_upstream = static_cast<int>(i);
    }

    // Forget state nobody configures any more (old snapshots keep theirs alive while in use).
    std::erase_if(upstreams_, [&](const auto& kv) { return !live_upstreams.count(kv.first); });
    std::erase_if(endpoints_, [&](const auto& kv) { return !live_endpoints.count(kv.first); });
    return groups;
}

bool upstream_registry::refresh_dns(const config::config& cfg, std::chrono::steady_clock::time_point now) {
    // Collect what is due under the lock, resolve without it (getaddrinfo may block for
    // seconds), then store the answers.
    std::set<std::string> due;
    {
        std::lock_guard lock(mutex_);
        for (const auto& u : cfg.upstreams) {
            for (const auto& ep : u.endpoints) {
                auto it = dns_.find(ep.address.host);
                if (it == dns_.end()) continue;  // a literal, or not loaded yet
                if (now - it->second.resolved_at >= u.dns_refresh) due.insert(ep.address.host);
            }
        }
    }
    bool changed = false;
    for (const auto& host : due) {
        std::string error;
        auto addresses = resolve_(host, error);
        std::lock_guard lock(mutex_);
        auto it = dns_.find(host);
        if (it == dns_.end()) continue;
        it->second.resolved_at = now;
        if (addresses.empty()) {
            spdlog::warn("dns: {}; keeping the previous {} address(es)", error, it->second.addresses.size());
            continue;
        }
        if (addresses != it->second.addresses) {
            spdlog::info("dns: \"{}\" now resolves to {} address(es) (was {})", host, addresses.size(),
                         it->second.addresses.size());
            it->second.addresses = std::move(addresses);
            changed = true;
        }
    }
    return changed;
}

}  // namespace sentinel::upstream
