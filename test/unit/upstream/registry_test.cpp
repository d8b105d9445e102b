// The registry keeps endpoint state across rebuilds and turns DNS answers into endpoints.
#include "upstream/registry.hpp"

#include <gtest/gtest.h>

#include <map>

namespace sentinel::upstream {
namespace {

using boost::asio::ip::make_address;
using std::chrono::seconds;

config::upstream_config upstream(std::string id, std::vector<std::string> hosts, std::uint16_t port = 80) {
    config::upstream_config u;
    u.id = std::move(id);
    for (auto& h : hosts) {
        config::endpoint_config e;
        e.address.host = h;
        e.address.port = port;
        e.address.text = h + ":" + std::to_string(port);
        u.endpoints.push_back(e);
    }
    return u;
}

struct fake_dns {
    std::map<std::string, std::vector<std::string>> answers;
    int lookups = 0;
    upstream_registry::resolver_fn fn() {
        return [this](const std::string& host, std::string& error) {
            ++lookups;
            std::vector<boost::asio::ip::address> out;
            auto it = answers.find(host);
            if (it == answers.end()) {
                error = "cannot resolve \"" + host + "\"";
                return out;
            }
            for (const auto& a : it->second) out.push_back(make_address(a));
            std::sort(out.begin(), out.end());
            return out;
        };
    }
};

std::vector<std::string> keys(const endpoint_set& set) {
    std::vector<std::string> k;
    for (const auto& e : set.endpoints) k.push_back(e.key);
    return k;
}

TEST(Registry, EveryRecordIsAnEndpointAndLiteralsNeedNoLookup) {
    fake_dns dns;
    dns.answers["api.internal"] = {"10.0.0.2", "10.0.0.1", "::1"};
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"api.internal", "10.0.0.9"}, 8080));
    std::vector<std::string> errors;
    auto groups = reg.build(cfg, 2, errors);
    ASSERT_TRUE(errors.empty());
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(keys(groups[0].primary),
              (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080", "[::1]:8080", "10.0.0.9:8080"}));
    EXPECT_EQ(dns.lookups, 1);
    EXPECT_EQ(groups[0].primary.balancers.size(), 2u);  // one per worker
    EXPECT_EQ(groups[0].state->endpoint_count.load(), 4u);
}

TEST(Registry, StateSurvivesRebuildsAndRefreshAddsRecords) {
    fake_dns dns;
    dns.answers["api.internal"] = {"10.0.0.1"};
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"api.internal"}));
    cfg.upstreams[0].dns_refresh = seconds(30);
    std::vector<std::string> errors;
    auto first = reg.build(cfg, 1, errors);
    ASSERT_EQ(first[0].primary.endpoints.size(), 1u);
    first[0].primary.endpoints[0].state->healthy = false;  // e.g. marked down by a check

    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(reg.refresh_dns(cfg, t0 + seconds(10)));  // not due yet
    EXPECT_EQ(dns.lookups, 1);
    dns.answers["api.internal"] = {"10.0.0.1", "10.0.0.2"};
    EXPECT_TRUE(reg.refresh_dns(cfg, t0 + seconds(31)));
    EXPECT_EQ(dns.lookups, 2);

    auto second = reg.build(cfg, 1, errors);
    ASSERT_EQ(second[0].primary.endpoints.size(), 2u);
    // The same endpoint keeps its state object (health, breaker, EWMA) across the rebuild.
    EXPECT_EQ(second[0].primary.endpoints[0].state, first[0].primary.endpoints[0].state);
    EXPECT_FALSE(second[0].primary.endpoints[0].state->healthy.load());
    EXPECT_TRUE(second[0].primary.endpoints[1].state->healthy.load());
    EXPECT_EQ(second[0].state, first[0].state);
    EXPECT_TRUE(errors.empty());
}

TEST(Registry, FailedRefreshKeepsThePreviousAnswer) {
    fake_dns dns;
    dns.answers["api.internal"] = {"10.0.0.1"};
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"api.internal"}));
    std::vector<std::string> errors;
    reg.build(cfg, 1, errors);
    dns.answers.clear();  // a DNS outage
    EXPECT_FALSE(reg.refresh_dns(cfg, std::chrono::steady_clock::now() + seconds(60)));
    auto groups = reg.build(cfg, 1, errors);
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(keys(groups[0].primary), std::vector<std::string>{"10.0.0.1:80"});
}

TEST(Registry, UnresolvableNameIsAnError) {
    fake_dns dns;
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"nowhere.invalid"}));
    std::vector<std::string> errors;
    auto groups = reg.build(cfg, 1, errors);
    EXPECT_TRUE(groups.empty());
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("upstream \"api\": cannot resolve \"nowhere.invalid\""), std::string::npos);
}

TEST(Registry, BackupsAndBackupUpstreamAreLinked) {
    fake_dns dns;
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"10.0.0.1", "10.0.0.2"}));
    cfg.upstreams[0].endpoints[1].backup = true;
    cfg.upstreams[0].backup_upstream = "spare";
    cfg.upstreams.push_back(upstream("spare", {"10.0.0.3"}));
    std::vector<std::string> errors;
    auto groups = reg.build(cfg, 1, errors);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(keys(groups[0].primary), std::vector<std::string>{"10.0.0.1:80"});
    EXPECT_EQ(keys(groups[0].backup), std::vector<std::string>{"10.0.0.2:80"});
    EXPECT_EQ(groups[0].backup_upstream, 1);
    EXPECT_EQ(groups[1].backup_upstream, -1);
}

TEST(Registry, InitialStateUnhealthyStartsDown) {
    fake_dns dns;
    upstream_registry reg(dns.fn());
    config::config cfg;
    cfg.upstreams.push_back(upstream("api", {"10.0.0.1"}));
    cfg.upstreams[0].health_check.emplace().start_unhealthy = true;
    std::vector<std::string> errors;
    auto groups = reg.build(cfg, 1, errors);
    EXPECT_FALSE(groups[0].primary.endpoints[0].state->healthy.load());
}

}  // namespace
}  // namespace sentinel::upstream
