// An upstream group as the workers see it: resolved endpoints plus its pool settings.
// Built on the main thread (DNS resolution happens here, never on a worker) and shared
// read-only by every worker through the snapshot.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/model/config.hpp"

namespace sentinel::upstream {

struct endpoint {
    boost::asio::ip::tcp::endpoint address;
    std::string key;  // "ip:port": identifies the per-worker connection pool
};

struct upstream_group {
    std::string id;
    std::vector<endpoint> endpoints;
    config::pool_config pool;
};

// Resolves every endpoint of `cfg` (IP literals directly, names with getaddrinfo; the first
// address of a name is used). On failure returns nullopt and sets `error`.
std::optional<upstream_group> build_group(const config::upstream_config& cfg, std::string& error);

}  // namespace sentinel::upstream
