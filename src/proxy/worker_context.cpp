#include "proxy/worker_context.hpp"

#include <algorithm>
#include <random>

namespace sentinel::proxy {

namespace {
constexpr std::size_t log_flush_bytes = 32 * 1024;
constexpr auto housekeeping_period = std::chrono::milliseconds(100);

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

id_generator::id_generator() {
    std::random_device rd;
    for (auto& s : s_) s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ 0x9E3779B97F4A7C15ull;
}

void id_generator::next(char out[32]) {
    static constexpr char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; ++half) {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        for (int i = 0; i < 16; ++i) out[half * 16 + i] = hex[(result >> (i * 4)) & 0xf];
    }
}

worker_context::worker_context(boost::asio::io_context& ctx, std::uint32_t index,
                               shared_state& shared_state)
    : pool(ctx), shared(shared_state), ctx_(ctx), index_(index), housekeeping_(ctx),
      deadline_timer_(ctx) {
    schedule_housekeeping();
}

worker_context::~worker_context() { flush_log(); }

void worker_context::publish(std::shared_ptr<const snapshot> snap) {
    // Lines formatted under the old snapshot go to the old writer before switching.
    flush_log();
    snapshot_ = std::move(snap);
    log_target_ = snapshot_->access_log;
}

bool worker_context::admit() {
    const auto& sys = snapshot_->cfg->system;
    std::uint64_t per_worker = sys.max_connections_per_worker;
    if (per_worker == 0)
        per_worker = (sys.max_connections + shared.workers - 1) / shared.workers;
    if (connection_count_ >= per_worker) return false;
    if (shared.connections.fetch_add(1, std::memory_order_relaxed) >= sys.max_connections) {
        shared.connections.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void worker_context::release() { shared.connections.fetch_sub(1, std::memory_order_relaxed); }

void worker_context::add(registered_connection* conn) {
    conn->prev_ = nullptr;
    conn->next_ = connections_;
    if (connections_) connections_->prev_ = conn;
    connections_ = conn;
    ++connection_count_;
    metrics.connections_active.add(1);
}

void worker_context::remove(registered_connection* conn) {
    if (conn->prev_) conn->prev_->next_ = conn->next_;
    else connections_ = conn->next_;
    if (conn->next_) conn->next_->prev_ = conn->prev_;
    conn->prev_ = conn->next_ = nullptr;
    --connection_count_;
    metrics.connections_active.add(-1);
}

void worker_context::drain() {
    draining_ = true;
    // drain() may close and unregister the connection: read next_ first.
    for (registered_connection* c = connections_; c != nullptr;) {
        registered_connection* next = c->next_;
        c->drain();
        c = next;
    }
}

void worker_context::shutdown() {
    draining_ = true;
    for (registered_connection* c = connections_; c != nullptr;) {
        registered_connection* next = c->next_;
        c->abort();
        c = next;
    }
    shut_down_ = true;
    pool.clear();
    housekeeping_.cancel();
    deadline_timer_.cancel();
    flush_log();
}

void worker_context::schedule_deadline(runtime::deadline_wheel::entry& e,
                                       std::chrono::steady_clock::time_point at) {
    deadlines_.schedule(e, at);
    if (!deadline_timer_armed_ && !shut_down_) {
        deadline_timer_armed_ = true;
        tick_deadlines();
    }
}

void worker_context::tick_deadlines() {
    // Ticks at the wheel's resolution while any deadline is pending, then sleeps.
    deadline_timer_.expires_after(deadlines_.resolution());
    deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || shut_down_) {
            deadline_timer_armed_ = false;
            return;
        }
        deadlines_.advance(std::chrono::steady_clock::now());
        if (deadlines_.size() == 0) {
            deadline_timer_armed_ = false;
            return;
        }
        tick_deadlines();
    });
}


void worker_context::log_line_done() {
    if (log_batch_.size() >= log_flush_bytes) flush_log();
}

void worker_context::flush_log() {
    if (log_batch_.empty()) return;
    if (!log_target_ || !log_target_->submit(std::move(log_batch_))) {
        metrics.access_log_dropped_lines.inc(
            static_cast<std::uint64_t>(std::count(log_batch_.begin(), log_batch_.end(), '\n')));
    }
    log_batch_.clear();
    log_batch_.reserve(log_flush_bytes * 2);
}

void worker_context::schedule_housekeeping() {
    housekeeping_.expires_after(housekeeping_period);
    housekeeping_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || shut_down_) return;
        flush_log();
        pool.sweep(std::chrono::steady_clock::now());
        schedule_housekeeping();
    });
}

}  // namespace sentinel::proxy
