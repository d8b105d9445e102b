// The validated configuration as plain data: what the loader produces from KDL and the only
// thing `server/` reads to build runtime objects. Defaults here are the documented defaults
// (DESIGN §8); the schema declares the same values and the generated reference prints them.
// A loaded `config` is immutable and shared as `std::shared_ptr<const config>` (a snapshot).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sentinel::config {

using duration = std::chrono::milliseconds;

// "host:port", "[v6]:port". `host` is kept as written (IP literal or DNS name, brackets removed).
struct socket_address {
    std::string host;
    std::uint16_t port = 0;
    std::string text;  // as written in the config, for logs
};

// An IPv4 or IPv6 network in CIDR form; addresses are in network byte order.
struct cidr {
    bool v6 = false;
    std::uint8_t bytes[16] = {};
    std::uint8_t prefix_len = 0;
    std::string text;
};

struct system_config {
    std::uint32_t workers = 0;  // 0 = one per CPU core. Needs restart.
    duration graceful_shutdown = std::chrono::seconds(30);
    std::uint64_t max_connections = 100000;            // whole process
    std::uint64_t max_connections_per_worker = 0;      // 0 = max_connections / workers (rounded up)
    bool watch_config = false;  // reload when the config file or an included file changes
};

struct admin_config {
    socket_address listen;
    std::optional<std::string> bearer_token;  // when set, every admin request must carry it
};

enum class listener_protocol { http };

struct listener_config {
    std::string id;
    socket_address listen;
    listener_protocol protocol = listener_protocol::http;
    bool proxy_protocol = false;          // accept PROXY v1/v2 headers (only then)
    std::vector<cidr> trusted_proxies;    // X-Forwarded-* are appended to only from these peers
};

struct limits_config {
    std::uint64_t max_request_line = 8 * 1024;
    std::uint64_t max_header_bytes = 32 * 1024;
    std::uint32_t max_headers = 100;
    std::uint64_t max_body = 10ull * 1024 * 1024;
};

struct timeouts_config {
    duration client_header = std::chrono::seconds(10);
    duration client_body_idle = std::chrono::seconds(30);
    duration keepalive_idle = std::chrono::seconds(75);
    duration upstream_connect = std::chrono::seconds(2);
    duration upstream_response_header = std::chrono::seconds(30);
    duration upstream_body_idle = std::chrono::seconds(30);
};

struct header_value {
    std::string name;
    std::string value;
};

struct header_ops {
    std::vector<header_value> set;     // replace any existing values
    std::vector<header_value> add;     // append
    std::vector<std::string> remove;   // names, case-insensitive
    bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

struct route_match {
    std::vector<std::string> hosts;          // exact ("a.com") or wildcard ("*.a.com"); OR
    std::vector<std::string> paths;          // exact paths; OR
    std::vector<std::string> path_prefixes;  // OR
    std::vector<std::string> methods;        // OR
};

struct fixed_response {
    int status = 200;
    std::string body;
    std::vector<header_value> headers;
};

enum class builtin_handler { status };

struct route_config {
    std::string id;
    std::int32_t priority = 0;
    route_match match;
    // Exactly one action:
    std::optional<std::string> upstream;           // proxy to this upstream id
    std::optional<fixed_response> respond;          // answer locally
    std::optional<builtin_handler> builtin;         // built-in page
    header_ops request_headers;
    header_ops response_headers;
    bool allow_upgrade = false;  // relay `Upgrade` (never h2c) to the upstream
};

struct endpoint_config {
    socket_address address;
    std::uint32_t weight = 1;
};

enum class load_balancing { round_robin };

struct pool_config {
    std::uint32_t max_idle = 64;  // idle connections kept per endpoint per worker
    duration idle_timeout = std::chrono::seconds(60);
};

struct upstream_config {
    std::string id;
    std::vector<endpoint_config> endpoints;
    load_balancing balancing = load_balancing::round_robin;
    pool_config pool;
};

struct access_log_config {
    std::string path = "-";  // "-" = stdout
    // format is always "json" today; the key exists so a future format is not a breaking change
};

struct observability_config {
    std::optional<access_log_config> access_log;  // none = no access log
};

struct config {
    system_config system;
    std::optional<admin_config> admin;
    std::vector<listener_config> listeners;
    limits_config limits;
    timeouts_config timeouts;
    std::vector<route_config> routes;        // in file order
    std::vector<upstream_config> upstreams;  // in file order
    observability_config observability;

    std::string source_path;  // the main file ("<embedded>" for the built-in default)
    std::vector<std::string> files;  // every file read (main + includes), for the watcher
    std::string hash;  // hex digest of the canonical form; exposed as a metric
};

}  // namespace sentinel::config
