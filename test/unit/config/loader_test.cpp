// Loader behaviour: model mapping, defaults, every error class, env, includes, hash, restart.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "config/loader.hpp"
#include "test_support.hpp"

namespace sentinel::config {
namespace {

using testing::dump;
using testing::find_error;
using testing::has_error;
using testing::load;
using testing::temp_dir;

constexpr std::string_view upstream_api = "upstreams { upstream \"api\" { endpoint \"127.0.0.1:9001\"; } }\n";

// ---- mapping and defaults --------------------------------------------------------------

TEST(Loader, EmptyConfigGetsModelDefaults) {
    auto r = load("");
    ASSERT_TRUE(r.ok()) << dump(r);
    const config& c = *r.cfg;
    const config d;
    EXPECT_EQ(c.system.workers, d.system.workers);
    EXPECT_EQ(c.system.graceful_shutdown, std::chrono::seconds(30));
    EXPECT_EQ(c.system.max_connections, 100000u);
    EXPECT_EQ(c.system.max_connections_per_worker, 0u);
    EXPECT_FALSE(c.system.watch_config);
    EXPECT_EQ(c.limits.max_request_line, 8u * 1024);
    EXPECT_EQ(c.limits.max_header_bytes, 32u * 1024);
    EXPECT_EQ(c.limits.max_headers, 100u);
    EXPECT_EQ(c.limits.max_body, 10u * 1024 * 1024);
    EXPECT_EQ(c.timeouts.client_header, std::chrono::seconds(10));
    EXPECT_EQ(c.timeouts.client_body_idle, std::chrono::seconds(30));
    EXPECT_EQ(c.timeouts.keepalive_idle, std::chrono::seconds(75));
    EXPECT_EQ(c.timeouts.upstream_connect, std::chrono::seconds(2));
    EXPECT_EQ(c.timeouts.upstream_response_header, std::chrono::seconds(30));
    EXPECT_EQ(c.timeouts.upstream_body_idle, std::chrono::seconds(30));
    EXPECT_FALSE(c.admin.has_value());
    EXPECT_FALSE(c.observability.access_log.has_value());
    EXPECT_TRUE(c.listeners.empty());
    EXPECT_TRUE(c.routes.empty());
    EXPECT_EQ(c.source_path, "test.kdl");
    EXPECT_TRUE(c.files.empty());
    EXPECT_EQ(c.hash.size(), 16u);
}

TEST(Loader, PartialBlockKeepsOtherDefaults) {
    auto r = load("timeouts { client-header \"3s\"; }\nlimits { max-body \"1GiB\"; }");
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->timeouts.client_header, std::chrono::seconds(3));
    EXPECT_EQ(r.cfg->timeouts.keepalive_idle, std::chrono::seconds(75));
    EXPECT_EQ(r.cfg->limits.max_body, 1ull << 30);
    EXPECT_EQ(r.cfg->limits.max_headers, 100u);
}

TEST(Loader, MapsEveryBlockIntoTheModel) {
    auto r = load(R"(
system { workers 3; graceful-shutdown "0s"; max-connections 10; max-connections-per-worker 4; watch-config #true; }
admin { listen "127.0.0.1:0"; bearer-token "tok"; }
listeners {
    listener "pub" { listen "[::]:8443"; protocol "http"; proxy-protocol #true; trusted-proxies "10.0.0.0/8" "::1/128"; }
}
limits { max-request-line "1KiB"; max-header-bytes "2KiB"; max-headers 7; max-body "512B"; }
timeouts { client-header "1s"; client-body-idle "2s"; keepalive-idle "3s"; upstream-connect "250ms"; upstream-response-header "5m"; upstream-body-idle "1h"; }
routes {
    route "api" {
        priority -5
        match { host "a.com" "*.b.com"; path "/x"; path-prefix "/v1/" "/v2/"; method "GET" "POST"; }
        upstream "api"
        request-headers { set "X-Env" "prod"; add "X-A" "1"; add "X-A" "2"; remove "X-Debug" "X-Other"; }
        response-headers { set "Server" "s"; remove "X-Powered-By"; }
        allow-upgrade #true
    }
    route "fixed" { respond 503 { body "down\n"; header "content-type" "text/plain"; header "retry-after" "5"; } }
    route "bare" { respond 204; }
    route "st" { builtin "status"; }
}
upstreams {
    upstream "api" { endpoint "127.0.0.1:9001"; endpoint "[::1]:9002"; endpoint "svc.local:80"; load-balancing "round-robin"; pool { max-idle 0; idle-timeout "5s"; } }
}
observability { access-log { format "json"; path "-"; } }
)");
    ASSERT_TRUE(r.ok()) << dump(r);
    const config& c = *r.cfg;
    EXPECT_EQ(c.system.workers, 3u);
    EXPECT_EQ(c.system.graceful_shutdown, duration(0));
    EXPECT_EQ(c.system.max_connections, 10u);
    EXPECT_EQ(c.system.max_connections_per_worker, 4u);
    EXPECT_TRUE(c.system.watch_config);
    ASSERT_TRUE(c.admin);
    EXPECT_EQ(c.admin->listen.host, "127.0.0.1");
    EXPECT_EQ(c.admin->listen.port, 0);
    EXPECT_EQ(c.admin->bearer_token, "tok");

    ASSERT_EQ(c.listeners.size(), 1u);
    const auto& l = c.listeners[0];
    EXPECT_EQ(l.id, "pub");
    EXPECT_EQ(l.listen.host, "::");
    EXPECT_EQ(l.listen.port, 8443);
    EXPECT_EQ(l.listen.text, "[::]:8443");
    EXPECT_EQ(l.protocol, listener_protocol::http);
    EXPECT_TRUE(l.proxy_protocol);
    ASSERT_EQ(l.trusted_proxies.size(), 2u);
    EXPECT_EQ(l.trusted_proxies[0].prefix_len, 8);
    EXPECT_TRUE(l.trusted_proxies[1].v6);

    EXPECT_EQ(c.limits.max_request_line, 1024u);
    EXPECT_EQ(c.limits.max_header_bytes, 2048u);
    EXPECT_EQ(c.limits.max_headers, 7u);
    EXPECT_EQ(c.limits.max_body, 512u);
    EXPECT_EQ(c.timeouts.client_header, duration(1000));
    EXPECT_EQ(c.timeouts.client_body_idle, duration(2000));
    EXPECT_EQ(c.timeouts.keepalive_idle, duration(3000));
    EXPECT_EQ(c.timeouts.upstream_connect, duration(250));
    EXPECT_EQ(c.timeouts.upstream_response_header, duration(300'000));
    EXPECT_EQ(c.timeouts.upstream_body_idle, duration(3'600'000));

    ASSERT_EQ(c.routes.size(), 4u);
    const auto& api = c.routes[0];
    EXPECT_EQ(api.id, "api");
    EXPECT_EQ(api.priority, -5);
    EXPECT_EQ(api.match.hosts, (std::vector<std::string>{"a.com", "*.b.com"}));
    EXPECT_EQ(api.match.paths, (std::vector<std::string>{"/x"}));
    EXPECT_EQ(api.match.path_prefixes, (std::vector<std::string>{"/v1/", "/v2/"}));
    EXPECT_EQ(api.match.methods, (std::vector<std::string>{"GET", "POST"}));
    EXPECT_EQ(api.upstream, "api");
    EXPECT_FALSE(api.respond);
    EXPECT_FALSE(api.builtin);
    ASSERT_EQ(api.request_headers.set.size(), 1u);
    EXPECT_EQ(api.request_headers.set[0].name, "X-Env");
    EXPECT_EQ(api.request_headers.set[0].value, "prod");
    ASSERT_EQ(api.request_headers.add.size(), 2u);
    EXPECT_EQ(api.request_headers.add[1].value, "2");
    EXPECT_EQ(api.request_headers.remove, (std::vector<std::string>{"X-Debug", "X-Other"}));
    EXPECT_EQ(api.response_headers.set[0].name, "Server");
    EXPECT_EQ(api.response_headers.remove, (std::vector<std::string>{"X-Powered-By"}));
    EXPECT_TRUE(api.allow_upgrade);

    const auto& fixed = c.routes[1];
    ASSERT_TRUE(fixed.respond);
    EXPECT_EQ(fixed.respond->status, 503);
    EXPECT_EQ(fixed.respond->body, "down\n");
    ASSERT_EQ(fixed.respond->headers.size(), 2u);
    EXPECT_EQ(fixed.respond->headers[1].name, "retry-after");
    EXPECT_FALSE(fixed.allow_upgrade);
    EXPECT_EQ(fixed.priority, 0);
    EXPECT_TRUE(fixed.match.paths.empty());

    ASSERT_TRUE(c.routes[2].respond);
    EXPECT_EQ(c.routes[2].respond->status, 204);
    EXPECT_EQ(c.routes[2].respond->body, "");
    EXPECT_EQ(c.routes[3].builtin, builtin_handler::status);

    ASSERT_EQ(c.upstreams.size(), 1u);
    const auto& up = c.upstreams[0];
    ASSERT_EQ(up.endpoints.size(), 3u);
    EXPECT_EQ(up.endpoints[1].address.host, "::1");
    EXPECT_EQ(up.endpoints[2].address.host, "svc.local");
    EXPECT_EQ(up.endpoints[2].address.port, 80);
    EXPECT_EQ(up.balancing, load_balancing::round_robin);
    EXPECT_EQ(up.pool.max_idle, 0u);
    EXPECT_EQ(up.pool.idle_timeout, duration(5000));

    ASSERT_TRUE(c.observability.access_log);
    EXPECT_EQ(c.observability.access_log->path, "-");
}

TEST(Loader, NestedDefaultsApply) {
    auto r = load(R"(upstreams { upstream "u" { endpoint "127.0.0.1:1"; } }
observability { access-log; })");
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->upstreams[0].pool.max_idle, 64u);
    EXPECT_EQ(r.cfg->upstreams[0].pool.idle_timeout, std::chrono::seconds(60));
    ASSERT_TRUE(r.cfg->observability.access_log);
    EXPECT_EQ(r.cfg->observability.access_log->path, "-");
}

TEST(Loader, EmbeddedDefaultLoads) {
    auto r = load_text(embedded_default(), "<embedded>", ".");
    ASSERT_TRUE(r.ok()) << dump(r);
    const config& c = *r.cfg;
    EXPECT_EQ(c.source_path, "<embedded>");
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].listen.host, "127.0.0.1");
    EXPECT_EQ(c.listeners[0].listen.port, 8080);
    EXPECT_TRUE(c.upstreams.empty());
    ASSERT_EQ(c.routes.size(), 2u);
    EXPECT_EQ(c.routes[0].builtin, builtin_handler::status);
    EXPECT_EQ(c.routes[0].match.paths, (std::vector<std::string>{"/status"}));
    ASSERT_TRUE(c.routes[1].respond);
    EXPECT_EQ(c.routes[1].respond->status, 200);
    EXPECT_NE(c.routes[1].respond->body.find("Sentinel is running"), std::string::npos);
}

TEST(Loader, WebsocketSettings) {
    auto r = load(std::string(R"(routes {
    route "off" { upstream "api"; }
    route "on" { upstream "api"; websocket #true; }
    route "tuned" { upstream "api"; websocket #true { idle-timeout "5m"; max-connections 3; } }
    route "explicit-off" { upstream "api"; websocket #false; allow-upgrade #true; }
}
)") + std::string(upstream_api));
    ASSERT_TRUE(r.ok()) << dump(r);
    const auto& routes = r.cfg->routes;
    EXPECT_FALSE(routes[0].websocket.enabled);
    EXPECT_TRUE(routes[1].websocket.enabled);
    EXPECT_EQ(routes[1].websocket.idle_timeout, std::chrono::seconds(60));
    EXPECT_EQ(routes[1].websocket.max_connections, 10000u);
    EXPECT_TRUE(routes[2].websocket.enabled);
    EXPECT_EQ(routes[2].websocket.idle_timeout, std::chrono::minutes(5));
    EXPECT_EQ(routes[2].websocket.max_connections, 3u);
    EXPECT_FALSE(routes[3].websocket.enabled);
    EXPECT_TRUE(routes[3].allow_upgrade);
}

TEST(Loader, Http2Settings) {
    auto r = load(R"(listeners {
    listener "default" { listen "127.0.0.1:1"; }
    listener "off" { listen "127.0.0.1:2"; http2 #false; }
    listener "tuned" { listen "127.0.0.1:3"; http2 #true { max-concurrent-streams 8; initial-window-size "1MiB"; max-frame-size "32KiB"; max-header-list-size "64KiB"; } }
}
)");
    ASSERT_TRUE(r.ok()) << dump(r);
    const auto& l = r.cfg->listeners;
    EXPECT_TRUE(l[0].http2.enabled);
    EXPECT_EQ(l[0].http2.max_concurrent_streams, 100u);
    EXPECT_EQ(l[0].http2.initial_window_size, 65536u);
    EXPECT_EQ(l[0].http2.max_frame_size, 16384u);
    EXPECT_EQ(l[0].http2.max_header_list_size, 32768u);
    EXPECT_FALSE(l[1].http2.enabled);
    EXPECT_EQ(l[2].http2.max_concurrent_streams, 8u);
    EXPECT_EQ(l[2].http2.initial_window_size, 1024u * 1024u);
    EXPECT_EQ(l[2].http2.max_frame_size, 32768u);
    EXPECT_EQ(l[2].http2.max_header_list_size, 65536u);
}

TEST(Loader, UpstreamProtocol) {
    auto r = load(R"(upstreams {
    upstream "a" { endpoint "127.0.0.1:1"; }
    upstream "b" { endpoint "127.0.0.1:2"; protocol "h2"; health-check { tcp #true; } }
}
)");
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->upstreams[0].protocol, upstream_protocol::http1);
    EXPECT_EQ(r.cfg->upstreams[1].protocol, upstream_protocol::h2);
    // HTTP checks of an h2 upstream speak HTTP/2 (health_checker).
    EXPECT_TRUE(load("upstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; protocol \"h2\"; health-check { http \"/\"; } } }").ok());
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; protocol \"h2c\"; } }"),
                          "did you mean \"h2\"", 1, 61));
    // Upgrades are HTTP/1.1: a route asking for them cannot proxy to an h2 upstream.
    const std::string h2_upstream = "\nupstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; protocol \"h2\" } }";
    EXPECT_TRUE(has_error(load("routes { route \"w\" { upstream \"u\"; websocket #true } }" + h2_upstream),
                          "`websocket` in route \"w\" needs an HTTP/1.1 upstream; upstream \"u\" has protocol \"h2\"", 1, 36));
    EXPECT_TRUE(has_error(load("routes { route \"w\" { upstream \"u\"; allow-upgrade #true } }" + h2_upstream),
                          "`allow-upgrade` in route \"w\" needs an HTTP/1.1 upstream", 1, 36));
    EXPECT_TRUE(load("routes { route \"w\" { upstream \"u\"; websocket #false } }" + h2_upstream).ok());
}

TEST(Errors, Http2SettingsOutOfRange) {
    EXPECT_TRUE(has_error(load("listeners { listener \"a\" { listen \"127.0.0.1:1\"; http2 #false { max-concurrent-streams 5; } } }"),
                          "settings in `http2 #false` have no effect", 1, 50));
    EXPECT_TRUE(has_error(load("listeners { listener \"a\" { listen \"127.0.0.1:1\"; http2 #true { max-frame-size \"8KiB\"; } } }"),
                          "max-frame-size must be between", 1, 64));
    EXPECT_TRUE(has_error(load("listeners { listener \"a\" { listen \"127.0.0.1:1\"; http2 #true { initial-window-size \"4GiB\"; } } }"),
                          "initial-window-size must be at most 2147483647", 1, 64));
    EXPECT_TRUE(has_error(load("listeners { listener \"a\" { listen \"127.0.0.1:1\"; http2 #true { max-concurrent-streams 0; } } }"),
                          "`max-concurrent-streams`: value 0 is out of range", 1, 87));
}

TEST(Errors, WebsocketSettingsThatCannotApply) {
    EXPECT_TRUE(has_error(load(std::string("routes { route \"a\" { upstream \"api\"; websocket #false { max-connections 5; } } }\n") +
                               std::string(upstream_api)),
                          "settings in `websocket #false` have no effect", 1, 38));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { respond 200; websocket #true; } }"),
                          "`websocket` in route \"a\" has no effect without `upstream`", 1, 35));
    EXPECT_TRUE(has_error(load(std::string("routes { route \"a\" { upstream \"api\"; websocket #true { max-connections 0; } } }\n") +
                               std::string(upstream_api)),
                          "`max-connections`: value 0 is out of range", 1, 72));
    EXPECT_TRUE(has_error(load(std::string("routes { route \"a\" { upstream \"api\"; websocket; } }\n") +
                               std::string(upstream_api)),
                          "`websocket` takes exactly 1 argument", 1, 38));
}

// ---- error classes ---------------------------------------------------------------------

TEST(Errors, UnknownTopLevelNode) {
    auto r = load("sytem { workers 1; }");
    EXPECT_TRUE(has_error(r, "unknown node \"sytem\" at the top level", 1, 1));
    EXPECT_NE(find_error(r, "sytem")->message.find("did you mean \"system\"?"), std::string::npos);
}

TEST(Errors, MisspelledNestedKeySuggestsTheRightOne) {
    auto r = load(std::string("routes {\n    route \"a\" {\n        match { pathprefix \"/v1/\"; }\n"
                              "        upstream \"api\"\n    }\n}\n") +
                  std::string(upstream_api));
    EXPECT_TRUE(has_error(r, "unknown node \"pathprefix\" in `match`", 3, 17));
    EXPECT_NE(find_error(r, "pathprefix")->message.find("did you mean \"path-prefix\"?"), std::string::npos)
        << dump(r);
    EXPECT_EQ(r.errors.size(), 1u) << dump(r);
}

TEST(Errors, UnknownNodeDeepInsideUpstream) {
    auto r = load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:5\"; pool { max-idel 3; } } }");
    EXPECT_TRUE(has_error(r, "unknown node \"max-idel\" in `pool`", 1, 57));
    EXPECT_NE(find_error(r, "max-idel")->message.find("did you mean \"max-idle\"?"), std::string::npos);
}

TEST(Errors, UnknownPropertySuggests) {
    auto r = load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:5\" wieght=2; } }");
    EXPECT_TRUE(has_error(r, "`endpoint` has no property \"wieght\"; did you mean \"weight\"?", 1, 49));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:5\" weight=0; } }"),
                          "`endpoint weight=`: value 0 is out of range", 1, 56));
}

