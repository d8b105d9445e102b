#include "proxy/snapshot.hpp"

#include <spdlog/spdlog.h>

#include "agent/config_push.hpp"
#include "common/version.hpp"

namespace sentinel::proxy {

namespace {

bool same_certificate(const std::optional<config::certificate_config>& a,
                      const std::optional<config::certificate_config>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->certificate == b->certificate && a->key == b->key && a->ocsp == b->ocsp);
}

bool same_upstream_tls(const config::upstream_tls_config& a, const config::upstream_tls_config& b) {
    return a.ca == b.ca && a.sni == b.sni && same_certificate(a.client_certificate, b.client_certificate) &&
           a.insecure_skip_verify == b.insecure_skip_verify && a.min_version == b.min_version;
}

// The client context for `group` (whose cfg has `tls`): the previous snapshot's when the same
// upstream had the same settings and none of its files changed (pooled connections and
// cached sessions stay usable), else a new one. Null + `error` when it cannot be built.
std::shared_ptr<const tls::client_context> upstream_tls_context(const upstream::upstream_group& group,
                                                                const snapshot* previous, std::string& error) {
    const config::upstream_tls_config& cfg = *group.cfg->tls;
    if (previous) {
        for (const auto& old : previous->upstreams) {
            if (old.id != group.id || !old.tls || !old.cfg->tls) continue;
            if (same_upstream_tls(*old.cfg->tls, cfg) && old.cfg->protocol == group.cfg->protocol &&
                !tls::files_changed(old.tls->files()))
                return old.tls;
            break;
        }
    }
    return tls::client_context::build(cfg, group.cfg->protocol == config::upstream_protocol::h2, error);
}

}  // namespace

bool snapshot::tls_files_changed() const {
    for (const auto& [key, ctx] : tls_contexts)
        if (tls::files_changed(ctx->files())) return true;
    for (const auto& group : upstreams)
        if (group.tls && tls::files_changed(group.tls->files())) return true;
    return false;
}

std::string listen_key(const config::listener_config& listener) {
    return listener.listen.host + "|" + std::to_string(listener.listen.port);
}

std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const config::config> cfg,
                                               const snapshot* previous,
                                               upstream::upstream_registry& registry,
                                               agent::agent_registry& agents,
                                               websocket_registry& websockets,
                                               std::uint32_t workers,
                                               std::vector<std::string>& errors) {
    auto snap = std::make_shared<snapshot>(std::move(cfg));
    const auto& c = *snap->cfg;
    const std::size_t errors_before = errors.size();

    snap->upstreams = registry.build(c, workers, errors);
    for (auto& group : snap->upstreams) {
        if (!group.cfg->tls) continue;
        if (group.cfg->tls->insecure_skip_verify)
            spdlog::warn("upstream \"{}\": tls insecure-skip-verify is on: endpoint certificates are not verified",
                         group.id);
        std::string error;
        group.tls = upstream_tls_context(group, previous, error);
        if (!group.tls) errors.push_back("upstream \"" + group.id + "\" tls: " + error);
    }
    std::unordered_map<std::string, int> upstream_index;
    for (std::size_t i = 0; i < snap->upstreams.size(); ++i)
        upstream_index.emplace(snap->upstreams[i].id, static_cast<int>(i));
    for (const auto& r : c.routes) {
        int index = -1;
        if (r.upstream) {
            auto it = upstream_index.find(*r.upstream);
            if (it != upstream_index.end()) index = it->second;
        }
        snap->route_upstream.push_back(index);
        snap->route_websockets.push_back(r.websocket.enabled ? websockets.get(r.id) : nullptr);
    }

    std::unordered_map<std::string, std::uint32_t> agent_index;
    for (const auto& a : c.agents) {
        agent_index.emplace(a.id, static_cast<std::uint32_t>(snap->agent_states.size()));
        snap->agent_states.push_back(agents.get(a.id));
        std::string error;
        snap->agent_targets.push_back(agent::resolve_target(a.socket, error));
        if (!error.empty()) spdlog::warn("agent \"{}\": {}; its connections will fail until a reload resolves it", a.id, error);
        snap->agent_keys.push_back(agent::settings_key(a));
    }
    for (const auto& r : c.routes) {
        auto& list = snap->route_agents.emplace_back();
        for (const auto& id : r.agents) list.push_back(agent_index.at(id));
    }

    snap->limits.max_request_line = c.limits.max_request_line;
    snap->limits.max_header_bytes = c.limits.max_header_bytes;
    snap->limits.max_headers = c.limits.max_headers;
    snap->max_body = c.limits.max_body;

    if (c.observability.access_log) {
        const auto& path = c.observability.access_log->path;
        if (previous && previous->access_log && previous->access_log->path() == path) {
            snap->access_log = previous->access_log;
        } else {
            std::string error;
            snap->access_log = observability::access_log::open(path, error);
            if (!snap->access_log) errors.push_back(std::move(error));
        }
    }
    if (c.observability.audit_log) {
        const auto& path = c.observability.audit_log->path;
        if (previous && previous->audit_log && previous->audit_log->path() == path) {
            snap->audit_log = previous->audit_log;
        } else if (snap->access_log && snap->access_log->path() == path) {
            snap->audit_log = snap->access_log;  // one file, one writer: lines never interleave
        } else {
            std::string error;
            snap->audit_log = observability::access_log::open(path, error, 8u << 20, "audit log");
            if (!snap->audit_log) errors.push_back(std::move(error));
        }
    }

    if (c.observability.tracing) {
        // Reused when nothing changed: its queue and collector connection survive the reload.
        const auto& t = *c.observability.tracing;
        observability::tracing::exporter_settings s;
        s.host = t.otlp_endpoint.host;
        s.port = t.otlp_endpoint.port;
        s.path = t.path;
        s.sample_percent = t.sample_percent;
        s.max_queue_spans = t.max_queue_spans;
        s.batch_size = t.batch_size;
        s.flush_interval = t.flush_interval;
        s.timeout = t.export_timeout;
        s.service_name = t.service_name;
        s.service_version = version;
        if (previous && previous->tracer && previous->tracer->settings() == s)
            snap->tracer = previous->tracer;
        else
            snap->tracer = std::make_shared<observability::tracing::exporter>(std::move(s));
    }

    for (const auto& l : c.listeners) {
        const std::string key = listen_key(l);
        snap->listeners.emplace(key, &l);
        if (!l.tls) continue;
        const tls::server_context* before = nullptr;
        if (previous) {
            auto it = previous->tls_contexts.find(key);
            if (it != previous->tls_contexts.end()) before = it->second.get();
        }
        std::string error;
        auto ctx = tls::server_context::build(*l.tls, l.http2.enabled, before, error);
        if (!ctx) {
            errors.push_back("listener \"" + l.id + "\": " + error);
            continue;
        }
        snap->tls_contexts.emplace(key, std::move(ctx));
    }

    if (errors.size() != errors_before) return nullptr;
    return snap;
}

}  // namespace sentinel::proxy
