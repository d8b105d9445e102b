#include "server/server.hpp"

#include <condition_variable>
#include <mutex>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "common/version.hpp"
#include "config/loader.hpp"
#include "observability/event_log.hpp"
#include "proxy/acceptor.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/worker_context.hpp"
#include "runtime/listen_socket.hpp"
#include "server/admin_server.hpp"
#include "server/upstream_status.hpp"
#include "upstream/health_checker.hpp"
#include "upstream/registry.hpp"
#include "agent/agent_state.hpp"
#include "agent/config_push.hpp"

namespace sentinel::server {

namespace asio = boost::asio;
using std::chrono::steady_clock;

namespace {

constexpr int listen_backlog = 4096;

// A worker's io_context is only ever touched by its own thread, so it runs with all of Asio's
// locking disabled (callgrind: the scheduler and reactor mutexes were ~7% of a proxied
// request's instructions). The main thread reaches a worker only through this mailbox: a
// locked queue plus an eventfd the worker watches.
struct worker {
    worker(std::uint32_t index, proxy::shared_state& shared)
        : ctx(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE), guard(asio::make_work_guard(ctx)),
          state(ctx, index, shared), wake(ctx, ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        receive();
    }

    // Called from the main thread.
    void send(std::function<void()> task) {
        {
            std::lock_guard lock(mailbox_mutex);
            mailbox.push_back(std::move(task));
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(wake.native_handle(), &one, sizeof one);
    }

    void receive() {
        wake.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
            if (ec) return;
            std::uint64_t count = 0;
            [[maybe_unused]] const auto n = ::read(wake.native_handle(), &count, sizeof count);
            std::vector<std::function<void()>> tasks;
            {
                std::lock_guard lock(mailbox_mutex);
                tasks.swap(mailbox);
            }
            for (auto& task : tasks) task();
            if (!closing) receive();
        });
    }

    asio::io_context ctx;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    proxy::worker_context state;
    asio::posix::stream_descriptor wake;
    std::mutex mailbox_mutex;
    std::vector<std::function<void()>> mailbox;
    bool closing = false;  // worker thread only
    std::unordered_map<std::string, std::unique_ptr<proxy::acceptor>> acceptors;  // by listen key
    std::thread thread;
};

std::uint32_t worker_count(const config::config& cfg) {
    if (cfg.system.workers != 0) return cfg.system.workers;
    const unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : cores;
}

// Modification times of every config file, to detect edits when watch-config is on.
std::vector<std::int64_t> file_stamps(const std::vector<std::string>& files) {
    std::vector<std::int64_t> stamps;
    for (const auto& f : files) {
        struct stat st {};
        stamps.push_back(::stat(f.c_str(), &st) == 0
                             ? static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec
                             : -1);
    }
    return stamps;
}

}  // namespace

struct server::impl {
    impl(run_options opts, std::shared_ptr<const config::config> initial)
        : options(std::move(opts)), pending(std::move(initial)), signals(main, SIGINT, SIGTERM, SIGHUP),
          rotate(main, SIGUSR1), watch_timer(main), drain_timer(main), tls_watch_timer(main) {}

    run_options options;
    std::shared_ptr<const config::config> pending;  // the initial config, until run()
    asio::io_context main{1};
    asio::signal_set signals;
    asio::signal_set rotate;
    asio::steady_timer watch_timer;
    asio::steady_timer drain_timer;
    asio::steady_timer tls_watch_timer;
    std::vector<std::unique_ptr<worker>> workers;
    std::vector<const observability::worker_metrics*> all_metrics;
    proxy::shared_state shared;
    observability::process_metrics process;
    std::shared_ptr<const proxy::snapshot> snapshot;
    std::unordered_map<std::string, std::uint16_t> listeners;  // listen key → bound port
    std::unique_ptr<admin_server> admin;
    std::vector<std::int64_t> stamps;
    bool shutting_down = false;
    bool ready = false;
    bool draining = false;  // POST /drain: not ready, connections not kept alive

    // Upstream state that outlives snapshots, the active health checks, and the thread that
    // re-resolves endpoint names (getaddrinfo blocks; never on the main or worker threads).
    upstream::upstream_registry registry;
    agent::agent_registry agents;
    proxy::websocket_registry websockets;  // open WebSocket connections per route id
    upstream::health_checker health;
    std::thread dns_thread;
    std::mutex dns_mutex;
    std::condition_variable dns_wake;
    std::shared_ptr<const config::config> dns_config;  // guarded by dns_mutex
    bool dns_stop = false;                              // guarded by dns_mutex

    void start_dns_refresher();
    void stop_dns_refresher();
    void update_health_targets();