TEST(Errors, PropertiesApply) {
    auto r = load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:5\" weight=3; endpoint \"1.2.3.4:6\" backup=#true; } }");
    ASSERT_TRUE(r.ok()) << dump(r);
    const auto& e = r.cfg->upstreams[0].endpoints;
    EXPECT_EQ(e[0].weight, 3u);
    EXPECT_FALSE(e[0].backup);
    EXPECT_EQ(e[1].weight, 1u);
    EXPECT_TRUE(e[1].backup);
}

TEST(Errors, WrongArity) {
    EXPECT_TRUE(has_error(load("system { workers 1 2; }"), "`workers` takes exactly 1 argument (n), found 2", 1, 10));
    EXPECT_TRUE(has_error(load("system { workers; }"), "`workers` takes exactly 1 argument (n), found 0", 1, 10));
    EXPECT_TRUE(has_error(load("system 1 { }"), "`system` takes no arguments, found 1", 1, 1));
    EXPECT_TRUE(has_error(load("routes { route { builtin \"status\"; } }"),
                          "`route` takes exactly 1 argument (id), found 0", 1, 10));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { match { host; }; builtin \"status\"; } }"),
                          "`host` takes at least 1 argument (host, ...), found 0", 1, 30));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { respond { body \"x\"; } } }"),
                          "`respond` takes exactly 1 argument (status), found 0", 1, 22));
    EXPECT_TRUE(has_error(load("system { workers 1 { x 1; } }"), "`workers` takes no children block", 1, 10));
}

