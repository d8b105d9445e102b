#include "proxy/worker_context.hpp"
#include "observability/event_log.hpp"

#include <algorithm>
#include <functional>
#include <random>

namespace sentinel::proxy {

namespace {
constexpr std::size_t log_flush_bytes = 32 * 1024;
constexpr auto housekeeping_period = std::chrono::milliseconds(100);

}  // namespace

// Seeded from the OS so ids differ between processes and restarts.
id_generator::id_generator() : rng_((static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {}

void id_generator::next(char out[32]) {
    static constexpr char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; ++half) {
        const std::uint64_t result = next64();
        for (int i = 0; i < 16; ++i) out[half * 16 + i] = hex[(result >> (i * 4)) & 0xf];
    }
}

worker_context::worker_context(boost::asio::io_context& ctx, std::uint32_t index,
                               shared_state& shared_state)
    : pool(ctx), shared(shared_state), ctx_(ctx), index_(index), housekeeping_(ctx),
      deadline_timer_(ctx) {
    std::random_device rd;
    sample_state_ ^= (static_cast<std::uint64_t>(rd()) << 32) | rd();
    if (sample_state_ == 0) sample_state_ = 1;
    schedule_housekeeping();
}

bool worker_context::sample(std::uint32_t percent) {
    if (percent >= 100) return true;
    sample_state_ ^= sample_state_ << 13;
    sample_state_ ^= sample_state_ >> 7;
    sample_state_ ^= sample_state_ << 17;
    return (sample_state_ >> 11) % 100 < percent;
}

worker_context::~worker_context() { flush_log(); }

void worker_context::publish(std::shared_ptr<const snapshot> snap) {
    // Lines formatted under the old snapshot go to the old writer before switching.
    flush_log();
    flush_spans();
    snapshot_ = std::move(snap);
    log_target_ = snapshot_->access_log;
    span_target_ = snapshot_->tracer;
    audit_target_ = snapshot_->audit_log;
    build_metric_slots();
    update_agent_channels();
}

void worker_context::update_agent_channels() {
    const auto& agents = snapshot_->cfg->agents;
    std::unordered_map<std::string, std::shared_ptr<agent::channel>> next;
    agent_table_.clear();
    for (std::size_t i = 0; i < agents.size(); ++i) {
        const std::string key = snapshot_->channel_key(i);
        auto it = agent_channels_.find(key);
        std::shared_ptr<agent::channel> ch;
        if (it != agent_channels_.end()) {
            ch = it->second;
        } else {
            ch = std::make_shared<agent::channel>(ctx_, agents[i], snapshot_->agent_targets[i], snapshot_->agent_states[i],
                                                  metrics.labelled.agent(agents[i].id), index_);
            ch->start();
        }
        agent_table_.push_back(ch);
        next.emplace(key, std::move(ch));
    }
    for (auto& [key, ch] : agent_channels_)
        if (!next.count(key)) ch->retire();
    agent_channels_ = std::move(next);
}

std::shared_ptr<agent::channel> worker_context::agent_channel(const snapshot& snap, std::uint32_t index) {
    if (&snap == snapshot_.get()) return agent_table_[index];
    if (auto it = agent_channels_.find(snap.channel_key(index)); it != agent_channels_.end()) return it->second;
    const std::string& id = snap.cfg->agents[index].id;
    for (const auto& ch : agent_table_)
        if (ch->cfg().id == id) return ch;
    return nullptr;
}

void worker_context::build_metric_slots() {
    // Creating the slots now also makes every configured id show up at zero.
    auto& labelled = metrics.labelled;
    const auto& cfg = *snapshot_->cfg;
    slots_.snap = snapshot_.get();
    slots_.listeners.clear();
    for (const auto& l : cfg.listeners) slots_.listeners.push_back(&labelled.listener(l.id));
    slots_.routes.assign(1, &labelled.route(""));
    for (const auto& r : cfg.routes) slots_.routes.push_back(&labelled.route(r.id));
    slots_.upstreams.clear();
    for (const auto& g : snapshot_->upstreams) slots_.upstreams.push_back(&labelled.upstream(g.id));
    slots_.requests.clear();
}

namespace {
// Index of `item` in `items` when it points into it, else -1.
template <class T>
std::ptrdiff_t index_in(const std::vector<T>& items, const T* item) {
    const std::less<const T*> before;
    if (item == nullptr || items.empty() || before(item, items.data()) || !before(item, items.data() + items.size()))
        return -1;
    return item - items.data();
}
}  // namespace

observability::listener_slot& worker_context::listener_metrics(const snapshot& snap,
                                                               const config::listener_config* listener) {
    if (&snap == slots_.snap) {
        const auto i = index_in(snap.cfg->listeners, listener);
        if (i >= 0) return *slots_.listeners[static_cast<std::size_t>(i)];
    }
    return metrics.labelled.listener(listener ? std::string_view(listener->id) : std::string_view());
}

observability::route_slot& worker_context::route_metrics(const snapshot& snap, const config::route_config* route) {
    if (&snap == slots_.snap) {
        if (route == nullptr) return *slots_.routes[0];
        const auto i = index_in(snap.cfg->routes, route);
        if (i >= 0) return *slots_.routes[static_cast<std::size_t>(i) + 1];
    }
    return metrics.labelled.route(route ? std::string_view(route->id) : std::string_view());
}

observability::upstream_slot& worker_context::upstream_metrics(const snapshot& snap,
                                                               const upstream::upstream_group& group) {
    if (&snap == slots_.snap) {
        const auto i = index_in(snap.upstreams, &group);
        if (i >= 0) return *slots_.upstreams[static_cast<std::size_t>(i)];
    }
    return metrics.labelled.upstream(group.id);
}

observability::counter& worker_context::request_counter(const snapshot& snap, const config::listener_config* listener,
                                                        const config::route_config* route, std::string_view method,
                                                        int status) {
    const auto m = observability::method_of(method);
    const auto c = observability::status_class_of(status);
    const std::string_view listener_id = listener ? std::string_view(listener->id) : std::string_view();
    const std::string_view route_id = route ? std::string_view(route->id) : std::string_view();
    if (&snap != slots_.snap) return metrics.labelled.requests(listener_id, route_id, m, c);
    const auto li = index_in(snap.cfg->listeners, listener) + 1;
    const auto ri = index_in(snap.cfg->routes, route) + 1;
    const std::uint64_t key = (static_cast<std::uint64_t>(li) << 40) | (static_cast<std::uint64_t>(ri) << 8) |
                              (static_cast<std::uint64_t>(m) << 4) | c;
    auto [it, inserted] = slots_.requests.try_emplace(key, nullptr);
    if (inserted) it->second = &metrics.labelled.requests(listener_id, route_id, m, c);
    return *it->second;
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
    if (conn->listener_gauge_) conn->listener_gauge_->add(-1);
    conn->listener_gauge_ = nullptr;
}

void worker_context::count_on_listener(registered_connection* conn, observability::gauge& active) {
    if (conn->listener_gauge_) return;  // counted once, on the listener it was accepted on
    conn->listener_gauge_ = &active;
    active.add(1);
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
    for (auto& [key, ch] : agent_channels_) ch->shutdown();
    agent_channels_.clear();
    agent_table_.clear();
    pool.clear();
    h2_upstreams.clear();
    housekeeping_.cancel();
    deadline_timer_.cancel();
    flush_log();
    flush_spans();
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
    if (!audit_batch_.empty()) {
        if (!audit_target_ || !audit_target_->submit(std::move(audit_batch_)))
            metrics.audit_log_dropped_lines.inc(
                static_cast<std::uint64_t>(std::count(audit_batch_.begin(), audit_batch_.end(), '\n')));
        audit_batch_.clear();
    }
    if (log_batch_.empty()) return;
    if (!log_target_ || !log_target_->submit(std::move(log_batch_))) {
        metrics.access_log_dropped_lines.inc(
            static_cast<std::uint64_t>(std::count(log_batch_.begin(), log_batch_.end(), '\n')));
    }
    log_batch_.clear();
    log_batch_.reserve(log_flush_bytes * 2);
}

void worker_context::add_span(const observability::tracing::span_data& span) {
    if (!span_target_) return;
    observability::tracing::append_span(span_batch_, span);
    if (++span_count_ >= span_target_->settings().batch_size) flush_spans();
}

void worker_context::flush_spans() {
    spans_flushed_ = std::chrono::steady_clock::now();
    if (span_count_ == 0) return;
    // A refused batch is counted by the exporter (queue_full).
    if (span_target_) span_target_->submit(std::move(span_batch_), span_count_);
    span_batch_.clear();
    span_count_ = 0;
}

void worker_context::schedule_housekeeping() {
    housekeeping_.expires_after(housekeeping_period);
    housekeeping_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || shut_down_) return;
        flush_log();
        if (span_count_ != 0 && span_target_ &&
            std::chrono::steady_clock::now() - spans_flushed_ >= span_target_->settings().flush_interval)
            flush_spans();
        observability::event_log::flush_suppressed();
        pool.sweep(std::chrono::steady_clock::now());
        h2_upstreams.sweep(std::chrono::steady_clock::now());
        metrics.upstream_pool_idle.add(static_cast<std::int64_t>(pool.idle_count()) - metrics.upstream_pool_idle.value());
        schedule_housekeeping();
    });
}

}  // namespace sentinel::proxy