    bool apply(std::shared_ptr<const config::config> cfg, std::vector<std::string>& errors);
    // Each agent whose settings are new or changed checks its config block (validate-only
    // handshake). A rejection fails the load; an agent that cannot be reached only warns.
    bool check_agent_configs(const config::config& cfg, std::vector<std::string>& errors);
    void start_workers(std::uint32_t count);
    void stop_workers();
    void on_signal();
    void on_rotate();
    void begin_shutdown();
    void begin_drain();
    void wait_for_drain(steady_clock::time_point deadline);
    void schedule_watch();
    void schedule_tls_watch();
    reload_result reload(std::string_view trigger);
};

void server::impl::start_workers(std::uint32_t count) {
    shared.workers = count;
    for (std::uint32_t i = 0; i < count; ++i) {
        workers.push_back(std::make_unique<worker>(i, shared));
        all_metrics.push_back(&workers.back()->state.metrics);
    }
    shared.all_metrics = &all_metrics;
    process.workers = count;
}

bool server::impl::check_agent_configs(const config::config& cfg, std::vector<std::string>& errors) {
    const std::size_t before = errors.size();
    for (std::size_t i = 0; i < cfg.agents.size(); ++i) {
        const auto& a = cfg.agents[i];
        const std::string key = agent::settings_key(a);
        if (snapshot && std::find(snapshot->agent_keys.begin(), snapshot->agent_keys.end(), key) != snapshot->agent_keys.end())
            continue;  // unchanged: already accepted
        const auto v = agent::validate_config(a, a.connect_timeout);
        if (!v.reached) {
            spdlog::warn("agent \"{}\" at {} could not check its config now ({}); it is checked when the agent connects",
                         a.id, a.socket, v.failure);
            continue;
        }
        errors.insert(errors.end(), v.errors.begin(), v.errors.end());
    }
    return errors.size() == before;
}

bool server::impl::apply(std::shared_ptr<const config::config> cfg, std::vector<std::string>& errors) {
    if (!check_agent_configs(*cfg, errors)) return false;
    auto snap = proxy::build_snapshot(cfg, snapshot.get(), registry, agents, websockets,
                                      static_cast<std::uint32_t>(workers.size()), errors);
    if (!snap) return false;

    // Open sockets for new listeners first; if one cannot bind, nothing changes.
    std::unordered_map<std::string, runtime::listen_sockets> opened;
    for (const auto& l : cfg->listeners) {
        const std::string key = proxy::listen_key(l);
        if (listeners.count(key) || opened.count(key)) continue;
        runtime::listen_sockets sockets;
        std::string error;
        if (!runtime::open_listen_sockets(l.listen, workers.size(), listen_backlog, sockets, error)) {
            errors.push_back("listener \"" + l.id + "\": " + error);
            continue;
        }
        spdlog::info("listener \"{}\" listening on {}:{} ({} worker sockets)", l.id, l.listen.host,
                     sockets.port, sockets.fds.size());
        opened.emplace(key, std::move(sockets));
    }
    if (!errors.empty()) {
        for (auto& [key, sockets] : opened) runtime::close_sockets(sockets);
        return false;
    }
    std::vector<std::string> removed;
    for (const auto& [key, port] : listeners)
        if (!snap->listeners.count(key)) removed.push_back(key);

    for (std::size_t i = 0; i < workers.size(); ++i) {
        std::vector<std::pair<std::string, int>> added;
        for (auto& [key, sockets] : opened) added.emplace_back(key, sockets.fds[i]);
        worker* w = workers[i].get();
        w->send([w, snap, added, removed] {
            // Publish first: connections accepted on a new listener must find its settings.
            w->state.publish(snap);
            for (const auto& key : removed) w->acceptors.erase(key);  // stops accepting
            for (const auto& [key, fd] : added) {
                auto a = std::make_unique<proxy::acceptor>(w->state, fd, key);
                a->start();
                w->acceptors.emplace(key, std::move(a));
            }
        });
    }
    for (const auto& key : removed) {
        listeners.erase(key);
        spdlog::info("listener {} removed: it stops accepting; its connections drain", key);
    }
    for (auto& [key, sockets] : opened) listeners.emplace(key, sockets.port);

    snapshot = std::move(snap);
    {
        const auto& el = cfg->observability.error_log;
        observability::event_log::configure(el.format == config::error_log_config::format_kind::json,
                                            static_cast<observability::event_log::level>(el.level), el.repeat_limit);
    }
    update_health_targets();
    {
        std::lock_guard lock(dns_mutex);
        dns_config = cfg;
    }
    process.config_hash = cfg->hash;
    process.listeners = listeners.size();
    process.config_load_time = std::chrono::duration<double>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    stamps = file_stamps(cfg->files);
    return true;
}