TEST(Errors, WrongTypes) {
    EXPECT_TRUE(has_error(load("system { workers \"4\"; }"),
                          "`workers`: expected an integer 0-1024, found the string \"4\"", 1, 18));
    EXPECT_TRUE(has_error(load("system { workers 1.5; }"), "found the number 1.5", 1, 18));
    EXPECT_TRUE(has_error(load("system { watch-config \"yes\"; }"),
                          "`watch-config`: expected a boolean (#true or #false), found the string \"yes\"", 1, 23));
    EXPECT_TRUE(has_error(load("admin { listen 9901; }"), "`listen`: expected a listen address", 1, 16));
    EXPECT_TRUE(has_error(load("system { workers #null; }"), "found #null", 1, 18));
    EXPECT_TRUE(has_error(load("system { workers (u8)4; }"), "type annotations", 1, 18));
}

TEST(Errors, UnknownEnumValueSuggests) {
    auto r = load("upstreams { upstream \"api\" { endpoint \"127.0.0.1:9001\"; load-balancing \"round-robbin\"; } }");
    EXPECT_TRUE(has_error(r, "`load-balancing`: unknown value \"round-robbin\"; expected one of \"round-robin\", \"weighted-round-robin\", "
                             "\"least-connections\", \"random\", \"power-of-two-choices\", \"consistent-hash\", "
                             "\"peak-ewma\"; did you mean \"round-robin\"?",
                          1, 72));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { builtin \"stats\"; } }"),
                          "unknown value \"stats\"; expected one of \"status\"; did you mean \"status\"?", 1, 30));
    auto far = load("listeners { listener \"l\" { listen \"127.0.0.1:1\"; protocol \"h2\"; } }");
    ASSERT_TRUE(find_error(far, "unknown value \"h2\"")) << dump(far);
    EXPECT_EQ(find_error(far, "unknown value \"h2\"")->message.find("did you mean"), std::string::npos);
}

