// What the admin server reports about upstreams: the live state of every endpoint of the
// active snapshot (health, ejection, breaker, in-flight, latency EWMA), as Prometheus
// families and as the /upstreams JSON document. Read from shared atomics; no worker is asked.
#pragma once

#include <string>
#include <vector>

#include "upstream/upstream_group.hpp"

namespace sentinel::server {

// Appends the per-endpoint and per-upstream families (registered even with no upstream).
void render_upstream_metrics(const std::vector<upstream::upstream_group>& groups, std::string& out);

// {"upstreams":[{"id":..., "endpoints":[{"address":..., "healthy":..., ...}]}]}
std::string upstreams_json(const std::vector<upstream::upstream_group>& groups);

}  // namespace sentinel::server