void server::impl::update_health_targets() {
    std::vector<upstream::health_target> targets;
    for (const auto& group : snapshot->upstreams) {
        for (const auto* set : {&group.primary, &group.backup}) {
            for (const auto& e : set->endpoints) {
                upstream::health_target t;
                t.state = e.state;
                t.address = e.address;
                // The endpoint as written: an IPv6 literal keeps its brackets, or the
                // field would read "::1:9001", which no server splits into host and port.
                const bool v6_literal = e.host.find(':') != std::string::npos;
                t.host_header = (v6_literal ? "[" + e.host + "]" : e.host) + ":" +
                                std::to_string(e.address.port());
                t.check = group.cfg->health_check;
                t.upstream_id = group.id;
                t.h2 = group.cfg->protocol == config::upstream_protocol::h2;
                if (group.tls) {
                    t.tls = group.tls;
                    t.tls_host = e.host;
                }
                targets.push_back(std::move(t));
            }
        }
    }
    health.update(std::move(targets));
}

void server::impl::start_dns_refresher() {
    health.on_change([](const upstream::health_target&, bool healthy, std::string_view line) {
        if (healthy) spdlog::info("{}", line);
        else spdlog::warn("{}", line);
    });
    dns_thread = std::thread([this] {
        std::unique_lock lock(dns_mutex);
        while (!dns_wake.wait_for(lock, std::chrono::seconds(1), [this] { return dns_stop; })) {
            auto cfg = dns_config;
            lock.unlock();
            if (cfg && registry.refresh_dns(*cfg)) {
                // New addresses: rebuild the snapshot from the same config on the main thread.
                asio::post(main, [this, cfg] {
                    if (shutting_down || snapshot->cfg != cfg) return;  // a reload already rebuilt it
                    std::vector<std::string> errors;
                    if (!apply(cfg, errors))
                        for (const auto& e : errors) observability::event_log::error("dns refresh failed", {{"error", e}});
                });
            }
            lock.lock();
        }
    });
}

void server::impl::stop_dns_refresher() {
    {
        std::lock_guard lock(dns_mutex);
        dns_stop = true;
    }
    dns_wake.notify_all();
    if (dns_thread.joinable()) dns_thread.join();
}

server::reload_result server::impl::reload(std::string_view trigger) {
    reload_result result;
    if (shutting_down) {
        result.errors.push_back("shutting down");
        return result;
    }
    config::load_result loaded = options.config_path.empty()
                                     ? config::load_text(config::embedded_default(), "<embedded>", ".")
                                     : config::load_file(options.config_path);
    for (const auto& d : loaded.errors) result.errors.push_back(d.format());
    if (loaded.ok()) {
        for (const auto& key : config::restart_required_changes(*snapshot->cfg, *loaded.cfg))
            result.errors.push_back("needs restart: " + key);
    }
    if (result.errors.empty()) apply(loaded.cfg, result.errors);
    if (!result.errors.empty()) {
        ++process.reloads_failure;
        spdlog::error("reload ({}) failed; the previous configuration stays active:", trigger);
        for (const auto& e : result.errors) spdlog::error("  {}", e);
        return result;
    }
    ++process.reloads_success;
    result.ok = true;
    result.hash = snapshot->cfg->hash;
    spdlog::info("reload ({}) applied: config hash {}", trigger, result.hash);
    return result;
}

void server::impl::on_signal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
            reload("SIGHUP");
        } else if (shutting_down) {
            spdlog::warn("second shutdown signal: exiting now");
            std::_Exit(1);
        } else {
            spdlog::info("{} received: graceful shutdown", signo == SIGTERM ? "SIGTERM" : "SIGINT");
            begin_shutdown();
        }
        on_signal();
    });
}

void server::impl::on_rotate() {
    rotate.async_wait([this](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (snapshot && snapshot->access_log) snapshot->access_log->reopen();
        if (snapshot && snapshot->audit_log && snapshot->audit_log != snapshot->access_log) snapshot->audit_log->reopen();
        on_rotate();
    });
}

// POST /drain: the load balancer should stop sending traffic (readiness fails) while every
// request in flight or still arriving is served; connections close after their current
// response instead of being kept alive. Listeners stay open until SIGTERM.
void server::impl::begin_drain() {
    if (draining) return;
    draining = true;
    spdlog::info("drain requested: /readyz now answers 503; connections close after their current response");
    for (auto& w : workers) {
        worker* raw = w.get();
        raw->send([raw] { raw->state.drain(); });
    }
}

void server::impl::begin_shutdown() {
    shutting_down = true;
    ready = false;
    watch_timer.cancel();
    tls_watch_timer.cancel();
    for (auto& w : workers) {
        worker* raw = w.get();
        raw->send([raw] {
            raw->acceptors.clear();  // stop accepting: new connections are refused
            raw->state.drain();
        });
    }
    wait_for_drain(steady_clock::now() + snapshot->cfg->system.graceful_shutdown);
}