TEST(Errors, OutOfRange) {
    EXPECT_TRUE(has_error(load("system { workers 1025; }"), "value 1025 is out of range; expected an integer 0-1024", 1, 18));
    EXPECT_TRUE(has_error(load("system { workers -1; }"), "value -1 is out of range", 1, 18));
    EXPECT_TRUE(has_error(load("limits { max-headers 0; }"), "value 0 is out of range; expected an integer 1-1000", 1, 22));
    EXPECT_TRUE(has_error(load("limits { max-headers 1001; }"), "out of range", 1, 22));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { priority 1000001; builtin \"status\"; } }"),
                          "expected an integer -1000000-1000000", 1, 31));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { respond 99; } }"), "value 99 is out of range; expected an integer 100-599", 1, 30));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { respond 600; } }"), "value 600 is out of range", 1, 30));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:5\"; pool { max-idle 100001; } } }"),
                          "expected an integer 0-100000", 1, 66));
    EXPECT_TRUE(has_error(load("system { max-connections 99999999999999999999999; }"), "out of range", 1, 26));
    EXPECT_TRUE(has_error(load("limits { max-body \"0MiB\"; }"), "size \"0MiB\" is out of range", 1, 19));
    EXPECT_TRUE(has_error(load("timeouts { client-header \"0s\"; }"),
                          "duration \"0s\" is out of range; expected a duration", 1, 26));
    EXPECT_TRUE(load("system { graceful-shutdown \"0s\"; }").ok());
}

