// The agents part of the schema: the top-level `agents` block (agents/protocol/PROTOCOL.md)
// and the route keys that attach agents. An agent's `config {}` is opaque here: the agent
// checks it in the handshake and the proxy reports its errors at the nodes' positions.
#include <filesystem>

#include "config/schema/builders.hpp"

namespace sentinel::config::schema::builders {

namespace {

// A Unix socket path must fit sockaddr_un.sun_path (108 bytes with its NUL).
constexpr std::size_t max_unix_path = 107;

void finish_agent(check_context& ctx, void* target, const kdl::node& node) {
    auto& a = *static_cast<agent_config*>(target);
    a.pos = node.pos;
    if (ctx.files != nullptr && ctx.file < ctx.files->size()) a.file = (*ctx.files)[ctx.file].name;
    const kdl::node* socket = child_named(node, "socket");
    if (socket == nullptr) return;  // reported as missing
    const kdl::position pos = socket->arguments.empty() ? socket->pos : socket->arguments[0].pos;
    if (a.socket.starts_with("tcp://")) {
        const std::string_view hp = std::string_view(a.socket).substr(6);
        const auto colon = hp.rfind(':');
        const bool ok = colon != std::string_view::npos && colon > 0 && colon + 1 < hp.size() &&
                        hp.substr(colon + 1).find_first_not_of("0123456789") == std::string_view::npos &&
                        hp.size() - colon - 1 <= 5 && std::stoul(std::string(hp.substr(colon + 1))) - 1 < 65535;
        if (!ok) ctx.error(pos, "agent socket \"" + a.socket + "\": expected \"tcp://host:port\" with a port 1-65535");
    } else if (a.socket.empty()) {
        ctx.error(pos, "agent socket must not be empty; expected a Unix socket path or \"tcp://host:port\"");
    } else {
        std::filesystem::path p(a.socket);
        if (p.is_relative() && ctx.files != nullptr && ctx.file < ctx.files->size())
            p = std::filesystem::path((*ctx.files)[ctx.file].dir) / p;
        a.socket = p.lexically_normal().string();
        if (a.socket.size() > max_unix_path)
            ctx.error(pos, "agent socket path is " + std::to_string(a.socket.size()) +
                               " bytes; a Unix socket path must be at most 107");
    }
    if (a.reconnect_backoff_max < a.reconnect_backoff)
        ctx.error(child_named(node, "reconnect-backoff")->pos, "reconnect-backoff max= is below the first backoff");
}

void capture_agent_block(check_context& ctx, void* target, const kdl::node& node) {
    auto& a = *static_cast<agent_config*>(target);
    if (a.block) {
        ctx.error(node.pos, "duplicate `config` in agent \"" + a.id + "\"; it may appear only once");
        return;
    }
    a.block = node;
    if (ctx.files != nullptr && ctx.file < ctx.files->size()) a.block_file = (*ctx.files)[ctx.file].name;
}

}  // namespace

node_spec agents_block() {
    auto agent = block("agent", &append_with_id<&config::agents>, {
        key("socket", string("path"), set<&agent_config::socket>())
            .req()
            .with_doc("Where the agent listens: a Unix socket path (relative to the declaring file) or `tcp://host:port` (a name is resolved when the config is loaded or reloaded, never on the request path)."),
        key("failure-mode", enumeration({"open", "closed"}), set<&agent_config::failure_mode>())
            .req()
            .with_doc("What a request gets when the agent cannot answer (timeout, error, shed, breaker open, unhealthy): `open` continues as if it allowed, `closed` answers 503. No default: the choice is always written down."),
        key("timeout", duration_v(1), set<&agent_config::timeout>())
            .def(kstr("100ms"))
            .with_doc("Per event: from sending it to receiving its decision."),
        key("connect-timeout", duration_v(1), set<&agent_config::connect_timeout>())
            .def(kstr("1s"))
            .with_doc("Connecting and the handshake (HELLO / HELLO_ACK)."),
        key("max-concurrent", integer(1, 1'000'000), set<&agent_config::max_concurrent>())
            .def(kint(100))
            .with_doc("Requests in flight at this agent, whole process. Past it, requests are shed (counted as `shed`) and get the failure mode."),
        key("connections", integer(1, 64), set<&agent_config::connections>())
            .def(kint(1))
            .with_doc("Connections per worker; each multiplexes many requests."),
        key("max-body", size_v(), set<&agent_config::max_body>())
            .def(kstr("1MiB"))
            .with_doc("Most body bytes sent to the agent per request and direction (the agent may ask for less in its handshake). Bodies are held in memory up to this size while the agent inspects them."),
        key("body-over-limit", enumeration({"reject", "skip"}), set<&agent_config::over_limit>())
            .def(kstr("reject"))
            .with_doc("A body the agent asked to see that is larger than the limit: `reject` answers 413; `skip` sends the first `max-body` bytes marked truncated and forwards the whole body."),
        key("ping-interval", duration_v(100), set<&agent_config::ping_interval>())
            .def(kstr("10s"))
            .with_doc("An idle connection is pinged this often; one that does not answer within 4 × timeout (at least 1s) is closed and reconnected."),
        block("circuit-breaker", &same, {
            key("failures", integer(1, 1'000'000), set<&agent_config::breaker_failures>())
                .def(kint(5))
                .with_doc("Consecutive failed events (timeout, error, broken connection) that open the breaker."),
            key("open-for", duration_v(1), set<&agent_config::breaker_open_for>())
                .def(kstr("5s"))
                .with_doc("How long the breaker stays open before one trial request goes through."),
        }).implied().with_doc("While open, the agent is not asked and its routes get the failure mode (counted as `breaker_open`)."),
        key("reconnect-backoff", duration_v(1), [](void* t, args_view a) {
            auto& c = *static_cast<agent_config*>(t);
            c.reconnect_backoff = duration(a[0].num);
            if (a[1].present) c.reconnect_backoff_max = duration(a[1].num);
        }).prop("max", duration_v(1), "cap of the doubling (default 5s)")
            .def(kstr("100ms"))
            .with_doc("Wait before reconnecting after a failed connect; doubles per failure up to max=."),
        node_spec{}.opaque(&capture_agent_block).hidden(),
    }).arg(id()).repeat().ids("agent").on_finish(&finish_agent)
      .with_doc("An external agent (see agents/protocol/PROTOCOL.md). The argument is its unique id; several ids may use the same socket.");
    // The opaque child needs its name and doc set after construction (node_spec{} above).
    auto& cfg = agent.children.back();
    cfg.name = "config";
    cfg.doc = "The agent's own settings, sent to it in the handshake unchecked by the proxy; the agent validates them and a rejection fails start-up or the reload with the position of each bad node. Shown as `<redacted>` by the admin `/config`.";
    return block("agents", &same, {agent}).merge().implied()
        .with_doc("External agents: separate processes that inspect requests and answer with decisions (allow, block, redirect, header and body changes).");
}

std::vector<node_spec> route_agent_keys() {
    return {
        key("agents", reference("agent"), set<&route_config::agents>())
            .many()
            .with_doc("Agents consulted for this route's requests, in this order. The first block wins; header changes merge in order."),
        key("agents-concurrent", boolean(), set<&route_config::agents_concurrent>())
            .def(kbool(false))
            .with_doc("Send the request-header event to all of the route's agents at once instead of one after the other (for independent agents: a later agent then does not see an earlier one's header changes or metadata). Decisions still apply in route order."),
    };
}

}  // namespace sentinel::config::schema::builders