void server::impl::wait_for_drain(steady_clock::time_point deadline) {
    std::int64_t open = 0;
    for (const auto* m : all_metrics) open += m->connections_active.value();
    if (open == 0 || steady_clock::now() >= deadline) {
        if (open != 0) spdlog::warn("graceful-shutdown elapsed with {} connections open; closing them", open);
        if (admin) admin->stop();
        signals.cancel();
        rotate.cancel();
        main.stop();
        return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([this, deadline](const boost::system::error_code& ec) {
        if (!ec) wait_for_drain(deadline);
    });
}

void server::impl::schedule_watch() {
    if (!snapshot->cfg->system.watch_config || options.config_path.empty()) return;
    watch_timer.expires_after(std::chrono::seconds(1));
    watch_timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        if (file_stamps(snapshot->cfg->files) != stamps) {
            stamps = file_stamps(snapshot->cfg->files);  // a failed reload is not retried in a loop
            reload("config file changed");
        }
        schedule_watch();
    });
}

// Renewed certificates (and OCSP responses) take effect without a reload: when a file a TLS
// context was built from changes, the snapshot is rebuilt from the same config. Handshakes
// in progress keep the context they started with.
void server::impl::schedule_tls_watch() {
    tls_watch_timer.expires_after(std::chrono::seconds(2));
    tls_watch_timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec || shutting_down) return;
        if (snapshot->tls_files_changed()) {
            std::vector<std::string> errors;
            if (apply(snapshot->cfg, errors)) {
                spdlog::info("TLS certificate files changed: contexts rebuilt");
            } else {
                for (const auto& e : errors) spdlog::error("TLS certificate files changed, keeping the old ones: {}", e);
            }
        }
        schedule_tls_watch();
    });
}

void server::impl::stop_workers() {
    for (auto& w : workers) {
        worker* raw = w.get();
        raw->send([raw] {
            // Let every coroutine finish (aborted) so nothing outlives the worker state.
            raw->acceptors.clear();
            raw->state.shutdown();
            raw->closing = true;
            boost::system::error_code ignored;
            raw->wake.close(ignored);
            raw->guard.reset();
        });
    }
    for (auto& w : workers)
        if (w->thread.joinable()) w->thread.join();
}

server::server(run_options options, std::shared_ptr<const config::config> initial)
    : impl_(std::make_unique<impl>(std::move(options), std::move(initial))) {}

server::~server() = default;

server::reload_result server::reload(std::string_view trigger) { return impl_->reload(trigger); }

int server::run() {
    auto& s = *impl_;
    s.start_workers(worker_count(*s.pending));
    std::vector<std::string> errors;
    if (!s.apply(std::move(s.pending), errors)) {
        for (const auto& e : errors) spdlog::critical("{}", e);
        return 1;
    }
    if (const auto& admin_cfg = s.snapshot->cfg->admin) {
        admin_hooks hooks;
        hooks.metrics = [&s] {
            observability::config_figures figures;
            figures.routes = s.snapshot->cfg->routes.size();
            figures.upstreams = s.snapshot->cfg->upstreams.size();
            figures.version = sentinel::version;
            std::string out = observability::render_prometheus(s.all_metrics, s.process, figures);
            render_upstream_metrics(s.snapshot->upstreams, out);
            return out;
        };
        hooks.upstreams = [&s] { return upstreams_json(s.snapshot->upstreams); };
        hooks.config = [&s] {
            return "// config hash " + s.snapshot->cfg->hash + " from " + s.snapshot->cfg->source_path +
                   "; secrets and values from the environment are redacted\n" + s.snapshot->cfg->redacted_text;
        };
        hooks.drain = [&s] { s.begin_drain(); };
        hooks.ready = [&s] { return s.ready && !s.draining; };
        hooks.reload = [&s] { return s.reload("admin"); };
        std::string error;
        s.admin = admin_server::start(s.main, *admin_cfg, std::move(hooks), error);
        if (!s.admin) {
            spdlog::critical("admin listener: {}", error);
            return 1;
        }
    }
    for (auto& w : s.workers) {
        worker* raw = w.get();
        raw->thread = std::thread([raw] { raw->ctx.run(); });
    }
    s.on_signal();
    s.on_rotate();
    s.schedule_watch();
    s.schedule_tls_watch();
    s.start_dns_refresher();
    s.ready = true;
    spdlog::info("sentinel ready: {} workers, {} listeners, config hash {}", s.workers.size(),
                 s.listeners.size(), s.snapshot->cfg->hash);
    s.main.run();
    s.stop_dns_refresher();
    s.stop_workers();
    spdlog::info("sentinel stopped");
    return 0;
}

}  // namespace sentinel::server
