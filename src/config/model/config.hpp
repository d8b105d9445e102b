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

#include "config/kdl/document.hpp"

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

enum class listener_protocol { http, https };

enum class tls_version { tls1_2, tls1_3 };

// A certificate chain and its key (PEM files, paths resolved against the declaring file).
struct certificate_config {
    std::string certificate;  // leaf first, then intermediates
    std::string key;
    std::optional<std::string> ocsp;  // DER OCSP response stapled for this certificate
};

enum class client_auth_mode { none, optional, required };

struct security_headers_config {
    bool enabled = true;
    duration hsts_max_age = std::chrono::hours(24 * 365);  // 0 = no Strict-Transport-Security
    bool hsts_include_subdomains = false;
    std::string content_type_options = "nosniff";
    std::string referrer_policy = "strict-origin-when-cross-origin";
    std::string frame_options = "DENY";
};

// Downstream TLS of a `protocol "https"` listener.
struct listener_tls_config {
    std::vector<certificate_config> certificates;  // the first is the default (no/unknown SNI)
    tls_version min_version = tls_version::tls1_2;
    tls_version max_version = tls_version::tls1_3;
    std::optional<std::string> ciphers;        // TLS 1.2 cipher list (OpenSSL syntax)
    std::optional<std::string> cipher_suites;  // TLS 1.3 suites
    std::vector<std::string> groups;           // key exchange groups; empty = secure default
    bool session_tickets = true;
    duration ticket_key_rotation = std::chrono::hours(12);
    std::uint32_t session_cache_size = 20480;  // server-side session cache entries; 0 = none
    duration session_timeout = std::chrono::minutes(5);
    client_auth_mode client_auth = client_auth_mode::none;
    std::optional<std::string> client_ca;  // CA bundle for client certificates
    security_headers_config security_headers;
};

// HTTP/2 on a listener (docs/architecture/http2.md): ALPN h2 on `https`, h2c with prior
// knowledge (the client starts with the connection preface) on `http`.
struct http2_config {
    bool enabled = true;  // `http2 #false`: HTTP/1.1 only
    std::uint32_t max_concurrent_streams = 100;
    std::uint64_t initial_window_size = 64 * 1024;
    std::uint64_t max_frame_size = 16 * 1024;
    std::uint64_t max_header_list_size = 32 * 1024;
};