TEST(Errors, BadDurationsAndSizes) {
    EXPECT_TRUE(has_error(load("timeouts { keepalive-idle \"75\"; }"),
                          "`keepalive-idle`: invalid duration \"75\"; expected an integer followed by ms, s, m, h or d", 1, 27));
    EXPECT_TRUE(has_error(load("timeouts { keepalive-idle \"1.5s\"; }"), "invalid duration \"1.5s\"", 1, 27));
    EXPECT_TRUE(has_error(load("timeouts { keepalive-idle 75; }"),
                          "found the integer 75 (durations need a unit, e.g. \"75s\")", 1, 27));
    EXPECT_TRUE(has_error(load("limits { max-body \"10MB\"; }"),
                          "`max-body`: invalid size \"10MB\"; expected an integer followed by B, KiB, MiB or GiB", 1, 19));
    EXPECT_TRUE(has_error(load("limits { max-body 1024; }"), "(sizes need a unit, e.g. \"1024KiB\")", 1, 19));
}

TEST(Errors, UnknownProperty) {
    EXPECT_TRUE(has_error(load("system { workers 1 cores=2; }"), "`workers` has no property \"cores\"", 1, 20));
    EXPECT_TRUE(has_error(load("system mode=\"x\" { }"), "`system` has no property \"mode\"", 1, 8));
}

TEST(Errors, DuplicateIds) {
    auto l = load("listeners {\n listener \"a\" { listen \"127.0.0.1:1\"; }\n listener \"a\" { listen \"127.0.0.1:2\"; }\n}");
    EXPECT_TRUE(has_error(l, "duplicate listener id \"a\" (first defined at test.kdl:2:11)", 3, 11));
    auto r = load("routes {\n route \"r\" { builtin \"status\"; }\n route \"r\" { builtin \"status\"; }\n}");
    EXPECT_TRUE(has_error(r, "duplicate route id \"r\" (first defined at test.kdl:2:8)", 3, 8));
    auto u = load("upstreams {\n upstream \"u\" { endpoint \"1.1.1.1:1\"; }\n upstream \"u\" { endpoint \"1.1.1.1:2\"; }\n}");
    EXPECT_TRUE(has_error(u, "duplicate upstream id \"u\" (first defined at test.kdl:2:11)", 3, 11));
}

TEST(Errors, DuplicateSettingAndBlock) {
    EXPECT_TRUE(has_error(load("system {\n workers 1\n workers 2\n}"), "duplicate `workers` (first at test.kdl:2:2)", 3, 2));
    EXPECT_TRUE(has_error(load("system { }\nsystem { }"), "duplicate `system` (first at test.kdl:1:1)", 2, 1));
    EXPECT_TRUE(has_error(load("routes { route \"a\" { match { host \"a\"; host \"b\"; }; builtin \"status\"; } }"),
                          "duplicate `host` (first at test.kdl:1:30); it may appear only once, with several values "
                          "as arguments",
                          1, 40));
}

TEST(Errors, DanglingReferenceSuggests) {
    auto r = load(std::string("routes { route \"a\" { upstream \"apii\"; } }\n") + std::string(upstream_api));
    EXPECT_TRUE(has_error(r, "unknown upstream \"apii\"; did you mean \"api\"?", 1, 31));
    auto none = load("routes { route \"a\" { upstream \"x\"; } }");
    EXPECT_TRUE(has_error(none, "unknown upstream \"x\"; no upstream is defined", 1, 31));
}

TEST(Errors, ListenerAddressConflicts) {
    auto same = load("listeners {\n listener \"a\" { listen \"127.0.0.1:8080\"; }\n listener \"b\" { listen \"127.0.0.1:8080\"; }\n}");
    EXPECT_TRUE(has_error(same, "listener \"b\" listens on \"127.0.0.1:8080\", which overlaps listener \"a\"", 3, 17));
    auto wild = load("listeners {\n listener \"a\" { listen \"0.0.0.0:8080\"; }\n listener \"b\" { listen \"10.0.0.1:8080\"; }\n}");
    EXPECT_TRUE(has_error(wild, "overlaps listener \"a\" on \"0.0.0.0:8080\"", 3, 17));
    auto admin = load("admin { listen \"127.0.0.1:9901\"; }\nlisteners { listener \"a\" { listen \"127.0.0.1:9901\"; } }");
    EXPECT_TRUE(has_error(admin, "listener \"a\" listens on \"127.0.0.1:9901\", which overlaps admin", 2, 28));
    // Port 0 = any free port: never a conflict. Different ports or hosts: fine.
    EXPECT_TRUE(load("listeners { listener \"a\" { listen \"127.0.0.1:0\"; }; listener \"b\" { listen \"127.0.0.1:0\"; } }").ok());
    EXPECT_TRUE(load("listeners { listener \"a\" { listen \"127.0.0.1:1\"; }; listener \"b\" { listen \"127.0.0.2:1\"; } }").ok());
    EXPECT_TRUE(load("listeners { listener \"a\" { listen \"[::1]:1\"; }; listener \"b\" { listen \"0.0.0.0:1\"; } }").ok());
}

TEST(Errors, RouteNeedsExactlyOneAction) {
    auto none = load("routes {\n route \"a\" { match { path \"/\"; } }\n}");
    EXPECT_TRUE(has_error(none, "route \"a\" has no action; expected exactly one of `upstream`, `respond`, `redirect` or `builtin`", 2, 2));
    auto two = load(std::string("routes {\n route \"a\" { upstream \"api\"; respond 200; }\n}\n") + std::string(upstream_api));
    EXPECT_TRUE(has_error(two, "route \"a\" has 2 actions (`upstream`, `respond`)", 2, 2));
    auto three = load(std::string("routes { route \"a\" { upstream \"api\"; respond 200; builtin \"status\"; } }\n") +
                      std::string(upstream_api));
    EXPECT_TRUE(has_error(three, "has 3 actions", 1, 10));
    auto repeated = load(std::string("routes { route \"a\" { upstream \"api\"; upstream \"api\"; } }\n") +
                         std::string(upstream_api));
    EXPECT_TRUE(has_error(repeated, "duplicate `upstream`", 1, 38));
    EXPECT_EQ(repeated.errors.size(), 1u) << dump(repeated);
}

