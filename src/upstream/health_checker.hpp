// Active health checking: probes endpoints over TCP or HTTP (/1.1 or /2) on a thread of its own and flips
// endpoint_state::healthy after the configured number of consecutive results.
//
// The checker has its own thread and io_context so that a slow or hanging check never
// delays a worker, and so that check traffic scales with endpoints, not with workers. It
// also sweeps expired outlier ejections every 100 ms, so an upstream's `ejected` count drops
// even for endpoints that get no traffic (acquire()/report() notice expiry on their own).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/model/config.hpp"
#include "tls/tls_context.hpp"
#include "upstream/endpoint_state.hpp"

namespace sentinel::upstream {

struct health_target {
    std::shared_ptr<endpoint_state> state;
    boost::asio::ip::tcp::endpoint address;
    // Host header of HTTP checks, sent verbatim (include ":port" when it is not the
    // default). check->host, when set, wins; when both are empty the address is used.
    std::string host_header;
    // None: the endpoint is not checked, only swept for expired ejections. Pass every
    // endpoint of every upstream, checked or not, so that every ejection count is swept.
    std::optional<config::health_check_config> check;
    std::string upstream_id;  // for log lines
    // TLS upstreams: HTTP checks handshake first, verifying `tls_host` (the endpoint's host as
    // written, or the upstream's `sni`) like proxied requests do. TCP checks only connect.
    std::shared_ptr<const tls::client_context> tls;
    std::string tls_host;
    // `protocol "h2"` upstreams: HTTP checks are one HTTP/2 stream on a fresh connection (h2c
    // with prior knowledge, or TLS that must select h2 in ALPN), so they test what proxied
    // requests use.
    bool h2 = false;
};

class health_checker {
public:
    // Starts the checker thread (idle until update()).
    health_checker();
    // Cancels every check in progress and joins the thread.
    ~health_checker();
    health_checker(const health_checker&) = delete;
    health_checker& operator=(const health_checker&) = delete;

    // Replaces the set of targets; call on every snapshot publish. Thread-safe, returns at
    // once (applied on the checker thread). A target whose state pointer was already known
    // keeps its schedule and picks up the new settings at its next check; a new one is
    // checked right away (after a small random jitter that spreads checks out). A state
    // that stops being checked is marked healthy: nothing would ever mark it up again.
    // Whether a new state starts down (start-unhealthy) is decided where it is created.
    void update(std::vector<health_target> targets);

    // Called on the checker thread whenever an endpoint's health flips, with a one-line
    // description (no newline), e.g. `health: upstream "api" endpoint 127.0.0.1:9001 is now
    // DOWN (3 consecutive failures: connection refused)`. Without a callback the line is
    // written to stderr. Thread-safe; applies to flips after it is installed.
    using change_callback =
        std::function<void(const health_target& target, bool healthy, std::string_view line)>;
    void on_change(change_callback fn);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// The status code of an HTTP/1.x status line ("HTTP/1.1 200 OK"; the text up to, not
// including, CRLF), or nothing when the line is malformed. Strict: exactly "HTTP/1.<digit>",
// one space, three digits 100-599, then the end or a space.
std::optional<int> parse_status_line(std::string_view line);

}  // namespace sentinel::upstream
