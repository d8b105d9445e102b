// The schema table. Add a key here (with its `apply`) and it is validated, defaulted and
// documented; there is no other place to add one.
#include "config/schema/schema.hpp"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "config/schema/builders.hpp"
#include "config/validator.hpp"
#include "config/values.hpp"

namespace sentinel::config::schema {
namespace {

using namespace builders;

// ---- finish hooks (checks that need a whole block) --------------------------------------

void record_listen(check_context& ctx, const kdl::node& node, const socket_address& addr,
                   std::string what) {
    const kdl::node* listen = child_named(node, "listen");
    if (listen == nullptr || addr.text.empty()) return;
    ctx.listens.push_back({std::move(what), addr, {ctx.file, listen->pos}});
}

void finish_listener(check_context& ctx, void* target, const kdl::node& node) {
    auto& l = *static_cast<listener_config*>(target);
    record_listen(ctx, node, l.listen, "listener \"" + l.id + "\"");
    if (l.protocol == listener_protocol::https && !l.tls)
        ctx.error(node.pos, "listener \"" + l.id + "\" has protocol \"https\" but no `tls` block");
    if (l.protocol != listener_protocol::https && l.tls)
        ctx.error(child_named(node, "tls")->pos,
                  "listener \"" + l.id + "\": `tls` needs protocol \"https\"");
}

void finish_admin(check_context& ctx, void* target, const kdl::node& node) {
    record_listen(ctx, node, static_cast<admin_config*>(target)->listen, "admin");
}

void finish_route(check_context& ctx, void* target, const kdl::node& node) {
    auto& r = *static_cast<route_config*>(target);
    std::vector<std::string> actions;
    for (const auto& c : node.children)
        if ((c.name == "upstream" || c.name == "respond" || c.name == "builtin" || c.name == "redirect") &&
            std::find(actions.begin(), actions.end(), c.name) == actions.end())
            actions.push_back(c.name);  // a repeated action is reported as a duplicate key
    if (actions.empty()) {
        ctx.error(node.pos, "route \"" + r.id +
                                "\" has no action; expected exactly one of `upstream`, `respond`, `redirect` or `builtin`");
    } else if (actions.size() > 1) {
        std::string list;
        for (const auto& a : actions) list += (list.empty() ? "`" : ", `") + a + "`";
        ctx.error(node.pos, "route \"" + r.id + "\" has " + std::to_string(actions.size()) +
                                " actions (" + list +
                                "); expected exactly one of `upstream`, `respond`, `redirect` or `builtin`");
    }
    // Settings that only make sense when proxying must not be silently ignored.
    if (!r.upstream) {
        for (const char* k : {"rewrite", "retry", "allow-upgrade", "websocket"})
            if (const kdl::node* c = child_named(node, k))
                ctx.error(c->pos, "`" + std::string(k) + "` in route \"" + r.id +
                                      "\" has no effect without `upstream`; remove it or proxy the route");
    }
    if (r.upstream) {
        const std::pair<const char*, bool> upgrades[] = {{"websocket", r.websocket.enabled},
                                                         {"allow-upgrade", r.allow_upgrade}};
        for (const auto& [k, on] : upgrades)
            if (const kdl::node* c = child_named(node, k); c != nullptr && on)
                ctx.upgrade_routes.push_back({r.id, *r.upstream, k, {ctx.file, c->pos}});
    }
    if (r.agents_concurrent && r.agents.size() < 2)
        ctx.error(child_named(node, "agents-concurrent")->pos,
                  "`agents-concurrent` in route \"" + r.id + "\" needs at least two `agents`");
    for (std::size_t i = 0; i < r.agents.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (r.agents[i] == r.agents[j])
                ctx.error(child_named(node, "agents")->pos,
                          "agent \"" + r.agents[i] + "\" is listed twice in route \"" + r.id + "\"");
    if (r.retry.attempts > 1 && r.retry.on.empty() && r.retry.on_status.empty())
        r.retry.on.push_back(retry_condition::connect_failure);
    if (r.retry.backoff_max < r.retry.backoff) {
        if (const kdl::node* c = child_named(node, "retry"))
            ctx.error(c->pos, "retry backoff max= must not be below the base backoff");
    }
}

void finish_websocket(check_context& ctx, void* target, const kdl::node& node) {
    const auto& w = *static_cast<websocket_config*>(target);
    if (!w.enabled && !node.children.empty())
        ctx.error(node.pos, "settings in `websocket #false` have no effect; write `websocket #true` or remove them");
}

void finish_http2(check_context& ctx, void* target, const kdl::node& node) {
    const auto& h = *static_cast<http2_config*>(target);
    if (!h.enabled && !node.children.empty())
        ctx.error(node.pos, "settings in `http2 #false` have no effect; write `http2 #true` or remove them");
    if (const kdl::node* w = child_named(node, "initial-window-size"); w && h.initial_window_size > 0x7fffffff)
        ctx.error(w->pos, "initial-window-size must be at most 2147483647 bytes (RFC 9113 §6.5.2)");
    if (const kdl::node* f = child_named(node, "max-frame-size");
        f && (h.max_frame_size < 16384 || h.max_frame_size > 16777215))
        ctx.error(f->pos, "max-frame-size must be between \"16KiB\" and 16777215 bytes (RFC 9113 §6.5.2)");
    if (const kdl::node* l = child_named(node, "max-header-list-size"); l && h.max_header_list_size > 0xffffffffu)
        ctx.error(l->pos, "max-header-list-size must be below 4GiB");
}

void finish_upstream(check_context& ctx, void* target, const kdl::node& node) {
    auto& u = *static_cast<upstream_config*>(target);
    const kdl::node* hk = child_named(node, "hash-key");
    if (hk != nullptr && u.balancing != load_balancing::consistent_hash)
        ctx.error(hk->pos, "`hash-key` in upstream \"" + u.id +
                               "\" is used only with load-balancing \"consistent-hash\"");
    if (u.hash_key) {
        const bool named = u.hash_key->source == hash_source::header || u.hash_key->source == hash_source::cookie ||
                           u.hash_key->source == hash_source::query;
        if (named && u.hash_key->name.empty())
            ctx.error(hk->pos, "`hash-key` from a header, cookie or query parameter needs name=\"...\"");
        if (!named && !u.hash_key->name.empty())
            ctx.error(hk->pos, "`hash-key` name= applies only to header, cookie and query sources");
    }
    if (u.backup_upstream && *u.backup_upstream == u.id) {
        if (const kdl::node* b = child_named(node, "backup-upstream"))
            ctx.error(b->pos, "upstream \"" + u.id + "\" cannot be its own backup-upstream");
    }
    bool primary = false;
    for (const auto& e : u.endpoints) primary = primary || !e.backup;
    if (!u.endpoints.empty() && !primary)
        ctx.error(node.pos, "upstream \"" + u.id + "\" has only backup endpoints; at least one must be primary");
}

void finish_health_check(check_context& ctx, void* target, const kdl::node& node) {
    auto& h = *static_cast<health_check_config*>(target);
    const kdl::node* http = child_named(node, "http");
    const kdl::node* tcp = child_named(node, "tcp");
    if ((http != nullptr) == (tcp != nullptr && h.type == health_check_config::kind::tcp)) {
        ctx.error(node.pos, "`health-check` needs exactly one of `http \"/path\"` or `tcp #true`");
        return;
    }
    if (h.type == health_check_config::kind::tcp) {
        for (const char* k : {"expect-status", "host"})
            if (const kdl::node* c = child_named(node, k))
                ctx.error(c->pos, "`" + std::string(k) + "` applies only to `http` health checks");
    }
    if (h.timeout > h.interval)
        ctx.error(node.pos, "health-check timeout must not exceed its interval");
}

void finish_access_log(check_context& ctx, void* target, const kdl::node& node);
void finish_audit_log(check_context& ctx, void* target, const kdl::node& node);
void finish_tracing(check_context& ctx, void* target, const kdl::node& node);

}  // namespace

// Defined in validator.cpp (needs the filesystem); declared here to keep the table readable.
void check_output_path(check_context& ctx, const std::string& path, const kdl::node& node);

namespace {
// Config names of access_log_field, in enum order.
constexpr std::string_view access_log_field_names[] = {
    "timestamp", "request-id", "trace-id", "client", "listener", "method", "host", "path", "query",
    "status", "bytes-sent", "bytes-received", "duration", "upstream-connect-duration",
    "upstream-header-duration", "upstream", "route", "tls-version", "user-agent", "retries", "agent-metadata",
    "protocol"};
static_assert(std::size(access_log_field_names) == static_cast<std::size_t>(access_log_field::count_));

void finish_access_log(check_context& ctx, void* target, const kdl::node& node) {
    auto& a = *static_cast<access_log_config*>(target);
    check_output_path(ctx, a.path, node);
    for (std::size_t i = 0; i < a.fields.size(); ++i) {
        if (std::find(a.fields.begin(), a.fields.begin() + static_cast<std::ptrdiff_t>(i), a.fields[i]) ==
            a.fields.begin() + static_cast<std::ptrdiff_t>(i))
            continue;
        ctx.error(child_named(node, "fields")->pos,
                  "access-log field \"" +
                      std::string(access_log_field_names[static_cast<std::size_t>(a.fields[i])]) +
                      "\" is listed twice");
        break;
    }
}

void finish_audit_log(check_context& ctx, void* target, const kdl::node& node) {
    check_output_path(ctx, static_cast<audit_log_config*>(target)->path, node);
}

void finish_tracing(check_context& ctx, void* target, const kdl::node& node) {
    const auto& t = *static_cast<tracing_config*>(target);
    if (t.batch_size > t.max_queue_spans)
        ctx.error(child_named(node, "batch-size")->pos, "tracing batch-size must not exceed max-queue-spans");
    if (t.service_name.empty()) ctx.error(child_named(node, "service-name")->pos, "tracing service-name must not be empty");
}

std::vector<node_spec> header_op_children() {
    auto set_key = key("set", header_name(), &push_header<&header_ops::set>)
                       .arg(header_value_v())
                       .repeat()
                       .with_doc("Replaces every value of header `name` with `value` (adds it when absent).");
    auto add_key = key("add", header_name(), &push_header<&header_ops::add>)
                       .arg(header_value_v())
                       .repeat()
                       .with_doc("Appends a `name: value` header, keeping existing values.");
    auto remove_key = key("remove", header_name(), set<&header_ops::remove>())
                          .many()
                          .with_doc("Removes every header with one of these names (case-insensitive).");
    return {set_key, add_key, remove_key};
}

template <auto Member, value_match_kind Kind>
void push_matcher(void* target, args_view a) {
    value_matcher m;
    m.name = a[0].str;
    m.kind = Kind;
    for (std::size_t i = 1; i < a.size(); ++i) m.values.push_back(a[i].str);
    (static_cast<route_match*>(target)->*Member).push_back(std::move(m));
}

template <auto Member>
node_spec value_matcher_key(std::string_view name, value_match_kind kind, std::string_view doc) {
    constexpr bool header = Member == &route_match::headers;
    node_spec n;
    n.name = name;
    n.args.push_back(header ? header_name() : string("name"));
    switch (kind) {
    case value_match_kind::exact:
        n.apply = &push_matcher<Member, value_match_kind::exact>;
        n.args.push_back(header ? header_value_v() : string("value"));
        n.variadic = true;
        break;
    case value_match_kind::regex:
        n.apply = &push_matcher<Member, value_match_kind::regex>;
        n.args.push_back(regex());
        n.variadic = true;
        break;
    case value_match_kind::present: n.apply = &push_matcher<Member, value_match_kind::present>; break;
    case value_match_kind::absent: n.apply = &push_matcher<Member, value_match_kind::absent>; break;
    }
    n.repeatable = true;
    n.doc = doc;
    return n;
}

node_spec build_root() {
    // ---- system
    auto system = block("system", &enter_member<&config::system>, {
        key("workers", integer(0, 1024), set<&system_config::workers>())
            .def(kint(0))
            .needs_restart([](const config& a, const config& b) { return a.system.workers != b.system.workers; })
            .with_doc("Worker threads, each with its own event loop; 0 = one per CPU core."),
        key("graceful-shutdown", duration_v(0), set<&system_config::graceful_shutdown>())
            .def(kstr("30s"))
            .with_doc("How long a shutdown or drain waits for in-flight requests before closing connections; \"0s\" closes at once."),
        key("max-connections", integer(1, 10'000'000), set<&system_config::max_connections>())
            .def(kint(100000))
            .with_doc("Most downstream connections open at once in the whole process."),
        key("max-connections-per-worker", integer(0, 10'000'000), set<&system_config::max_connections_per_worker>())
            .def(kint(0))
            .with_doc("Most downstream connections open at once per worker; 0 = max-connections divided by the worker count, rounded up."),
        key("watch-config", boolean(), set<&system_config::watch_config>())
            .def(kbool(false))
            .with_doc("Reload when the config file or any included file changes."),
    }).implied().with_doc("Process-wide settings.");

    // ---- admin
    auto admin = block("admin", &enter_member<&config::admin>, {
        key("listen", listen_address(), set<&admin_config::listen>())
            .req()
            .needs_restart([](const config& a, const config& b) {
                return a.admin && b.admin &&
                       (a.admin->listen.host != b.admin->listen.host || a.admin->listen.port != b.admin->listen.port);
            })
            .with_doc("Address of the admin server (metrics, health, readiness, config dump); port 0 = any free port."),
        key("bearer-token", string("token"), set<&admin_config::bearer_token>())
            .hidden()
            .def_doc("none")
            .with_doc("When set, every admin request must carry `Authorization: Bearer <token>`."),
    }).needs_restart([](const config& a, const config& b) { return a.admin.has_value() != b.admin.has_value(); })
      .on_finish(&finish_admin)
      .with_doc("The admin server. Without this block no admin listener is opened.");

    // ---- listeners
    auto listener = block("listener", &append_with_id<&config::listeners>, {
        key("listen", listen_address(), set<&listener_config::listen>())
            .req()
            .with_doc("IP address and port to accept connections on; port 0 = any free port."),
        key("protocol", enumeration({"http", "https"}), set<&listener_config::protocol>())
            .def(kstr("http"))
            .with_doc("Protocol spoken by clients on this listener; `https` needs a `tls` block."),
        key("proxy-protocol", boolean(), set<&listener_config::proxy_protocol>())
            .def(kbool(false))
            .with_doc("Require a PROXY protocol v1/v2 header on every connection and take the client address from it."),
        key("trusted-proxies", cidr_v(), set<&listener_config::trusted_proxies>())
            .many()
            .def_doc("none")
            .with_doc("Networks whose X-Forwarded-* headers are trusted and appended to; from other peers they are replaced."),
        listener_tls_block(),
        block("http2", [](void* parent, args_view a) -> void* {
            auto& h = static_cast<listener_config*>(parent)->http2;
            h.enabled = a[0].boolean;
            return &h;
        }, {
            key("max-concurrent-streams", integer(1, 100000), set<&http2_config::max_concurrent_streams>())
                .def(kint(100))
                .with_doc("Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). Streams still being answered after the client reset them count too; more are refused with REFUSED_STREAM."),
            key("initial-window-size", size_v(), set<&http2_config::initial_window_size>())
                .def(kstr("64KiB"))
                .with_doc("Flow-control window per stream (SETTINGS_INITIAL_WINDOW_SIZE): request body bytes a client may send ahead of the upstream reading them. The connection's window is this or 1MiB, whichever is larger; it bounds the request bytes buffered per connection."),
            key("max-frame-size", size_v(), set<&http2_config::max_frame_size>())
                .def(kstr("16KiB"))
                .with_doc("Largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE), 16KiB to 16MiB-1."),
            key("max-header-list-size", size_v(), set<&http2_config::max_header_list_size>())
                .def(kstr("32KiB"))
                .with_doc("Largest decoded header section (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 7541 sizes). A larger one gets 431; one that decodes to more than 8 times its compressed size (an HPACK bomb) ends the connection."),
        }).arg(boolean()).optional_children().def_doc("#true").on_finish(&finish_http2)
          .with_doc("HTTP/2 on this listener (on by default): ALPN `h2` on `https` listeners, and h2c with prior knowledge on `http` listeners (a client that starts with the HTTP/2 connection preface). `http2 #false` serves HTTP/1.1 only. An `Upgrade: h2c` request is never honoured or relayed."),
    }).arg(id()).repeat().ids("listener").on_finish(&finish_listener)
      .with_doc("A listening socket. The argument is the listener's unique id.");
    auto listeners = block("listeners", &same, {listener}).merge().implied()
                         .with_doc("Listening sockets. Without listeners Sentinel accepts no traffic.");

    // ---- limits
    auto limits = block("limits", &enter_member<&config::limits>, {
        key("max-request-line", size_v(), set<&limits_config::max_request_line>())
            .def(kstr("8KiB"))
            .with_doc("Longest request line (method, target, version); a longer one is rejected."),
        key("max-header-bytes", size_v(), set<&limits_config::max_header_bytes>())
            .def(kstr("32KiB"))
            .with_doc("Largest request header section; a larger one is rejected."),
        key("max-headers", integer(1, 1000), set<&limits_config::max_headers>())
            .def(kint(100))
            .with_doc("Most header fields in one request; more are rejected."),
        key("max-body", size_v(), set<&limits_config::max_body>())
            .def(kstr("10MiB"))
            .with_doc("Largest request body; a larger one is rejected."),
    }).implied().with_doc("Request size limits (per request, all listeners).");

    // ---- timeouts
    auto timeouts = block("timeouts", &enter_member<&config::timeouts>, {
        key("client-header", duration_v(1), set<&timeouts_config::client_header>())
            .def(kstr("10s"))
            .with_doc("Time allowed to receive a complete request header section."),
        key("client-body-idle", duration_v(1), set<&timeouts_config::client_body_idle>())
            .def(kstr("30s"))
            .with_doc("Longest pause between two reads of a request body."),
        key("keepalive-idle", duration_v(1), set<&timeouts_config::keepalive_idle>())
            .def(kstr("75s"))
            .with_doc("How long an idle keep-alive client connection is kept open."),
        key("upstream-connect", duration_v(1), set<&timeouts_config::upstream_connect>())
            .def(kstr("2s"))
            .with_doc("Time allowed to establish a connection to an endpoint."),
        key("upstream-response-header", duration_v(1), set<&timeouts_config::upstream_response_header>())
            .def(kstr("30s"))
            .with_doc("Time allowed from sending the request upstream to receiving the complete response header section."),
        key("upstream-body-idle", duration_v(1), set<&timeouts_config::upstream_body_idle>())
            .def(kstr("30s"))
            .with_doc("Longest pause between two reads of a response body."),
    }).implied().with_doc("Timeouts (all listeners and upstreams).");

    // ---- routes
    auto match = block("match", &enter_member<&route_config::match>, {
        key("host", host_pattern(), set<&route_match::hosts>())
            .many()
            .with_doc("Host names (without port, case-insensitive); \"*.example.com\" matches any subdomain."),
        key("path", http_path(), set<&route_match::paths>())
            .many()
            .with_doc("Exact request paths (before the query string)."),
        key("path-prefix", http_path(), set<&route_match::path_prefixes>())
            .many()
            .with_doc("Path prefixes; \"/\" matches every path."),
        key("path-regex", regex(), set<&route_match::path_regexes>())
            .many()
            .with_doc("Regular expressions (RE2) that must match the whole path."),
        key("method", method(), set<&route_match::methods>())
            .many()
            .with_doc("Request methods (upper case)."),
        value_matcher_key<&route_match::headers>("header", value_match_kind::exact,
                          "A header with this name (case-insensitive) has one of these values exactly."),
        value_matcher_key<&route_match::headers>("header-regex", value_match_kind::regex,
                          "A header with this name has a value matching one of these regular expressions (RE2, whole value)."),
        value_matcher_key<&route_match::headers>("header-present", value_match_kind::present,
                          "A header with this name is present."),
        value_matcher_key<&route_match::headers>("header-absent", value_match_kind::absent,
                          "No header with this name is present."),
        value_matcher_key<&route_match::query>("query", value_match_kind::exact,
                          "A query parameter with this name (after percent-decoding) has one of these values exactly."),
        value_matcher_key<&route_match::query>("query-regex", value_match_kind::regex,
                          "A query parameter with this name has a value matching one of these regular expressions (RE2)."),
        value_matcher_key<&route_match::query>("query-present", value_match_kind::present,
                          "A query parameter with this name is present."),
        value_matcher_key<&route_match::query>("query-absent", value_match_kind::absent,
                          "No query parameter with this name is present."),
    }).implied().with_doc(
        "What a request must look like to take this route. Different matchers are ANDed; the "
        "values of one matcher are ORed. Without matchers the route matches every request.");

    auto respond = block("respond", [](void* parent, args_view a) -> void* {
        auto& r = static_cast<route_config*>(parent)->respond.emplace();
        r.status = static_cast<int>(a[0].num);
        return &r;
    }, {
        key("body", string("text"), set<&fixed_response::body>())
            .def(kstr(""))
            .with_doc("Response body."),
        key("header", header_name(), &push_header<&fixed_response::headers>)
            .arg(header_value_v())
            .repeat()
            .with_doc("A response header field."),
    }).arg(integer(100, 599, "status")).optional_children()
      .with_doc("Action: answer locally with this status code.");

    auto redirect = block("redirect", [](void* parent, args_view a) -> void* {
        auto& r = static_cast<route_config*>(parent)->redirect.emplace();
        r.status = static_cast<int>(a[0].num);
        return &r;
    }, {
        key("scheme", enumeration({"http", "https"}), set<&redirect_action::scheme>())
            .def_doc("the request's")
            .with_doc("Scheme of the target."),
        key("host", host_pattern(), set<&redirect_action::host>())
            .def_doc("the request's")
            .with_doc("Host of the target (without port)."),
        key("port", integer(1, 65535), [](void* t, args_view a) {
            static_cast<redirect_action*>(t)->port = static_cast<std::uint16_t>(a[0].num);
        }).def_doc("the scheme's default")
            .with_doc("Port of the target; omitted from the Location when it is the scheme's default."),
        key("path", http_path(), set<&redirect_action::path>())
            .def_doc("the request's")
            .with_doc("Path of the target."),
        key("keep-query", boolean(), set<&redirect_action::keep_query>())
            .def(kbool(true))
            .with_doc("Append the request's query string to the target."),
    }).arg(integer(301, 308, "status")).optional_children()
      .with_doc("Action: answer with a redirect (301, 302, 303, 307 or 308) to the request's URL with the given parts replaced.");

    auto rewrite = block("rewrite", &enter_member<&route_config::rewrite>, {
        key("strip-prefix", http_path(), set<&rewrite_config::strip_prefix>())
            .def_doc("none")
            .with_doc("Removed from the start of the path when present (\"/api\" turns \"/api/users\" into \"/users\")."),
        key("add-prefix", http_path(), set<&rewrite_config::add_prefix>())
            .def_doc("none")
            .with_doc("Prepended to the path after any strip-prefix."),
        key("host", header_value_v(), set<&rewrite_config::host>())
            .def_doc("the request's")
            .with_doc("Host header sent upstream."),
    }).with_doc("Changes to the request line and Host before the request goes upstream.");

    auto retry = block("retry", &enter_member<&route_config::retry>, {
        key("attempts", integer(1, 10), set<&retry_policy::attempts>())
            .def(kint(1))
            .with_doc("Tries in total, the first included; 1 = no retries."),
        key("on", retry_condition_v(), [](void* t, args_view a) {
            auto& r = *static_cast<retry_policy*>(t);
            r.on.clear();
            r.on_status.clear();
            for (const auto& v : a) {
                if (v.num >= 1000) r.on_status.push_back(static_cast<int>(v.num - 1000));
                else r.on.push_back(static_cast<retry_condition>(v.num));
            }
        }).many()
            .def_doc("\"connect-failure\"")
            .with_doc("What is retried: `connect-failure` (refused, unreachable, connect timeout), `reset` (connection lost before a response), `timeout` (no response head within the per-try timeout), or a response status."),
        key("backoff", duration_v(0), [](void* t, args_view a) {
            auto& r = *static_cast<retry_policy*>(t);
            r.backoff = duration(a[0].num);
            r.backoff_max = a[1].present ? duration(a[1].num) : std::max(r.backoff_max, r.backoff);
        }).prop("max", duration_v(0), "cap of the exponential growth (default 250ms)")
            .def_doc("\"25ms\" max=\"250ms\"")
            .with_doc("Wait before retry n: a random time up to min(max, backoff × 2^(n-1)) (full jitter)."),
        key("per-try-timeout", duration_v(1), set<&retry_policy::per_try_timeout>())
            .def_doc("timeouts.upstream-response-header")
            .with_doc("Time each try may take to receive the response head."),
        key("non-idempotent", boolean(), set<&retry_policy::non_idempotent>())
            .def(kbool(false))
            .with_doc("Also retry methods that are not idempotent (POST, PATCH). Only connect failures are retried for them otherwise."),
        key("max-body", size_v(), set<&retry_policy::max_body>())
            .def(kstr("64KiB"))
            .with_doc("Request bodies up to this size are buffered so a retry can replay them; larger bodies are streamed and not retried once sent."),
    }).with_doc("Retrying failed tries on another endpoint. Retries are also limited by the upstream's `retry-budget`.");

    auto request_headers = block("request-headers", &enter_member<&route_config::request_headers>,
                                 header_op_children())
                               .with_doc("Edits applied to the request before it is sent upstream.");
    auto response_headers = block("response-headers", &enter_member<&route_config::response_headers>,
                                  header_op_children())
                                .with_doc("Edits applied to the response before it is sent to the client.");

    node_spec route = block("route", &append_with_id<&config::routes>, {
        key("priority", integer(-1'000'000, 1'000'000), set<&route_config::priority>())
            .def(kint(0))
            .with_doc("Routes are tried from the highest priority down; equal priorities keep file order."),
        match,
        key("upstream", reference("upstream"), set<&route_config::upstream>())
            .with_doc("Action: proxy the request to this upstream (by id)."),
        respond,
        redirect,
        key("builtin", enumeration({"status"}), set<&route_config::builtin>())
            .with_doc("Action: serve a built-in page. `status` = a small status page."),
        request_headers,
        response_headers,
        key("allow-upgrade", boolean(), set<&route_config::allow_upgrade>())
            .def(kbool(false))
            .with_doc("Relay `Upgrade` requests for protocols other than WebSocket (never h2c) to the upstream, then tunnel bytes after a 101. WebSocket upgrades take `websocket` instead; without it they are forwarded without their `Upgrade`."),
        block("websocket", [](void* parent, args_view a) -> void* {
            auto& w = static_cast<route_config*>(parent)->websocket;
            w.enabled = a[0].boolean;
            return &w;
        }, {
            key("idle-timeout", duration_v(1), set<&websocket_config::idle_timeout>())
                .def(kstr("60s"))
                .with_doc("A tunnel with no byte in either direction for this long is closed (clients that stay open longer send pings)."),
            key("max-connections", integer(1, 10'000'000), set<&websocket_config::max_connections>())
                .def(kint(10000))
                .with_doc("WebSocket connections open on this route at once, all workers (handshakes under way included); more are refused with 503. Tunnels opened before a reload still count after it."),
        }).arg(boolean()).optional_children().def_doc("#false").on_finish(&finish_websocket)
          .with_doc("WebSocket proxying (`websocket #true`, optionally with a block of settings): a handshake (`Upgrade: websocket`) is checked — GET, HTTP/1.1, `Connection: upgrade`, a valid `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13` (another version: 426; anything else: 400) — then relayed; the upstream's 101 must carry the matching `Sec-WebSocket-Accept` (else 502), and the connection becomes a tunnel. Without it, a WebSocket upgrade is forwarded as a plain request, without its `Upgrade`."),
        rewrite,
        retry,
        block("client-certificate-headers", &same, {
            key("subject", header_name(), set<&route_config::client_cert_subject_header>())
                .def_doc("none")
                .with_doc("Header carrying the verified client certificate's subject (RFC 2253) upstream."),
            key("fingerprint", header_name(), set<&route_config::client_cert_fingerprint_header>())
                .def_doc("none")
                .with_doc("Header carrying the SHA-256 fingerprint (hex) of the verified client certificate upstream."),
        }).with_doc("Pass the verified client certificate upstream (TLS listeners with client-auth). Headers of these names sent by the client are always removed, so they cannot be forged."),
        key("security-headers", boolean(), set<&route_config::security_headers>())
            .def(kbool(true))
            .with_doc("Add the TLS listener's security headers to this route's responses."),
    });
    for (auto& k : route_agent_keys()) route.children.push_back(std::move(k));
    route.arg(id()).repeat().ids("route").on_finish(&finish_route)
      .with_doc("A route. The argument is its unique id. Exactly one action: `upstream`, `respond`, `redirect` or `builtin`.");
    auto routes = block("routes", &same, {route}).merge().implied()
                      .with_doc("Request routing: each request takes the first matching route by priority.");

    // ---- upstreams
    auto health_check = block("health-check", &enter_member<&upstream_config::health_check>, {
        key("http", http_path(), [](void* t, args_view a) {
            auto& h = *static_cast<health_check_config*>(t);
            h.type = health_check_config::kind::http;
            h.path = a[0].str;
        }).with_doc("HTTP check: GET this path (over HTTP/2 for `protocol \"h2\"` upstreams, over TLS for `tls` ones); the endpoint passes when the status is expected."),
        key("tcp", boolean(), [](void* t, args_view a) {
            if (a[0].boolean) static_cast<health_check_config*>(t)->type = health_check_config::kind::tcp;
        }).with_doc("TCP check: the endpoint passes when a connection opens (`tcp #true`)."),
        key("expect-status", integer(100, 599, "status"), [](void* t, args_view a) {
            auto& h = *static_cast<health_check_config*>(t);
            for (const auto& v : a) h.expect_status.push_back(static_cast<int>(v.num));
        }).many()
            .def_doc("200-399")
            .with_doc("HTTP statuses that pass."),
        key("host", header_value_v(), set<&health_check_config::host>())
            .def_doc("the endpoint as written")
            .with_doc("Host header of HTTP checks."),
        key("interval", duration_v(1), set<&health_check_config::interval>())
            .def(kstr("5s"))
            .with_doc("Time between two checks of one endpoint."),
        key("timeout", duration_v(1), set<&health_check_config::timeout>())
            .def(kstr("1s"))
            .with_doc("A check not finished in this time fails."),
        key("healthy", integer(1, 100), set<&health_check_config::healthy>())
            .def(kint(2))
            .with_doc("Consecutive passed checks that bring a down endpoint up."),
        key("unhealthy", integer(1, 100), set<&health_check_config::unhealthy>())
            .def(kint(3))
            .with_doc("Consecutive failed checks that take an up endpoint down."),
        key("initial-state", enumeration({"healthy", "unhealthy"}), [](void* t, args_view a) {
            static_cast<health_check_config*>(t)->start_unhealthy = a[0].num == 1;
        })
            .def(kstr("healthy"))
            .with_doc("State of a new endpoint before its first checks; `unhealthy` = no traffic until `healthy` checks pass."),
    }).on_finish(&finish_health_check)
      .with_doc("Active health checks, run off the workers; a down endpoint gets no requests.");

    auto outlier = block("outlier-detection", &enter_member<&upstream_config::outlier_detection>, {
        key("consecutive-failures", integer(1, 1000), set<&outlier_config::consecutive_failures>())
            .def(kint(5))
            .with_doc("5xx responses, resets, timeouts or connect failures in a row that eject an endpoint."),
        key("base-ejection", duration_v(1), set<&outlier_config::base_ejection>())
            .def(kstr("30s"))
            .with_doc("Ejection time, multiplied by the number of times the endpoint was ejected."),
        key("max-ejection", duration_v(1), set<&outlier_config::max_ejection>())
            .def(kstr("5m"))
            .with_doc("Longest ejection."),
        key("max-ejected-percent", integer(1, 100), set<&outlier_config::max_ejected_percent>())
            .def(kint(50))
            .with_doc("Never more than this share of the endpoints ejected at once."),
    }).optional_children()
      .with_doc("Passive health checking from live traffic.");

    auto breaker = block("circuit-breaker", &enter_member<&upstream_config::circuit_breaker>, {
        key("failures", integer(1, 1000), set<&circuit_breaker_config::failures>())
            .def(kint(5))
            .with_doc("Consecutive failed requests to an endpoint that open its breaker."),
        key("open-for", duration_v(1), set<&circuit_breaker_config::open_for>())
            .def(kstr("30s"))
            .with_doc("How long an open breaker refuses requests before going half-open."),
        key("half-open-probes", integer(1, 1000), set<&circuit_breaker_config::half_open_probes>())
            .def(kint(1))
            .with_doc("Trial requests allowed at once while half-open."),
        key("successes", integer(1, 1000), set<&circuit_breaker_config::successes>())
            .def(kint(1))
            .with_doc("Successful trial requests that close the breaker."),
    }).optional_children()
      .with_doc("A circuit breaker per endpoint: closed → open after `failures` → half-open after `open-for` → closed after `successes`.");

    auto upstream = block("upstream", &append_with_id<&config::upstreams>, {
        key("endpoint", endpoint_address(),
            [](void* t, args_view a) {
                endpoint_config e;
                e.address = a[0].address;
                e.weight = static_cast<std::uint32_t>(a[1].num);
                e.backup = a[2].boolean;
                static_cast<upstream_config*>(t)->endpoints.push_back(std::move(e));
            })
            .prop("weight", integer(1, 1000, "n"), "share of requests relative to the other endpoints", kint(1))
            .prop("backup", boolean(), "used only when no primary endpoint is available", kbool(false))
            .req()
            .repeat()
            .with_doc("A server of this upstream; repeat for several. A name becomes one endpoint per A/AAAA record, re-resolved every `dns-refresh`."),
        key("load-balancing",
            enumeration({"round-robin", "weighted-round-robin", "least-connections", "random",
                         "power-of-two-choices", "consistent-hash", "peak-ewma"}),
            set<&upstream_config::balancing>())
            .def(kstr("round-robin"))
            .with_doc("How an endpoint is chosen for each request. `round-robin` ignores weights; the others use them."),
        key("hash-key", enumeration({"header", "cookie", "client-ip", "path", "query"}, "source"),
            [](void* t, args_view a) {
                auto& k = static_cast<upstream_config*>(t)->hash_key.emplace();
                k.source = static_cast<hash_source>(a[0].num);
                if (a[1].present) k.name = a[1].str;
            })
            .prop("name", string("name"), "header, cookie or query parameter name")
            .def_doc("\"client-ip\"")
            .with_doc("consistent-hash: what a request is hashed on. A request without it is balanced at random."),
        key("sticky-cookie", string("name"), [](void* t, args_view a) {
            auto& s = static_cast<upstream_config*>(t)->sticky.emplace();
            s.cookie = a[0].str;
            if (a[1].present) s.ttl = duration(a[1].num);
        }).prop("ttl", duration_v(1), "Max-Age of the cookie (default: a session cookie)")
            .def_doc("none")
            .with_doc("Sticky sessions: the first response sets this cookie to a token naming the endpoint, and later requests carrying it go to that endpoint while it is available."),
        key("dns-refresh", duration_v(1000), set<&upstream_config::dns_refresh>())
            .def(kstr("30s"))
            .with_doc("How often endpoint names are resolved again; each A/AAAA record is an endpoint."),
        health_check,
        outlier,
        breaker,
        block("retry-budget", &enter_member<&upstream_config::retry_budget>, {
            key("percent", integer(0, 100), set<&retry_budget_config::percent>())
                .def(kint(20))
                .with_doc("Retries in flight may be at most this share of the requests in flight."),
            key("min-retries", integer(0, 100000), set<&retry_budget_config::min_retries>())
                .def(kint(3))
                .with_doc("Retries in flight always allowed, whatever the share."),
        }).implied().with_doc("Caps retries to this upstream, so a failing upstream never gets a retry storm."),
        key("max-connections", integer(0, 10'000'000), set<&upstream_config::max_connections>())
            .def(kint(0))
            .with_doc("Most connections open to this upstream (all endpoints, all workers); 0 = no cap. Over it: 503."),
        key("max-pending", integer(0, 10'000'000), set<&upstream_config::max_pending>())
            .def(kint(0))
            .with_doc("Most requests waiting for a new connection to this upstream; 0 = no cap. Over it: 503."),
        key("max-in-flight", integer(0, 10'000'000), set<&upstream_config::max_in_flight>())
            .def(kint(0))
            .with_doc("Most requests in flight to this upstream; 0 = no cap. Over it: 503."),
        upstream_tls_block(),
        key("protocol", enumeration({"http/1.1", "h2"}), set<&upstream_config::protocol>())
            .def(kstr("http/1.1"))
            .with_doc("How requests reach the endpoints. `h2`: HTTP/2, multiplexed: requests share a few connections per endpoint and worker, each a stream (over TLS the upstream must select `h2` in ALPN; without `tls`, h2c with prior knowledge). Needed for gRPC. Routes with `websocket` or `allow-upgrade` need `http/1.1`. Active HTTP health checks speak the same protocol (one HTTP/2 stream on a fresh connection)."),
        key("backup-upstream", reference("upstream"), set<&upstream_config::backup_upstream>())
            .def_doc("none")
            .with_doc("Requests go to this upstream when no endpoint (primary or backup) of this one is available. Followed once, not transitively."),
        block("pool", &enter_member<&upstream_config::pool>, {
            key("max-idle", integer(0, 100000), set<&pool_config::max_idle>())
                .def(kint(64))
                .with_doc("Idle connections kept per endpoint per worker; 0 disables reuse."),
            key("idle-timeout", duration_v(1), set<&pool_config::idle_timeout>())
                .def(kstr("60s"))
                .with_doc("An idle pooled connection is closed after this long."),
        }).implied().with_doc("Connection reuse towards this upstream's endpoints."),
    }).arg(id()).repeat().ids("upstream").on_finish(&finish_upstream)
      .with_doc("A named group of endpoints that routes proxy to. The argument is its unique id.");
    auto upstreams = block("upstreams", &same, {upstream}).merge().implied()
                         .with_doc("Upstream groups.");

    // ---- observability
    auto access_log = block("access-log", &enter_member<&observability_config::access_log>, {
        key("format", enumeration({"json"}), [](void*, args_view) {})
            .def(kstr("json"))
            .with_doc("Line format: `json` = one JSON object per request."),
        key("path", output_path(), set<&access_log_config::path>())
            .def(kstr("-"))
            .with_doc("\"-\" = standard output; otherwise a file, relative to the config file that declares it. Its directory must exist and be writable. SIGUSR1 reopens it (log rotation)."),
        key("fields",
            enumeration(std::vector<std::string_view>(std::begin(access_log_field_names), std::end(access_log_field_names)),
                        "field"),
            [](void* t, args_view a) {
                auto& fields = static_cast<access_log_config*>(t)->fields;
                fields.clear();
                for (const auto& v : a) fields.push_back(static_cast<access_log_field>(v.num));
            })
            .many()
            .def_doc("every field except `query`, `tls-version`, `retries`, `agent-metadata` and the two upstream durations")
            .with_doc("The fields of each line, in this order. JSON keys: `ts`, `request_id`, `trace_id` (only when the request is traced), `client`, `listener`, `method`, `host`, `path`, `query` (raw, without `?`; off by default because query strings carry secrets), `status`, `bytes_sent`, `bytes_received`, `duration_ms` (first request byte to last response byte), `upstream_connect_ms` (TCP + TLS connect of a new upstream connection; absent when a pooled one was reused), `upstream_header_ms` (request start to the upstream response head), `upstream` (endpoint address), `route`, `tls_version`, `user_agent`, `retries`, `agent_metadata` (an object of the metadata the route's agents returned; absent when there is none), `protocol` (`HTTP/1.1`, `HTTP/1.0` or `HTTP/2`)."),
        key("sample-percent", integer(1, 100, "percent"), set<&access_log_config::sample_percent>())
            .def(kint(100))
            .with_doc("Share of requests logged, drawn per request; the others are counted in `sentinel_access_log_sampled_out_total`."),
        key("always-log-errors", boolean(), set<&access_log_config::always_log_errors>())
            .def(kbool(true))
            .with_doc("Log every 5xx response and every local error reply (status 400 and above) even when sampling would skip it."),
    }).on_finish(&finish_access_log)
      .with_doc("One line per request. Without this block nothing is logged per request.");
    auto error_log = block("error-log", &enter_member<&observability_config::error_log>, {
        key("format", enumeration({"text", "json"}), set<&error_log_config::format>())
            .def(kstr("text"))
            .with_doc("`text`: timestamp, level, message and key=value pairs; `json`: one JSON object per line with `ts`, `level`, `msg` and the pairs as keys."),
        key("level", enumeration({"debug", "info", "warn", "error"}), set<&error_log_config::level>())
            .def(kstr("info"))
            .with_doc("Lowest level written."),
        key("repeat-limit", integer(0, 10000), set<&error_log_config::repeat_limit>())
            .def(kint(5))
            .with_doc("Lines per second for one message template (e.g. one upstream's TLS failures); past it, lines are counted in `sentinel_log_suppressed_lines_total` and reported as one \"suppressed N similar messages\" line. 0 = no limit."),
    }).implied().with_doc("The error/event log on standard error (startup, reloads, upstream problems).");
    auto audit_log = block("audit-log", &enter_member<&observability_config::audit_log>, {
        key("path", output_path(), set<&audit_log_config::path>())
            .req()
            .with_doc("\"-\" = standard output; otherwise a file, relative to the config file that declares it. SIGUSR1 reopens it (log rotation)."),
    }).on_finish(&finish_audit_log)
      .with_doc("One JSON line per security decision (a request refused as malformed or as a smuggling attempt, an oversized head, a path traversal, a failed client certificate), with the request id and the reason. Without this block decisions are only counted (`sentinel_audit_events_total`).");
    auto tracing = block("tracing", &enter_member<&observability_config::tracing>, {
        key("otlp-endpoint", endpoint_address(), set<&tracing_config::otlp_endpoint>())
            .req()
            .with_doc("The OpenTelemetry collector's OTLP/HTTP receiver, `host:port` (plain HTTP; a name is resolved at each connect). Spans are POSTed as protobuf (`Content-Type: application/x-protobuf`)."),
        key("path", http_path(), set<&tracing_config::path>())
            .def(kstr("/v1/traces"))
            .with_doc("Request path of the export POST."),
        key("sample-percent", integer(0, 100, "percent"), set<&tracing_config::sample_percent>())
            .def(kint(100))
            .with_doc("Share of new traces (requests without a valid `traceparent`) that are sampled. A request with a valid `traceparent` follows its sampled flag (parent-based sampling). Unsampled requests export nothing but still propagate `traceparent`/`tracestate` upstream."),
        key("max-queue-spans", integer(1, 1'000'000), set<&tracing_config::max_queue_spans>())
            .def(kint(8192))
            .with_doc("Most spans waiting for export (all workers). Past it, spans are dropped and counted in `sentinel_tracing_spans_dropped_total{reason=\"queue_full\"}`; requests never wait."),
        key("batch-size", integer(1, 100'000), set<&tracing_config::batch_size>())
            .def(kint(512))
            .with_doc("Most spans per export request; also the per-worker count that hands spans over before `flush-interval`. At most `max-queue-spans`."),
        key("flush-interval", duration_v(10), set<&tracing_config::flush_interval>())
            .def(kstr("1s"))
            .with_doc("Spans are handed over and exported at least this often."),
        key("export-timeout", duration_v(10), set<&tracing_config::export_timeout>())
            .def(kstr("5s"))
            .with_doc("Bound on connecting, sending and reading the response of one export request. A batch that fails or is rejected (non-2xx) is dropped and counted in `sentinel_tracing_spans_dropped_total{reason=\"export_failed\"}`."),
        key("service-name", string("name"), set<&tracing_config::service_name>())
            .def(kstr("sentinel"))
            .with_doc("The `service.name` resource attribute of every span."),
    }).on_finish(&finish_tracing)
      .with_doc("Distributed tracing: W3C `traceparent`/`tracestate` accepted (or a trace started), propagated upstream with Sentinel's span as parent; one SERVER span per request and one CLIENT span per upstream try, exported over OTLP/HTTP. Without this block trace headers pass through untouched and nothing is traced.");
    auto observability = block("observability", &enter_member<&config::observability>, {access_log, error_log, audit_log, tracing})
                             .with_doc("Logs and tracing (metrics are served by the admin server).");

    auto include = key("include", string("path"), [](void*, args_view) {})
                       .repeat()
                       .with_doc("Top level only: reads another file as if its nodes were written here. "
                                 "Relative to the including file; cycles are rejected.");

    node_spec root;
    root.name = "";
    root.block = true;
    root.enter = &same;
    root.children = {include,  system, admin,  listeners,    limits,
                     timeouts, routes, upstreams, agents_block(), observability};
    return root;
}

}  // namespace

const node_spec& root() {
    static const node_spec table = build_root();
    return table;
}

std::string describe(const value_spec& v) {
    auto range = [&](std::string unit_min, std::string unit_max) {
        return unit_min + "-" + unit_max;
    };
    switch (v.kind) {
    case value_kind::string: return "string";
    case value_kind::integer: return "integer " + range(std::to_string(v.min), std::to_string(v.max));
    case value_kind::boolean: return "boolean (#true or #false)";
    case value_kind::duration:
        return v.min == 0 ? "duration (\"250ms\", \"30s\", \"5m\", \"1h\", \"7d\"; \"0s\" allowed)"
                          : "duration (\"250ms\", \"30s\", \"5m\", \"1h\", \"7d\"; greater than 0)";
    case value_kind::size: return "size (\"512B\", \"8KiB\", \"10MiB\", \"1GiB\"; greater than 0)";
    case value_kind::listen_address: return "listen address (\"0.0.0.0:8080\", \"[::1]:8080\"; IP literal, port 0-65535)";
    case value_kind::endpoint_address: return "endpoint address (\"10.0.0.1:80\", \"[::1]:80\", \"name:80\"; port 1-65535)";
    case value_kind::cidr: return "CIDR (\"10.0.0.0/8\", \"::1/128\")";
    case value_kind::enumeration: {
        std::string s = "one of ";
        for (std::size_t i = 0; i < v.choices.size(); ++i)
            s += (i ? ", \"" : "\"") + std::string(v.choices[i]) + "\"";
        return s;
    }
    case value_kind::header_name: return "header name";
    case value_kind::header_value: return "header value";
    case value_kind::host_pattern: return "host (\"example.com\" or \"*.example.com\")";
    case value_kind::http_path: return "path (starting with \"/\")";
    case value_kind::method: return "method (upper-case token)";
    case value_kind::regex: return "regular expression (RE2 syntax, matched against the whole value)";
    case value_kind::retry_condition: return "\"connect-failure\", \"reset\", \"timeout\" or a status code 400-599 (\"503\")";
    case value_kind::reference: return "id of an " + std::string(v.ref_kind);
    case value_kind::output_path: return "\"-\" or a file path";
    case value_kind::input_path: return "path of an existing file (relative to the config file)";
    }
    return "value";
}

}  // namespace sentinel::config::schema