TEST(Errors, BadAddressesAndCidrs) {
    EXPECT_TRUE(has_error(load("admin { listen \"127.0.0.1\"; }"), "invalid address \"127.0.0.1\": missing \":port\"", 1, 16));
    EXPECT_TRUE(has_error(load("admin { listen \"::1:80\"; }"), "must be in brackets", 1, 16));
    EXPECT_TRUE(has_error(load("admin { listen \"localhost:80\"; }"), "must be an IP literal", 1, 16));
    EXPECT_TRUE(has_error(load("admin { listen \"1.2.3.4:70000\"; }"), "port \"70000\" is not a number from 0 to 65535", 1, 16));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"1.2.3.4:0\"; } }"), "port must be 1-65535", 1, 37));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"bad host:80\"; } }"),
                          "\"bad host\" is not a valid host name", 1, 37));
    EXPECT_TRUE(has_error(load("listeners { listener \"l\" { listen \"127.0.0.1:1\"; trusted-proxies \"10.0.0.1/8\"; } }"),
                          "invalid CIDR \"10.0.0.1/8\": host bits are set", 1, 66));
    EXPECT_TRUE(has_error(load("listeners { listener \"l\" { listen \"127.0.0.1:1\"; trusted-proxies \"10.0.0.0/8\" \"fe80::/200\"; } }"),
                          "invalid CIDR \"fe80::/200\"", 1, 79));
}

TEST(Errors, BadHttpValues) {
    auto route = [](std::string body) { return load("routes { route \"a\" { " + body + " builtin \"status\"; } }"); };
    EXPECT_TRUE(has_error(route("match { path \"v1\"; };"), "invalid path \"v1\"; expected a path starting with \"/\"", 1, 35));
    EXPECT_TRUE(has_error(route("match { method \"get\"; };"), "invalid method \"get\"", 1, 37));
    EXPECT_TRUE(has_error(route("match { host \"a.com:80\"; };"), "invalid host \"a.com:80\"", 1, 35));
    EXPECT_TRUE(has_error(route("match { host \"a.*.com\"; };"), "invalid host", 1, 35));
    EXPECT_TRUE(has_error(route("request-headers { set \"X Y\" \"1\"; };"), "invalid header name \"X Y\"", 1, 44));
    EXPECT_TRUE(has_error(route("request-headers { set \"X\" \"a\\r\\nB: c\"; };"),
                          "header value must not contain CR, LF or NUL", 1, 48));
    EXPECT_TRUE(has_error(route("request-headers { set \"X\"; };"), "`set` takes exactly 2 arguments (name, value), found 1", 1, 40));
}

TEST(Errors, MissingRequired) {
    EXPECT_TRUE(has_error(load("admin { bearer-token \"x\"; }"), "`admin` is missing required `listen`", 1, 1));
    EXPECT_TRUE(has_error(load("listeners { listener \"l\" { protocol \"http\"; } }"),
                          "`listener \"l\"` is missing required `listen`", 1, 13));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { } }"), "`upstream \"u\"` is missing required `endpoint`", 1, 13));
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\"; }"), "`upstream \"u\"` is missing required `endpoint`", 1, 13));
}

TEST(Errors, ReportsEveryErrorNotJustTheFirst) {
    auto r = load(R"(system { workers 5000; bogus 1; }
limits { max-body "10MB"; }
routes { route "a" { upstream "nope"; } ; route "b" { } }
upstreams { upstream "u" { load-balancing "randomly"; } }
)");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.errors.size(), 7u) << dump(r);
    // Sorted by position.
    for (std::size_t i = 1; i < r.errors.size(); ++i)
        EXPECT_LE(r.errors[i - 1].line, r.errors[i].line) << dump(r);
}

TEST(Errors, KdlSyntaxErrorHasPosition) {
    auto r = load("system {\n  workers 1\n");
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].file, "test.kdl");
    EXPECT_GE(r.errors[0].line, 2u);
}

TEST(Diagnostic, FormatShowsExcerptAndCaret) {
    auto r = load("system {\n    workers \"4\"\n}\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].format(),
              "test.kdl:2:13: error: `workers`: expected an integer 0-1024, found the string \"4\"\n"
              "      workers \"4\"\n"
              "              ^");
    diagnostic bare;
    bare.file = "x.kdl";
    bare.message = "cannot read config file: No such file or directory";
    EXPECT_EQ(bare.format(), "x.kdl: error: cannot read config file: No such file or directory");
}

// ---- environment substitution ----------------------------------------------------------

TEST(Env, SubstitutesVariablesDefaultsAndEscapes) {
    ::setenv("SENTINEL_TEST_TOKEN", "tok-123", 1);
    ::setenv("SENTINEL_TEST_EMPTY", "", 1);
    ::unsetenv("SENTINEL_TEST_UNSET");
    auto r = load(R"(admin { listen "${SENTINEL_TEST_UNSET:-127.0.0.1}:9901"; bearer-token "a-${SENTINEL_TEST_TOKEN}-b"; }
routes { route "r" { respond 200 { body "$$HOME costs $5 ${SENTINEL_TEST_EMPTY:-dflt}[${SENTINEL_TEST_EMPTY}]"; } } })");
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->admin->listen.host, "127.0.0.1");
    EXPECT_EQ(r.cfg->admin->bearer_token, "a-tok-123-b");
    EXPECT_EQ(r.cfg->routes[0].respond->body, "$HOME costs $5 dflt[]");
}

