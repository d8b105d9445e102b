#include "agent/agent_state.hpp"

#include <chrono>

namespace sentinel::agent {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool agent_state::try_acquire(std::uint32_t cap) {
    // Count first, then check the previous value: exact when workers race for the last slot.
    if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= static_cast<std::int64_t>(cap)) {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

bool agent_state::breaker_allows(std::int64_t now, bool& trial) {
    trial = false;
    const std::int64_t until = open_until_.load(std::memory_order_relaxed);
    if (until == 0) return true;
    if (now < until) return false;
    bool expected = false;
    if (!trial_.compare_exchange_strong(expected, true, std::memory_order_relaxed)) return false;
    trial = true;
    return true;
}

bool agent_state::breaker_open(std::int64_t now) const {
    const std::int64_t until = open_until_.load(std::memory_order_relaxed);
    return until != 0 && (now < until || trial_.load(std::memory_order_relaxed));
}

void agent_state::report(bool success, bool trial, std::int64_t now, const config::agent_config& cfg) {
    if (success) {
        failures_.store(0, std::memory_order_relaxed);
        if (trial || open_until_.load(std::memory_order_relaxed) != 0) {
            open_until_.store(0, std::memory_order_relaxed);
            trial_.store(false, std::memory_order_relaxed);
        }
        return;
    }
    if (trial) {
        open_until_.store(now + cfg.breaker_open_for.count(), std::memory_order_relaxed);
        trial_.store(false, std::memory_order_relaxed);
        return;
    }
    if (failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= cfg.breaker_failures &&
        open_until_.load(std::memory_order_relaxed) == 0) {
        open_until_.store(now + cfg.breaker_open_for.count(), std::memory_order_relaxed);
        failures_.store(0, std::memory_order_relaxed);
    }
}

std::string settings_key(const config::agent_config& a) {
    std::string key = a.id + '\n' + a.socket;
    for (const std::int64_t v :
         {std::int64_t(a.failure_mode), std::int64_t(a.timeout.count()), std::int64_t(a.connect_timeout.count()),
          std::int64_t(a.max_concurrent), std::int64_t(a.connections), std::int64_t(a.max_body),
          std::int64_t(a.over_limit), std::int64_t(a.ping_interval.count()), std::int64_t(a.breaker_failures),
          std::int64_t(a.breaker_open_for.count()), std::int64_t(a.reconnect_backoff.count()),
          std::int64_t(a.reconnect_backoff_max.count())})
        key += ' ' + std::to_string(v);
    if (a.block) {
        kdl::document doc;
        doc.nodes.push_back(*a.block);
        key += '\n' + kdl::print(doc);
    }
    return key;
}

std::shared_ptr<agent_state> agent_registry::get(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto& s = states_[id];
    if (!s) s = std::make_shared<agent_state>(id);
    return s;
}

}  // namespace sentinel::agent
