#include "proxy/status_page.hpp"

#include <fmt/format.h>

#include "common/version.hpp"
#include "observability/access_log.hpp"

namespace sentinel::proxy {

namespace {
// HTML-escapes operator-supplied names (route and upstream ids).
std::string escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}
}  // namespace

std::string render_status_page(const worker_context& worker, const snapshot& snap) {
    const auto& shared = worker.shared;
    std::int64_t active = 0;
    std::uint64_t requests = 0;
    if (shared.all_metrics) {
        for (const auto* m : *shared.all_metrics) {
            active += m->connections_active.value();
            for (const auto& c : m->requests_by_class) requests += c.value();
        }
    }
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now() - shared.start_time).count();

    std::string out;
    fmt::format_to(std::back_inserter(out),
                   "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sentinel status</title></head>\n"
                   "<body>\n<h1>Sentinel {}</h1>\n<ul>\n<li>uptime: {} s</li>\n<li>workers: {}</li>\n"
                   "<li>open connections: {}</li>\n<li>requests served: {}</li>\n<li>config: {} (hash {})</li>\n</ul>\n",
                   version, uptime, shared.workers, active, requests, escape(snap.cfg->source_path),
                   escape(snap.cfg->hash));
    out += "<h2>Routes</h2>\n<ol>\n";
    for (const auto* route : snap.routes.ordered()) {
        std::string action = route->upstream   ? "upstream " + escape(*route->upstream)
                             : route->respond  ? fmt::format("respond {}", route->respond->status)
                             : route->redirect ? fmt::format("redirect {}", route->redirect->status)
                                               : std::string("builtin status");
        fmt::format_to(std::back_inserter(out), "<li>{} (priority {}) → {}</li>\n", escape(route->id),
                       route->priority, action);
    }
    out += "</ol>\n<h2>Upstreams</h2>\n<ul>\n";
    for (const auto& group : snap.upstreams) {
        fmt::format_to(std::back_inserter(out), "<li>{}:", escape(group.id));
        const auto now = upstream::now_ms();
        auto list = [&](const upstream::endpoint_set& set, std::string_view tag) {
            for (const auto& ep : set.endpoints)
                fmt::format_to(std::back_inserter(out), " {}{}{}", escape(ep.key), tag,
                               ep.state->available(now) ? "" : " (unavailable)");
        };
        list(group.primary, "");
        list(group.backup, " (backup)");
        out += "</li>\n";
    }
    out += "</ul>\n</body></html>\n";
    return out;
}

}  // namespace sentinel::proxy