struct listener_config {
    std::string id;
    socket_address listen;
    listener_protocol protocol = listener_protocol::http;
    bool proxy_protocol = false;          // accept PROXY v1/v2 headers (only then)
    std::vector<cidr> trusted_proxies;    // X-Forwarded-* are appended to only from these peers
    std::optional<listener_tls_config> tls;  // required with protocol "https", refused otherwise
    http2_config http2;
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

// A header or query-parameter matcher. Several matchers (different names) are ANDed; the
// values of one matcher are ORed.
enum class value_match_kind { exact, regex, present, absent };
struct value_matcher {
    std::string name;  // header names compare case-insensitively, query names exactly
    value_match_kind kind = value_match_kind::exact;
    std::vector<std::string> values;  // exact: any of these; regex: any of these (RE2, full match)
};

struct route_match {
    std::vector<std::string> hosts;          // exact ("a.com") or wildcard ("*.a.com"); OR
    std::vector<std::string> paths;          // exact paths; OR
    std::vector<std::string> path_prefixes;  // OR
    std::vector<std::string> path_regexes;   // RE2, must match the whole path; OR
    std::vector<std::string> methods;        // OR
    std::vector<value_matcher> headers;      // AND across matchers
    std::vector<value_matcher> query;        // AND across matchers
};

struct fixed_response {
    int status = 200;
    std::string body;
    std::vector<header_value> headers;
};

enum class builtin_handler { status };

// Redirect action: every part not given is taken from the request.
struct redirect_action {
    int status = 302;  // 301, 302, 303, 307 or 308
    std::optional<std::string> scheme;  // "http" or "https"
    std::optional<std::string> host;
    std::optional<std::uint16_t> port;
    std::optional<std::string> path;    // replaces the whole path
    bool keep_query = true;             // append the request's query string
};

// Changes to the request before it goes upstream (path first stripped, then prefixed).
struct rewrite_config {
    std::optional<std::string> strip_prefix;  // removed from the path when it starts with it
    std::optional<std::string> add_prefix;    // prepended to the (stripped) path
    std::optional<std::string> host;          // the Host header sent upstream
    bool empty() const { return !strip_prefix && !add_prefix && !host; }
};

enum class retry_condition : std::uint8_t { connect_failure, reset, timeout };

struct retry_policy {
    std::uint32_t attempts = 1;  // tries in total, the first included; 1 = no retries
    std::vector<retry_condition> on;  // failure kinds that are retried
    std::vector<int> on_status;       // response statuses that are retried
    duration backoff = std::chrono::milliseconds(25);      // first retry waits up to this (full jitter)
    duration backoff_max = std::chrono::milliseconds(250);  // cap of the exponential backoff
    std::optional<duration> per_try_timeout;  // response-header timeout of each try
    bool non_idempotent = false;     // also retry POST, PATCH, ... (only when safe to replay)
    std::uint64_t max_body = 64 * 1024;  // larger request bodies are not buffered: no retry
};
// WebSocket proxying on a route (docs/architecture/websocket.md): handshakes are checked,
// admitted under a cap counted across workers, and become tunnels that close when idle.
struct websocket_config {
    bool enabled = false;  // `websocket #true`
    duration idle_timeout = std::chrono::seconds(60);  // no byte either way for this long: close
    std::uint32_t max_connections = 10000;  // open tunnels (and handshakes under way), all workers
};

struct route_config {
    std::string id;
    std::int32_t priority = 0;
    route_match match;
    // Exactly one action:
    std::optional<std::string> upstream;           // proxy to this upstream id
    std::optional<fixed_response> respond;          // answer locally
    std::optional<builtin_handler> builtin;         // built-in page
    std::optional<redirect_action> redirect;        // answer with a redirect
    header_ops request_headers;
    header_ops response_headers;
    bool allow_upgrade = false;  // relay `Upgrade` (never h2c, never websocket) to the upstream
    websocket_config websocket;
    rewrite_config rewrite;
    retry_policy retry;
    // Verified client-certificate facts sent upstream under these header names (TLS listeners).
    std::optional<std::string> client_cert_subject_header;
    std::optional<std::string> client_cert_fingerprint_header;
    bool security_headers = true;  // add the listener's TLS security headers to responses
    // External agents (agent ids) consulted for this route, in this order, and whether their
    // request-header events go out at once instead of one after the other.
    std::vector<std::string> agents;
    bool agents_concurrent = false;
};

struct endpoint_config {
    socket_address address;
    std::uint32_t weight = 1;
    bool backup = false;  // used only when no primary endpoint is available
};

enum class load_balancing {
    round_robin,
    weighted_round_robin,
    least_connections,
    random,
    power_of_two_choices,
    consistent_hash,
    peak_ewma,
};

enum class hash_source { header, cookie, client_ip, path, query };
struct hash_key_config {
    hash_source source = hash_source::client_ip;
    std::string name;  // header, cookie or query parameter name
};

struct sticky_config {
    std::string cookie;  // cookie naming the endpoint chosen for this client
    std::optional<duration> ttl;  // Max-Age of the cookie; none = session cookie
};

struct health_check_config {
    enum class kind { http, tcp } type = kind::http;
    std::string path = "/";  // http: request path
    std::vector<int> expect_status;  // http: accepted statuses; empty = 200-399
    std::optional<std::string> host;  // http: Host header; default = the endpoint address
    duration interval = std::chrono::seconds(5);
    duration timeout = std::chrono::seconds(1);
    std::uint32_t healthy = 2;    // consecutive successes to mark an endpoint up
    std::uint32_t unhealthy = 3;  // consecutive failures to mark it down
    bool start_unhealthy = false;  // initial-state "unhealthy": down until `healthy` successes
};

// Passive health: endpoints failing live traffic are ejected for a growing period.
struct outlier_config {
    std::uint32_t consecutive_failures = 5;  // 5xx responses or connect failures in a row
    duration base_ejection = std::chrono::seconds(30);  // × the endpoint's ejection count
    duration max_ejection = std::chrono::minutes(5);
    std::uint32_t max_ejected_percent = 50;  // never eject more than this share at once
};

struct circuit_breaker_config {
    std::uint32_t failures = 5;  // consecutive failures that open the breaker
    duration open_for = std::chrono::seconds(30);  // then half-open
    std::uint32_t half_open_probes = 1;  // concurrent trial requests while half-open
    std::uint32_t successes = 1;  // successful probes that close it again
};

struct retry_budget_config {
    std::uint32_t percent = 20;   // retries in flight at most this share of requests in flight
    std::uint32_t min_retries = 3;  // always allowed, whatever the share
};

struct pool_config {
    std::uint32_t max_idle = 64;  // idle connections kept per endpoint per worker
    duration idle_timeout = std::chrono::seconds(60);
};

// TLS towards an upstream's endpoints.
struct upstream_tls_config {
    std::optional<std::string> ca;    // CA bundle; none = the system bundle
    std::optional<std::string> sni;   // name sent and verified; none = the endpoint's host
    std::optional<certificate_config> client_certificate;  // mTLS
    bool insecure_skip_verify = false;
    tls_version min_version = tls_version::tls1_2;
};

// How Sentinel speaks to an upstream's endpoints (docs/architecture/http2.md).
enum class upstream_protocol : std::uint8_t { http1, h2 };

struct upstream_config {
    std::string id;
    upstream_protocol protocol = upstream_protocol::http1;  // h2: TLS with ALPN h2, or h2c prior knowledge
    std::vector<endpoint_config> endpoints;
    load_balancing balancing = load_balancing::round_robin;
    std::optional<hash_key_config> hash_key;  // consistent-hash: where the key comes from
    std::optional<sticky_config> sticky;
    pool_config pool;
    duration dns_refresh = std::chrono::seconds(30);  // names are re-resolved this often
    std::optional<health_check_config> health_check;
    std::optional<outlier_config> outlier_detection;
    std::optional<circuit_breaker_config> circuit_breaker;
    retry_budget_config retry_budget;
    std::uint32_t max_connections = 0;  // open connections to all endpoints, all workers; 0 = no cap
    std::uint32_t max_pending = 0;      // requests waiting for a new connection; 0 = no cap
    std::uint32_t max_in_flight = 0;    // requests in flight; 0 = no cap
    std::optional<std::string> backup_upstream;  // used when no endpoint of this one is available
    std::optional<upstream_tls_config> tls;      // connect with TLS
};

// One access-log field; the JSON key is in proxy/http1_connection.cpp, the config name in
// schema.cpp (same order as this enum).
enum class access_log_field : std::uint8_t {
    timestamp, request_id, trace_id, client, listener, method, host, path, query, status,
    bytes_sent, bytes_received, duration, upstream_connect_duration, upstream_header_duration,
    upstream, route, tls_version, user_agent, retries, agent_metadata, protocol, count_
};

struct access_log_config {
    std::string path = "-";  // "-" = stdout
    // format is always "json" today; the key exists so a future format is not a breaking change
    // In this order on every line. `query` is not a default: query strings carry secrets.
    std::vector<access_log_field> fields = {
        access_log_field::timestamp, access_log_field::request_id, access_log_field::trace_id,
        access_log_field::client, access_log_field::listener, access_log_field::method,
        access_log_field::host, access_log_field::path, access_log_field::status,
        access_log_field::bytes_sent, access_log_field::bytes_received, access_log_field::duration,
        access_log_field::route, access_log_field::upstream, access_log_field::user_agent};
    std::uint32_t sample_percent = 100;  // share of requests logged, decided per request
    bool always_log_errors = true;       // 5xx and local error replies bypass sampling
};

struct error_log_config {
    enum class format_kind { text, json } format = format_kind::text;
    enum class level_kind { debug, info, warn, error } level = level_kind::info;
    std::uint32_t repeat_limit = 5;  // lines per second per message template; 0 = no limit
};

struct audit_log_config {
    std::string path;  // "-" = stdout
};

// OpenTelemetry tracing: W3C trace context in and out, spans exported as OTLP/HTTP protobuf.
struct tracing_config {
    socket_address otlp_endpoint;          // the collector, host:port
    std::string path = "/v1/traces";       // the OTLP/HTTP traces path
    std::uint32_t sample_percent = 100;    // share of new traces sampled (incoming flags win)
    std::uint32_t max_queue_spans = 8192;  // spans waiting for export, all workers; more are dropped
    std::uint32_t batch_size = 512;        // spans per export request
    duration flush_interval{1000};         // a worker hands over its spans at least this often
    duration export_timeout{5000};         // connect + send + response of one export request
    std::string service_name = "sentinel";  // resource attribute service.name
};

struct observability_config {
    std::optional<access_log_config> access_log;  // none = no access log
    error_log_config error_log;
    std::optional<audit_log_config> audit_log;  // none = no audit log
    std::optional<tracing_config> tracing;      // none = no tracing (trace headers pass through untouched)
};

// An external agent (agents/protocol/PROTOCOL.md): where it listens, what happens when it
// cannot answer, and the limits the proxy keeps towards it.
enum class agent_failure_mode { open, closed };
enum class body_over_limit { reject, skip };
struct agent_config {
    std::string id;
    std::string socket;  // a Unix socket path, or "tcp://host:port"
    agent_failure_mode failure_mode = agent_failure_mode::closed;  // required in the file
    duration timeout{100};             // per event, from sending it to its decision
    duration connect_timeout{1000};    // connect + handshake
    std::uint32_t max_concurrent = 100;  // streams open at once, whole process; more are shed
    std::uint32_t connections = 1;     // per worker
    std::uint64_t max_body = 1 << 20;  // inspection limit (the agent may lower it)
    body_over_limit over_limit = body_over_limit::reject;
    duration ping_interval{10000};
    std::uint32_t breaker_failures = 5;  // consecutive failures that open the breaker
    duration breaker_open_for{5000};
    duration reconnect_backoff{100};     // first wait before reconnecting; doubles
    duration reconnect_backoff_max{5000};
    // The `config {}` block, passed to the agent unchecked (it validates it in the handshake).
    std::optional<kdl::node> block;
    std::string block_file;  // the file it was written in, for error positions
    std::string file;        // where the `agent` node itself is (errors about a missing block)
    kdl::position pos;
};

struct config {
    system_config system;
    std::optional<admin_config> admin;
    std::vector<listener_config> listeners;
    limits_config limits;
    timeouts_config timeouts;
    std::vector<route_config> routes;        // in file order
    std::vector<upstream_config> upstreams;  // in file order
    std::vector<agent_config> agents;        // in file order
    observability_config observability;

    std::string source_path;  // the main file ("<embedded>" for the built-in default)
    std::vector<std::string> files;  // every file read (main + includes), for the watcher
    std::string hash;  // hex digest of the canonical form; exposed as a metric
    std::string redacted_text;  // the merged config as KDL, secrets redacted (admin /config)
};

}  // namespace sentinel::config