TEST(Env, UnsetVariableIsAnErrorAtTheValue) {
    ::unsetenv("SENTINEL_TEST_UNSET");
    auto r = load("admin {\n  listen \"127.0.0.1:1\"\n  bearer-token \"${SENTINEL_TEST_UNSET}\"\n}");
    EXPECT_TRUE(has_error(r, "environment variable \"SENTINEL_TEST_UNSET\" is not set", 3, 16));
    EXPECT_TRUE(has_error(load("admin { listen \"${1BAD}\"; }"), "invalid environment variable reference \"${1BAD}\"", 1, 16));
    EXPECT_TRUE(has_error(load("admin { listen \"${OPEN\"; }"), "unterminated \"${\"", 1, 16));
}

TEST(Env, ValidatesTheSubstitutedValue) {
    ::setenv("SENTINEL_TEST_DUR", "ten seconds", 1);
    EXPECT_TRUE(has_error(load("timeouts { client-header \"${SENTINEL_TEST_DUR}\"; }"),
                          "invalid duration \"ten seconds\"", 1, 26));
}

// ---- includes ---------------------------------------------------------------------------

TEST(Include, MergesBlocksAndResolvesRelativePaths) {
    temp_dir dir;
    dir.write("conf.d/upstreams.kdl", "upstreams { upstream \"api\" { endpoint \"127.0.0.1:9001\"; } }\n"
                                     "routes { route \"b\" { upstream \"api\"; } }\n");
    auto main = dir.write("main.kdl", "include \"conf.d/upstreams.kdl\"\n"
                                      "routes { route \"a\" { builtin \"status\"; } }\n"
                                      "routes { route \"c\" { respond 204; } }\n");
    auto r = load_file(main);
    ASSERT_TRUE(r.ok()) << dump(r);
    ASSERT_EQ(r.cfg->routes.size(), 3u);
    EXPECT_EQ(r.cfg->routes[0].id, "b");  // the include comes first in the main file
    EXPECT_EQ(r.cfg->routes[1].id, "a");
    EXPECT_EQ(r.cfg->routes[2].id, "c");
    ASSERT_EQ(r.cfg->files.size(), 2u);
    EXPECT_EQ(r.cfg->files[0], main);
    EXPECT_EQ(r.cfg->files[1], dir.path() + "/conf.d/upstreams.kdl");
    EXPECT_EQ(r.cfg->source_path, main);
}

TEST(Include, NestedIncludeIsRelativeToTheIncludingFile) {
    temp_dir dir;
    dir.write("a/b/leaf.kdl", "system { workers 2; }\n");
    dir.write("a/mid.kdl", "include \"b/leaf.kdl\"\n");
    auto r = load_text("include \"a/mid.kdl\"", "inline.kdl", dir.path());
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->system.workers, 2u);
    EXPECT_EQ(r.cfg->files.size(), 2u);
}

TEST(Include, CycleIsRejected) {
    temp_dir dir;
    dir.write("b.kdl", "include \"a.kdl\"\n");
    auto a = dir.write("a.kdl", "include \"b.kdl\"\n");
    auto r = load_file(a);
    ASSERT_FALSE(r.ok());
    const diagnostic* d = find_error(r, "include cycle");
    ASSERT_NE(d, nullptr) << dump(r);
    EXPECT_EQ(d->file, dir.path() + "/b.kdl");
    EXPECT_EQ(d->line, 1u);
    EXPECT_EQ(d->column, 9u);
    EXPECT_NE(d->message.find("a.kdl -> " + std::filesystem::canonical(dir.path()).string() + "/b.kdl -> "),
              std::string::npos)
        << d->message;
}

TEST(Include, SelfIncludeAndRepeatedIncludeAreRejected) {
    temp_dir dir;
    auto self = dir.write("self.kdl", "include \"self.kdl\"\n");
    EXPECT_TRUE(has_error(load_file(self), "include cycle", 1, 9));
    dir.write("x.kdl", "system { workers 1; }\n");
    auto twice = dir.write("twice.kdl", "include \"x.kdl\"\ninclude \"x.kdl\"\n");
    EXPECT_TRUE(has_error(load_file(twice), "is already included (at " + twice + ":1:9)", 2, 9));
}

TEST(Include, ErrorsPointIntoTheIncludedFile) {
    temp_dir dir;
    dir.write("inc.kdl", "// included\nsystem { workers \"x\"; }\n");
    auto main = dir.write("main.kdl", "include \"inc.kdl\"\nsystem { workers 1; }\n");
    auto r = load_file(main);
    ASSERT_EQ(r.errors.size(), 2u) << dump(r);
    EXPECT_EQ(r.errors[0].file, main);
    EXPECT_NE(r.errors[0].message.find("duplicate `system` (first at " + dir.path() + "/inc.kdl:2:1)"),
              std::string::npos)
        << dump(r);
    EXPECT_EQ(r.errors[1].file, dir.path() + "/inc.kdl");
    EXPECT_EQ(r.errors[1].line, 2u);
    EXPECT_EQ(r.errors[1].excerpt, "system { workers \"x\"; }");
}

TEST(Include, MissingFileAndMisuse) {
    temp_dir dir;
    auto main = dir.write("main.kdl", "include \"nope.kdl\"\nsystem { include \"x.kdl\"; }\ninclude 1\n");
    auto r = load_file(main);
    EXPECT_TRUE(has_error(r, "cannot read included file \"" + dir.path() + "/nope.kdl\"", 1, 9));
    EXPECT_TRUE(has_error(r, "`include` takes exactly 1 argument", 3, 1));
    auto nested = load("system { include \"x.kdl\"; }");
    EXPECT_TRUE(has_error(nested, "unknown node \"include\" in `system`", 1, 10));
}

TEST(Include, SyntaxErrorInIncludedFile) {
    temp_dir dir;
    dir.write("bad.kdl", "routes {\n");
    auto r = load_text("include \"bad.kdl\"", "main.kdl", dir.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.errors[0].file, dir.path() + "/bad.kdl");
}

// ---- filesystem checks ------------------------------------------------------------------

TEST(AccessLog, RelativePathResolvesAgainstTheConfigFile) {
    temp_dir dir;
    auto r = load("observability { access-log { path \"logs/../access.log\"; } }", dir.path());
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->observability.access_log->path, dir.path() + "/access.log");
}

