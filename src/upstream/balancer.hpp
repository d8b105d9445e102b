// Load balancing: choosing an endpoint of an upstream group for one try of one request.
//
// A balancer_factory is built once per group per snapshot (weights, the Maglev table: data
// every worker shares read-only); each worker gets its own balancer from it (counters, RNG,
// smooth-WRR current weights), so picking takes no lock and shares no written cache line.
// Balancers read the shared endpoint_state (health, breaker, in-flight, EWMA) to skip
// unavailable endpoints and to weigh load.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "config/model/config.hpp"
#include "http/http1/message.hpp"

namespace sentinel::upstream {

struct endpoint;

struct pick_context {
    std::int64_t now = 0;        // now_ms(), for endpoint_state::available()
    std::optional<std::uint64_t> hash;  // consistent-hash key of the request, when it has one
    std::uint64_t tried = 0;     // bit i: endpoint i was already tried by this request (i < 64)
};

class balancer {
public:
    virtual ~balancer() = default;
    // Index of the chosen endpoint, or -1 when every endpoint is unavailable or tried.
    virtual int pick(const pick_context& ctx) = 0;
};

class balancer_factory {
public:
    virtual ~balancer_factory() = default;
    // `endpoints` must outlive the factory and every balancer made from it.
    static std::unique_ptr<balancer_factory> create(config::load_balancing kind,
                                                    std::span<const endpoint> endpoints);
    // A balancer for one worker; `seed` differs per worker.
    virtual std::unique_ptr<balancer> make(std::uint64_t seed) const = 0;
};

// The consistent-hash key of a request (none when its source is absent from the request).
std::optional<std::uint64_t> request_hash(const config::hash_key_config& key,
                                          const http1::request_head& request,
                                          std::string_view client_ip, std::string_view path);

// 64-bit hash used for keys and sticky-cookie tokens (stable across processes and runs).
std::uint64_t hash_bytes(std::string_view data);

}  // namespace sentinel::upstream
