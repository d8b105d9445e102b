// Open WebSocket connections per route, shared by every worker. The counters live in a
// registry owned by server/ (like the upstream and agent registries) and are found by route
// id, so they outlive snapshots: tunnels opened before a reload still count against the cap
// after it, and a cap lowered by a reload applies to them at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sentinel::proxy {

class websocket_counter {
public:
    // A route's max-connections: false (nothing taken) when `cap` are already open. Counting
    // first and checking the previous value keeps the cap exact when workers race for the
    // last slot.
    bool try_acquire(std::uint32_t cap) {
        if (open_.fetch_add(1, std::memory_order_relaxed) < static_cast<std::int64_t>(cap)) return true;
        open_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    void release() { open_.fetch_sub(1, std::memory_order_relaxed); }
    std::int64_t open() const { return open_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> open_{0};
};

// Counters by route id. Taken only while a snapshot is built (main thread); never shrinks,
// bounded by the route ids ever configured.
class websocket_registry {
public:
    std::shared_ptr<websocket_counter> get(const std::string& route_id) {
        std::lock_guard lock(mutex_);
        auto& c = counters_[route_id];
        if (!c) c = std::make_shared<websocket_counter>();
        return c;
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<websocket_counter>> counters_;
};

}  // namespace sentinel::proxy
