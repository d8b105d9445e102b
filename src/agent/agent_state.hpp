// What every worker shares about one agent: requests in flight (the max-concurrent cap), the
// circuit breaker, the health the agent reported and whether it rejected its config. Lives in
// the agent registry (server/) so it survives reloads; workers touch it only through atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/model/config.hpp"

namespace sentinel::agent {

std::int64_t now_ms();

class agent_state {
public:
    explicit agent_state(std::string id) : id_(std::move(id)) {}
    const std::string& id() const { return id_; }

    // max-concurrent: false (nothing taken) when `cap` requests are already in flight.
    bool try_acquire(std::uint32_t cap);
    void release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
    std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

    // Circuit breaker. `allow` answers whether a request may consult the agent; once the
    // open period is over it lets exactly one trial through (`trial` set) until that trial
    // reports. Every consultation that was allowed reports its result once.
    bool breaker_allows(std::int64_t now, bool& trial);
    void report(bool success, bool trial, std::int64_t now, const config::agent_config& cfg);
    // The trial request never reached the agent (shed, client gone, event too large): the
    // next request is the trial instead; the breaker stays as it was.
    void abandon_trial() { trial_.store(false, std::memory_order_relaxed); }
    bool breaker_open(std::int64_t now) const;

    // HEALTH frames: UNHEALTHY makes the agent unavailable until HEALTHY.
    void set_unhealthy(bool on) { unhealthy_.store(on, std::memory_order_relaxed); }
    bool unhealthy() const { return unhealthy_.load(std::memory_order_relaxed); }

    // A HELLO_ACK rejected the pushed config; cleared when a handshake accepts one.
    void set_config_rejected(bool on) { config_rejected_.store(on, std::memory_order_relaxed); }
    bool config_rejected() const { return config_rejected_.load(std::memory_order_relaxed); }

private:
    const std::string id_;
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<std::uint32_t> failures_{0};       // consecutive
    std::atomic<std::int64_t> open_until_{0};      // 0 = closed
    std::atomic<bool> trial_{false};               // a half-open trial is in flight
    std::atomic<bool> unhealthy_{false};
    std::atomic<bool> config_rejected_{false};
};

// Everything that shapes a worker's connections to `agent` (socket, limits, timeouts, the
// config block): connections are kept across a reload only while this is unchanged.
std::string settings_key(const config::agent_config& agent);

// Agent states by id, kept across reloads (a reload keeps the breaker and the counts).
class agent_registry {
public:
    std::shared_ptr<agent_state> get(const std::string& id);

private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<agent_state>> states_;
};

}  // namespace sentinel::agent