TEST(AccessLog, DirectoryMustExistAndBeWritable) {
    temp_dir dir;
    EXPECT_TRUE(has_error(load("observability { access-log { path \"missing/access.log\"; } }", dir.path()),
                          "the directory of \"" + dir.path() + "/missing/access.log\" does not exist", 1, 35));
    EXPECT_TRUE(has_error(load("observability { access-log { path \".\"; } }", dir.path()), "is a directory", 1, 35));
    if (::geteuid() != 0) {  // root writes anywhere
        std::filesystem::create_directory(dir.path() + "/ro");
        std::filesystem::permissions(dir.path() + "/ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
        EXPECT_TRUE(has_error(load("observability { access-log { path \"ro/a.log\"; } }", dir.path()), "is not writable", 1, 35));
        std::filesystem::permissions(dir.path() + "/ro", std::filesystem::perms::owner_all);
    }
}

// ---- hash and restart detection --------------------------------------------------------

TEST(Hash, IgnoresFormattingAndTracksValues) {
    auto a = load("system { workers 2; }");
    auto b = load("// comment\nsystem {\n    workers 2\n}\n");
    auto c = load("system { workers 3; }");
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(a.cfg->hash, b.cfg->hash);
    EXPECT_NE(a.cfg->hash, c.cfg->hash);
    ::setenv("SENTINEL_TEST_W", "x", 1);
    auto d1 = load("admin { listen \"127.0.0.1:1\"; bearer-token \"${SENTINEL_TEST_W}\"; }");
    ::setenv("SENTINEL_TEST_W", "y", 1);
    auto d2 = load("admin { listen \"127.0.0.1:1\"; bearer-token \"${SENTINEL_TEST_W}\"; }");
    ASSERT_TRUE(d1.ok() && d2.ok());
    EXPECT_NE(d1.cfg->hash, d2.cfg->hash);  // the substituted document is hashed
}

TEST(Hash, SplitBlocksHashLikeOneBlock) {
    auto split = load("routes { route \"a\" { builtin \"status\"; } }\nroutes { route \"b\" { builtin \"status\"; } }");
    auto one = load("routes { route \"a\" { builtin \"status\"; }; route \"b\" { builtin \"status\"; } }");
    ASSERT_TRUE(split.ok() && one.ok());
    EXPECT_EQ(split.cfg->hash, one.cfg->hash);
}

TEST(Restart, ReportsRestartOnlyKeys) {
    auto base = load("system { workers 2; }\nadmin { listen \"127.0.0.1:9901\"; }");
    auto routes_only = load("system { workers 2; graceful-shutdown \"5s\"; }\nadmin { listen \"127.0.0.1:9901\"; bearer-token \"t\"; }\n"
                            "routes { route \"r\" { builtin \"status\"; } }");
    auto workers = load("system { workers 4; }\nadmin { listen \"127.0.0.1:9901\"; }");
    auto admin_moved = load("system { workers 2; }\nadmin { listen \"127.0.0.1:9902\"; }");
    auto no_admin = load("system { workers 2; }");
    ASSERT_TRUE(base.ok() && routes_only.ok() && workers.ok() && admin_moved.ok() && no_admin.ok());
    EXPECT_TRUE(restart_required_changes(*base.cfg, *routes_only.cfg).empty());
    EXPECT_EQ(restart_required_changes(*base.cfg, *workers.cfg), std::vector<std::string>{"system.workers"});
    EXPECT_EQ(restart_required_changes(*base.cfg, *admin_moved.cfg), std::vector<std::string>{"admin.listen"});
    EXPECT_EQ(restart_required_changes(*base.cfg, *no_admin.cfg), std::vector<std::string>{"admin"});
    EXPECT_EQ(restart_required_changes(*no_admin.cfg, *base.cfg), std::vector<std::string>{"admin"});
}

TEST(LoadFile, MissingFile) {
    auto r = load_file("/nonexistent/sentinel.kdl");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].file, "/nonexistent/sentinel.kdl");
    EXPECT_NE(r.errors[0].message.find("cannot read config file"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::config

namespace sentinel::config {
namespace {

TEST(Redaction, SecretsAndEnvironmentValuesNeverShow) {
    ::setenv("SENTINEL_TEST_UPSTREAM", "10.9.9.9:80", 1);
    auto r = load("admin { listen \"127.0.0.1:9901\"; bearer-token \"s3cret-token\"; }\n"
                  "upstreams { upstream \"api\" { endpoint \"${SENTINEL_TEST_UPSTREAM}\"; endpoint \"${SENTINEL_UNSET_X:-10.0.0.1:80}\"; } }\n");
    ASSERT_TRUE(r.ok()) << dump(r);
    const std::string& text = r.cfg->redacted_text;
    EXPECT_EQ(text.find("s3cret-token"), std::string::npos) << text;
    EXPECT_EQ(text.find("10.9.9.9"), std::string::npos) << text;
    EXPECT_NE(text.find("<redacted>"), std::string::npos) << text;
    EXPECT_NE(text.find("10.0.0.1:80"), std::string::npos) << text;  // a default from the file is not secret
    EXPECT_NE(text.find("upstream api"), std::string::npos) << text;
    // The hash still covers the real values: a new token is a new config.
    auto other = load("admin { listen \"127.0.0.1:9901\"; bearer-token \"other\"; }\n"
                      "upstreams { upstream \"api\" { endpoint \"${SENTINEL_TEST_UPSTREAM}\"; endpoint \"${SENTINEL_UNSET_X:-10.0.0.1:80}\"; } }\n");
    ASSERT_TRUE(other.ok());
    EXPECT_NE(r.cfg->hash, other.cfg->hash);
    EXPECT_EQ(r.cfg->redacted_text, other.cfg->redacted_text);
    ::unsetenv("SENTINEL_TEST_UPSTREAM");
}

}  // namespace
}  // namespace sentinel::config
