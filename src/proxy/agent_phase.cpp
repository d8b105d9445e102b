#include "proxy/agent_phase.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"
#include "observability/event_log.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/http1_connection.hpp"

namespace sentinel::proxy {

namespace v1 = sentinel::agent::v1;
namespace proto = sentinel::agent_protocol;
using agent::call_status;
using observability::agent_outcome;
using observability::local_reply_reason;
using observability::timeout_kind;

namespace {

void count(request_agents::entry& e, agent_outcome o) {
    e.ch->metrics().decisions[static_cast<std::size_t>(o)].inc();
}

std::string_view id_of(const http1_connection& conn, const request_agents::entry& e) {
    return conn.snap().cfg->agents[e.index].id;
}

const config::agent_config& cfg_of(const http1_connection& conn, const request_agents::entry& e) {
    return conn.snap().cfg->agents[e.index];
}

// Takes what an agent may add to the request's state (mutations and metadata).
void merge(request_agents& ra, const v1::Decision& d) {
    for (const auto& m : d.request_headers()) ra.request_edits.apply(m);
    for (const auto& m : d.response_headers()) ra.response_edits.apply(m);
    for (const auto& kv : d.metadata()) {
        auto it = std::find_if(ra.metadata.begin(), ra.metadata.end(), [&](const auto& p) { return p.first == kv.first; });
        if (it != ra.metadata.end()) it->second = kv.second;
        else ra.metadata.emplace_back(kv.first, kv.second);
    }
}

std::string audit_details(std::string_view agent_id, const v1::Decision& d, int status) {
    std::string s = "agent=" + std::string(agent_id) + " status=" + std::to_string(status);
    const auto& a = d.audit();
    if (a.rule_ids_size() > 0) {
        s += " rules=";
        for (int i = 0; i < a.rule_ids_size(); ++i) s += (i ? "," : "") + a.rule_ids(i);
    }
    if (a.tags_size() > 0) {
        s += " tags=";
        for (int i = 0; i < a.tags_size(); ++i) s += (i ? "," : "") + a.tags(i);
    }
    if (!a.reason().empty()) s += " reason=" + a.reason();
    return s;
}

// A local reply to the client on behalf of the agents: their response edits apply to it.
// `response_phase`: the request went upstream whole and its head is consumed already.
awaitable<void> send_agent_reply(http1_connection& conn, const config::route_config& route, int status,
                                 std::string_view body, std::vector<config::header_value> headers,
                                 local_reply_reason reason, bool response_phase) {
    auto& ra = conn.agents();
    for (const auto& [name, value] : ra.response_edits.add) headers.push_back({name, value});
    conn.worker().metrics.count_local(reason);
    auto& request = conn.request();
    conn.record().local_error = status >= 400;
    if (!response_phase) {
        // A body we did not read would be parsed as the next request.
        if (request.framing != http1::body_framing::none && !ra.body_complete) conn.set_keep_alive(false);
        conn.input().consume(conn.head_size());
    }
    co_await conn.send_response(status, "text/plain; charset=utf-8", body, headers, &route.response_headers,
                                request.method == "HEAD");
}

std::string default_body(int status) {
    return std::to_string(status) + " " + std::string(http1::reason_phrase(status)) + "\n";
}

// Applies a decided block or redirect: the reply, the audit entry, the counts.
awaitable<void> answer(http1_connection& conn, const config::route_config& route, request_agents::entry& e,
                       const v1::Decision& d, bool response_phase) {
    auto& ra = conn.agents();
    ra.blocked_by = std::string(id_of(conn, e));
    if (d.has_block()) {
        const int status = agent::block_status(d.block());
        count(e, agent_outcome::block);
        conn.audit(observability::audit_reason::agent_decision, audit_details(ra.blocked_by, d, status), "blocked");
        std::vector<config::header_value> headers;
        for (const auto& h : d.block().headers()) headers.push_back({h.name(), h.value()});
        const std::string body = d.block().body().empty() ? default_body(status) : d.block().body();
        co_await send_agent_reply(conn, route, status, body, std::move(headers), local_reply_reason::agent_block,
                                  response_phase);
    } else {
        const int status = agent::redirect_status(d.redirect());
        count(e, agent_outcome::redirect);
        conn.audit(observability::audit_reason::agent_decision, audit_details(ra.blocked_by, d, status), "redirected");
        std::vector<config::header_value> headers{{"Location", d.redirect().location()}};
        co_await send_agent_reply(conn, route, status, {}, std::move(headers), local_reply_reason::agent_redirect,
                                  response_phase);
    }
}

// The agent could not answer (`o` says why): failure-mode open lets the request continue
// without it (true); closed answers 503 (false).
awaitable<bool> unavailable(http1_connection& conn, const config::route_config& route, request_agents::entry& e,
                            agent_outcome o, bool response_phase = false) {
    if (e.ch != nullptr) count(e, o);
    e.skipped = true;
    e.stream.cancel(v1::Cancel::ENDED);
    const auto& cfg = cfg_of(conn, e);
    if (cfg.failure_mode == config::agent_failure_mode::open) {
        if (e.ch != nullptr) e.ch->metrics().fail_open.inc();
        co_return true;
    }
    auto& ra = conn.agents();
    ra.blocked_by = cfg.id;
    conn.audit(observability::audit_reason::agent_decision,
               "agent=" + cfg.id + " unavailable (" + observability::to_string(o) + "), failure-mode closed", "blocked");
    co_await send_agent_reply(conn, route, 503, default_body(503), {}, local_reply_reason::agent_unavailable,
                              response_phase);
    co_return false;
}

// Gets `e` a stream, or the outcome that prevents it.
awaitable<agent_outcome> open(http1_connection& conn, request_agents::entry& e) {
    if (e.ch == nullptr) co_return agent_outcome::unavailable;
    auto& state = e.ch->state();
    const auto& cfg = e.ch->cfg();
    if (state.config_rejected() || state.unhealthy()) co_return agent_outcome::unavailable;
    if (!state.breaker_allows(agent::now_ms(), e.trial)) co_return agent_outcome::breaker_open;
    if (!state.try_acquire(cfg.max_concurrent)) {
        if (e.trial) state.abandon_trial();
        co_return agent_outcome::shed;
    }
    e.acquired = true;
    e.stream = co_await e.ch->open_stream(cfg.timeout);
    if (!e.stream.is_open()) {
        state.report(false, e.trial, agent::now_ms(), cfg);
        co_return agent_outcome::unavailable;
    }
    co_return agent_outcome::allow;  // "no failure"
}

void fill_request_headers(http1_connection& conn, const config::route_config& route, v1::RequestHeaders& ev) {
    auto& request = conn.request();
    auto& ra = conn.agents();
    auto* c = ev.mutable_connection();
    c->set_client_address(conn.peer_text());
    if (conn.listener() != nullptr) c->set_listener(conn.listener()->id);
    if (conn.secure()) {
        c->set_tls_version(std::string(conn.tls_version()));
        // A string field must be UTF-8: an SNI with other bytes (never a valid host name) is left out.
        const std::string_view sni = conn.tls_sni();
        if (std::all_of(sni.begin(), sni.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; }))
            c->set_tls_sni(std::string(sni));
        if (conn.client_certificate().present) {
            c->set_client_cert_subject(conn.client_certificate().subject);
            c->set_client_cert_fingerprint(conn.client_certificate().sha256);
        }
    }
    ev.set_route(route.id);
    ev.set_request_id(std::string(conn.record().id()));
    const auto& trace = conn.record().trace;
    if (trace.active) {
        char tp[observability::tracing::traceparent_size];
        observability::tracing::format_traceparent(tp, trace.trace_id, trace.server_span_id, trace.flags);
        ev.set_traceparent(std::string(tp, sizeof tp));
    }
    ev.set_method(std::string(request.method));
    ev.set_scheme(std::string(conn.scheme()));
    ev.set_authority(std::string(request.host));
    ev.set_path(std::string(request.path));
    ev.set_query(std::string(request.query));
    ev.set_http_version(request.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
    // The headers as the upstream would get them so far: earlier agents' changes included.
    for (const auto& h : request.headers) {
        if (ra.request_edits.drops(h.name)) continue;
        auto* out = ev.add_headers();
        out->set_name(std::string(h.name));
        out->set_value(std::string(h.value));
    }
    for (const auto& [name, value] : ra.request_edits.add) {
        auto* out = ev.add_headers();
        out->set_name(name);
        out->set_value(value);
    }
    const bool has_body = request.framing == http1::body_framing::chunked ||
                          (request.framing == http1::body_framing::content_length && request.content_length > 0);
    ev.set_has_body(has_body);
    ev.set_content_length(request.framing == http1::body_framing::chunked ? -1
                                                                            : static_cast<std::int64_t>(request.content_length));
    for (const auto& [k, v] : ra.metadata) (*ev.mutable_metadata())[k] = v;
}

// Body events go only to agents that asked for REQUEST_BODY with a body mode.
bool inspects_request_body(const agent::capabilities& caps) {
    return caps.wants(v1::REQUEST_BODY) && caps.request_body != v1::BODY_NONE;
}

bool request_has_body(const http1::request_head& request) {
    return request.framing == http1::body_framing::chunked ||
           (request.framing == http1::body_framing::content_length && request.content_length > 0);
}

// Whether any event can follow REQUEST_HEADERS on this stream (else it carries END_STREAM).
bool more_events_after_headers(const agent::capabilities& caps, bool has_body, bool upgrade) {
    return (has_body && inspects_request_body(caps)) || caps.wants(v1::RESPONSE_HEADERS) ||
           caps.wants(v1::REQUEST_COMPLETE) || (upgrade && caps.wants(v1::WEBSOCKET_FRAME));
}

// Checks and applies one agent's decision on the request side. Returns false when the
// request was answered (or the client left).
awaitable<bool> decide(http1_connection& conn, const config::route_config& route, request_agents::entry& e,
                       call_status st, v1::Decision& d, agent::decision_point at, bool more_body,
                       bool replace_allowed = true) {
    auto& state = e.ch->state();
    const auto& cfg = e.ch->cfg();
    const bool response_phase = at == agent::decision_point::response_headers;
    if (st == call_status::client_gone) {
        conn.set_keep_alive(false);
        if (e.trial) state.abandon_trial();  // not the agent's fault, nor its success
        co_return false;
    }
    if (st == call_status::too_large) {
        // This request's event cannot be sent: not the agent's failure, but it has not decided.
        observability::event_log::warn("request event larger than the agent's frame limit; applying its failure mode",
                                       {{"agent", cfg.id}});
        if (e.trial) state.abandon_trial();
        co_return co_await unavailable(conn, route, e, agent_outcome::error, response_phase);
    }
    if (st != call_status::decided) {
        state.report(false, e.trial, agent::now_ms(), cfg);
        co_return co_await unavailable(conn, route, e,
                                       st == call_status::timeout ? agent_outcome::timeout : agent_outcome::error,
                                       response_phase);
    }
    auto problem = agent::check_decision(d, at, more_body);
    if (!problem && d.has_replace_body() && !replace_allowed)
        problem = "replace_body on a truncated body (the rest goes upstream as received)";
    if (problem) {
        e.ch->metrics().protocol_errors[static_cast<std::size_t>(observability::agent_protocol_error::bad_decision)].inc();
        observability::event_log::warn("agent sent an invalid decision", {{"agent", cfg.id}, {"problem", *problem}});
        state.report(false, e.trial, agent::now_ms(), cfg);
        co_return co_await unavailable(conn, route, e, agent_outcome::error, response_phase);
    }
    state.report(true, e.trial, agent::now_ms(), cfg);
    e.trial = false;
    auto& ra = conn.agents();
    merge(ra, d);
    if (d.has_block() || d.has_redirect()) {
        co_await answer(conn, route, e, d, response_phase);
        co_return false;
    }
    if (d.audit().rule_ids_size() > 0 || !d.audit().reason().empty())
        conn.audit(observability::audit_reason::agent_decision, audit_details(cfg.id, d, 0), "flagged");
    if (d.action_case() == v1::Decision::kNeedMoreBody) {
        e.wants_body = true;
        e.inspecting = true;
    } else {
        e.inspecting = false;
        count(e, agent_outcome::allow);
    }
    co_return true;
}

// Reads more of the request body into conn.input(). False (answered or closed) on failure.
awaitable<bool> read_body_bytes(http1_connection& conn) {
    const auto& snap = conn.snap();
    conn.set_deadline(timeout_kind::client_body_idle, snap.cfg->timeouts.client_body_idle);
    boost::system::error_code ec;
    const std::size_t n = co_await conn.read_some(ec);
    conn.clear_deadline();
    if (n > 0) co_return true;
    conn.set_keep_alive(false);
    if (conn.expired()) co_await conn.send_local_reply(408, local_reply_reason::client_body_timeout, true);
    co_return false;
}

// What differs between inspecting the request body and the response body.
struct body_side {
    bool response;
    v1::EventType event() const { return response ? v1::RESPONSE_BODY : v1::REQUEST_BODY; }
    proto::frame_type frame() const { return response ? proto::frame_type::response_body : proto::frame_type::request_body; }
    agent::decision_point point() const {
        return response ? agent::decision_point::response_body : agent::decision_point::request_body;
    }
    v1::BodyMode mode(const agent::capabilities& caps) const { return response ? caps.response_body : caps.request_body; }
    int over_limit_status() const { return response ? 502 : 413; }
};

// Whether the stream ends with this event: nothing the agent asked for can follow it.
bool last_event(const request_agents::entry& e, body_side side) {
    const auto& caps = e.stream.caps();
    if (caps.wants(v1::REQUEST_COMPLETE)) return false;
    return side.response || !caps.wants(v1::RESPONSE_HEADERS);
}

awaitable<void> reply_over_limit(http1_connection& conn, const config::route_config& route, body_side side) {
    if (side.response) {
        co_await send_agent_reply(conn, route, 502, default_body(502), {}, local_reply_reason::upstream_bad_response, true);
    } else {
        conn.set_keep_alive(false);
        co_await conn.send_local_reply(413, local_reply_reason::body_too_large, true);
    }
}

// Sends body[from, end) to `e` in events that fit its frame limit, each answered; `last`:
// the final event ends the body (and carries `truncated`). A replacement rewrites the held
// body in place, moving what follows. False when a decision answered the request.
awaitable<bool> send_body_events(http1_connection& conn, const config::route_config& route, request_agents::entry& e,
                                 body_side side, std::string& body, std::size_t from, std::size_t end, bool last,
                                 bool truncated) {
    const std::uint32_t frame = e.stream.caps().max_frame;
    const std::size_t step = frame > 1024 ? frame - 512 : 512;
    do {
        const std::size_t n = std::min(step, end - from);
        const bool is_last = last && from + n == end;
        v1::BodyChunk chunk;
        chunk.set_data(body.substr(from, n));
        chunk.set_offset(from);
        chunk.set_last(is_last);
        chunk.set_truncated(is_last && truncated);
        v1::Decision d;
        const auto st = co_await e.stream.call(side.frame(), chunk, is_last && last_event(e, side),
                                               cfg_of(conn, e).timeout, conn.client_socket(), d);
        if (!co_await decide(conn, route, e, st, d, side.point(), !is_last, !truncated)) co_return false;
        if (e.skipped) break;
        if (d.has_replace_body()) {
            const std::string& r = d.replace_body();
            body.replace(from, n, r);
            end = end + r.size() - n;
            from += r.size();
        } else {
            from += n;
        }
        if (!e.inspecting) break;  // allowed: no more of this body
    } while (from < end);
    co_return true;
}

// Limits of the agents inspecting this body; their largest (0: none inspects it). A body
// whose declared length is over a rejecting agent's limit is refused at once (false).
awaitable<std::optional<std::uint64_t>> body_limits(http1_connection& conn, const config::route_config& route,
                                                    body_side side, std::optional<std::uint64_t> declared) {
    auto& ra = conn.agents();
    std::uint64_t max_limit = 0;
    for (auto& e : ra.entries) {
        if (!e.inspecting || e.skipped) continue;
        const auto& cfg = cfg_of(conn, e);
        const std::uint64_t agent_max = e.stream.caps().max_body;
        e.limit = agent_max == 0 ? cfg.max_body : std::min<std::uint64_t>(cfg.max_body, agent_max);
        max_limit = std::max(max_limit, e.limit);
        if (declared && *declared > e.limit && cfg.over_limit == config::body_over_limit::reject) {
            if (!side.response) conn.input().consume(conn.head_size());
            co_await reply_over_limit(conn, route, side);
            co_return std::nullopt;
        }
    }
    co_return max_limit;
}

// Stream-mode agents get the new piece body[piece_start, end) (what fits their limit).
awaitable<bool> body_piece(http1_connection& conn, const config::route_config& route, body_side side,
                           std::string& body, std::size_t piece_start, bool done) {
    auto& ra = conn.agents();
    for (auto& e : ra.entries) {
        if (!e.inspecting || e.skipped || side.mode(e.stream.caps()) != v1::BODY_STREAM) continue;
        if (piece_start >= e.limit && !done) continue;
        const std::size_t end_at = std::min<std::size_t>(body.size(), e.limit);
        const bool last = done || end_at >= e.limit;
        const bool truncated = last && !(done && body.size() <= e.limit);
        if (truncated && cfg_of(conn, e).over_limit == config::body_over_limit::reject) {
            co_await reply_over_limit(conn, route, side);
            co_return false;
        }
        if (!co_await send_body_events(conn, route, e, side, body, std::min(piece_start, end_at), end_at, last,
                                       truncated))
            co_return false;
        if (last) e.inspecting = false;
    }
    co_return true;
}

// The body ended (`done`) or reached the largest limit: buffer-mode agents get it whole;
// stream-mode agents still asking for more have seen all there is.
awaitable<bool> body_end(http1_connection& conn, const config::route_config& route, body_side side,
                         std::string& body, bool done) {
    auto& ra = conn.agents();
    for (auto& e : ra.entries) {
        if (!e.inspecting || e.skipped || side.mode(e.stream.caps()) != v1::BODY_BUFFER) continue;
        const bool truncated = !done || body.size() > e.limit;
        if (truncated && cfg_of(conn, e).over_limit == config::body_over_limit::reject) {
            co_await reply_over_limit(conn, route, side);
            co_return false;
        }
        if (!co_await send_body_events(conn, route, e, side, body, 0, std::min<std::size_t>(body.size(), e.limit), true,
                                       truncated))
            co_return false;
        e.inspecting = false;
    }
    for (auto& e : ra.entries)
        if (e.inspecting && !e.skipped) {
            e.inspecting = false;
            count(e, agent_outcome::allow);
        }
    co_return true;
}

// The request body phase: reads the client's body (decoded) up to the largest inspection
// limit, feeding stream-mode agents as it arrives, then buffer-mode agents. Nothing of it has
// gone upstream yet; the exchange sends what is held (and the rest, past a skipped limit).
awaitable<bool> inspect_request_body(http1_connection& conn, const config::route_config& route) {
    auto& ra = conn.agents();
    auto& request = conn.request();
    const auto& snap = conn.snap();
    const body_side side{false};
    std::optional<std::uint64_t> declared;
    if (request.framing == http1::body_framing::content_length) declared = request.content_length;
    const auto limit = co_await body_limits(conn, route, side, declared);
    if (!limit) co_return false;
    const std::uint64_t max_limit = *limit;

    // The head's bytes must outlive the buffer they were parsed in: the body is read into it.
    conn.detach_head(ra.head_copy);
    ra.body_held = true;
    auto& in = conn.input();
    if (request.expect_continue && request.version_minor == 1 && in.empty()) {
        if (!co_await conn.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return false;
    }
    request.expect_continue = false;

    const bool chunked = request.framing == http1::body_framing::chunked;
    std::uint64_t remaining = chunked ? 0 : request.content_length;
    bool done = false;
    while (!done && ra.body.size() < max_limit) {
        const std::size_t piece_start = ra.body.size();
        if (chunked) {
            for (;;) {
                std::size_t used = 0;
                std::string_view data;
                const auto st = ra.decoder.decode(in.readable(), used, data);
                if (st == http1::chunked_decoder::status::data) ra.body.append(data);
                in.consume(used);
                if (st == http1::chunked_decoder::status::data) {
                    if (ra.body.size() >= max_limit) break;
                    continue;
                }
                if (st == http1::chunked_decoder::status::done) done = true;
                if (st == http1::chunked_decoder::status::error) {
                    conn.set_keep_alive(false);
                    co_await conn.send_local_reply(400, local_reply_reason::bad_request, true);
                    co_return false;
                }
                break;  // done, or need more
            }
        } else {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), remaining));
            ra.body.append(in.readable().substr(0, n));
            in.consume(n);
            remaining -= n;
            done = remaining == 0;
        }
        if (ra.body.size() > snap.max_body) {
            conn.set_keep_alive(false);
            co_await conn.send_local_reply(413, local_reply_reason::body_too_large, true);
            co_return false;
        }
        if ((ra.body.size() > piece_start || done) && !co_await body_piece(conn, route, side, ra.body, piece_start, done))
            co_return false;
        if (!done && ra.body.size() < max_limit && in.empty() && !co_await read_body_bytes(conn)) co_return false;
    }
    ra.body_complete = done;
    co_return co_await body_end(conn, route, side, ra.body, done);
}

}  // namespace

awaitable<bool> run_request_agents(http1_connection& conn, const config::route_config& route) {
    const snapshot& snap = conn.snap();
    const auto& indexes = snap.agents_for(route);
    if (indexes.empty()) co_return true;
    auto& ra = conn.agents();
    auto& worker = conn.worker();
    const bool has_body = request_has_body(conn.request());
    const bool upgrade = relayed_upgrade(conn.request(), route) != upgrade_kind::none;
    ra.entries.resize(indexes.size());
    for (std::size_t i = 0; i < indexes.size(); ++i) {
        ra.entries[i].index = indexes[i];
        ra.entries[i].ch = worker.agent_channel(snap, indexes[i]);
    }

    // Header events: one agent after the other, or all at once (agents-concurrent); either
    // way decisions apply in route order.
    enum start_result : char { not_wanted, started, too_large };
    auto start_headers = [&](request_agents::entry& e) {
        if (!e.stream.caps().wants(v1::REQUEST_HEADERS)) return not_wanted;
        v1::RequestHeaders ev;
        fill_request_headers(conn, route, ev);
        return e.stream.start(proto::frame_type::request_headers, ev,
                              !more_events_after_headers(e.stream.caps(), has_body, upgrade), cfg_of(conn, e).timeout)
                   ? started
                   : too_large;
    };
    auto finish_headers = [&](request_agents::entry& e, start_result how) -> awaitable<bool> {
        v1::Decision d;
        const auto st = how == too_large ? call_status::too_large : co_await e.stream.wait(conn.client_socket(), d);
        co_return co_await decide(conn, route, e, st, d, agent::decision_point::request_headers,
                                  has_body && inspects_request_body(e.stream.caps()));
    };
    if (route.agents_concurrent) {
        std::vector<start_result> started(ra.entries.size(), not_wanted);
        std::vector<agent_outcome> failures(ra.entries.size(), agent_outcome::allow);
        for (std::size_t i = 0; i < ra.entries.size(); ++i) {
            failures[i] = co_await open(conn, ra.entries[i]);
            if (failures[i] == agent_outcome::allow) started[i] = start_headers(ra.entries[i]);
        }
        for (std::size_t i = 0; i < ra.entries.size(); ++i) {
            auto& e = ra.entries[i];
            if (failures[i] != agent_outcome::allow) {
                if (!co_await unavailable(conn, route, e, failures[i])) co_return false;
            } else if (started[i] != not_wanted && !co_await finish_headers(e, started[i])) {
                co_return false;
            }
        }
    } else {
        for (auto& e : ra.entries) {
            const agent_outcome failure = co_await open(conn, e);
            if (failure != agent_outcome::allow) {
                if (!co_await unavailable(conn, route, e, failure)) co_return false;
                continue;
            }
            const start_result how = start_headers(e);
            if (how != not_wanted && !co_await finish_headers(e, how)) co_return false;
        }
    }
    // Agents inspect frames of the plain WebSocket protocol: no compression is negotiated
    // (compressed payloads could not be read, nor replaced).
    if (upgrade && std::any_of(ra.entries.begin(), ra.entries.end(), [](const auto& e) {
            return !e.skipped && e.stream.is_open() && e.stream.caps().wants(v1::WEBSOCKET_FRAME);
        })) {
        v1::HeaderMutation no_extensions;
        no_extensions.set_op(v1::HeaderMutation::REMOVE);
        no_extensions.set_name("Sec-WebSocket-Extensions");
        ra.request_edits.apply(no_extensions);
    }
    if (std::any_of(ra.entries.begin(), ra.entries.end(), [](const auto& e) { return e.wants_body && !e.skipped; }))
        co_return co_await inspect_request_body(conn, route);
    co_return true;
}

awaitable<bool> run_response_agents(http1_connection& conn, const config::route_config& route,
                                    const http1::response_head& response) {
    auto& ra = conn.agents();
    const bool has_body = response.framing != http1::body_framing::none &&
                          !(response.framing == http1::body_framing::content_length && response.content_length == 0);
    for (auto& e : ra.entries) {
        e.inspecting = false;  // the request body is behind us
        if (e.skipped || !e.stream.is_open() || !e.stream.caps().wants(v1::RESPONSE_HEADERS)) continue;
        v1::ResponseHeaders ev;
        ev.set_status(static_cast<std::uint32_t>(response.status));
        for (const auto& h : response.headers) {
            auto* out = ev.add_headers();
            out->set_name(std::string(h.name));
            out->set_value(std::string(h.value));
        }
        ev.set_has_body(has_body);
        ev.set_content_length(response.framing == http1::body_framing::content_length
                                  ? static_cast<std::int64_t>(response.content_length)
                                  : -1);
        const auto& caps = e.stream.caps();
        const bool body_events = has_body && caps.wants(v1::RESPONSE_BODY) && caps.response_body != v1::BODY_NONE;
        v1::Decision d;
        const bool frames = response.status == 101 && caps.wants(v1::WEBSOCKET_FRAME);
        const auto st = co_await e.stream.call(proto::frame_type::response_headers, ev,
                                               !body_events && !frames && !caps.wants(v1::REQUEST_COMPLETE),
                                               cfg_of(conn, e).timeout, conn.client_socket(), d);
        if (!co_await decide(conn, route, e, st, d, agent::decision_point::response_headers, body_events))
            co_return false;
    }
    co_return true;
}

bool response_body_wanted(http1_connection& conn) {
    const auto& entries = conn.agents().entries;
    return std::any_of(entries.begin(), entries.end(), [](const auto& e) { return e.inspecting && !e.skipped; });
}

awaitable<std::optional<std::uint64_t>> response_body_limit(http1_connection& conn, const config::route_config& route,
                                                            std::optional<std::uint64_t> declared) {
    co_return co_await body_limits(conn, route, body_side{true}, declared);
}

awaitable<bool> response_body_piece(http1_connection& conn, const config::route_config& route, std::string& body,
                                    std::size_t piece_start, bool done) {
    co_return co_await body_piece(conn, route, body_side{true}, body, piece_start, done);
}

awaitable<bool> response_body_end(http1_connection& conn, const config::route_config& route, std::string& body,
                                  bool done) {
    co_return co_await body_end(conn, route, body_side{true}, body, done);
}

namespace {

bool inspects_frames(const request_agents::entry& e) {
    return !e.skipped && e.stream.is_open() && e.stream.caps().wants(v1::WEBSOCKET_FRAME);
}

std::uint64_t frame_limit(const http1_connection& conn, const request_agents::entry& e) {
    const std::uint64_t agent_max = e.stream.caps().max_body;
    const std::uint64_t cfg_max = cfg_of(conn, e).max_body;
    return agent_max == 0 ? cfg_max : std::min(cfg_max, agent_max);
}

}  // namespace

bool websocket_inspected(http1_connection& conn) {
    const auto& entries = conn.agents().entries;
    return std::any_of(entries.begin(), entries.end(), inspects_frames);
}

std::uint64_t websocket_frame_limit(http1_connection& conn) {
    std::uint64_t limit = UINT64_MAX;
    for (const auto& e : conn.agents().entries)
        if (inspects_frames(e)) limit = std::min(limit, frame_limit(conn, e));
    return limit;
}

bool websocket_oversize_passes(http1_connection& conn) {
    for (const auto& e : conn.agents().entries)
        if (inspects_frames(e) && cfg_of(conn, e).over_limit == config::body_over_limit::reject) return false;
    return true;
}

awaitable<frame_verdict> websocket_frame_event(http1_connection& conn, bool client_to_server, std::uint8_t opcode,
                                               bool fin, std::string& payload) {
    auto& ra = conn.agents();
    // Both directions' pumps call here; a stream carries one event at a time.
    if (ra.frame_busy) {
        boost::asio::steady_timer t(conn.worker().io(), std::chrono::hours(24));
        request_agents::frame_waiter w{&t};
        ra.frame_waiters.push_back(&w);
        co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        std::erase(ra.frame_waiters, &w);
        if (!w.granted) co_return frame_verdict{false, false, 0};  // the tunnel is closing
    }
    ra.frame_busy = true;  // (a granted turn keeps it set)
    frame_verdict verdict;
    for (auto& e : ra.entries) {
        if (!inspects_frames(e)) continue;
        auto& state = e.ch->state();
        const auto& cfg = cfg_of(conn, e);
        v1::WebSocketFrame ev;
        ev.set_client_to_server(client_to_server);
        ev.set_opcode(opcode);
        ev.set_fin(fin);
        ev.set_payload(payload);
        v1::Decision d;
        const auto st = co_await e.stream.call(proto::frame_type::websocket_frame, ev, false, cfg.timeout, nullptr, d);
        std::optional<std::string> problem;
        if (st == call_status::decided) problem = agent::check_decision(d, agent::decision_point::websocket_frame, false);
        if (st != call_status::decided || problem) {
            if (problem) {
                e.ch->metrics().protocol_errors[static_cast<std::size_t>(observability::agent_protocol_error::bad_decision)].inc();
                observability::event_log::warn("agent sent an invalid decision", {{"agent", cfg.id}, {"problem", *problem}});
            }
            state.report(false, false, agent::now_ms(), cfg);
            count(e, st == call_status::timeout ? agent_outcome::timeout : agent_outcome::error);
            e.skipped = true;
            e.stream.cancel(v1::Cancel::ENDED);
            if (cfg.failure_mode == config::agent_failure_mode::open) {
                e.ch->metrics().fail_open.inc();
                continue;
            }
            conn.audit(observability::audit_reason::agent_decision,
                       "agent=" + cfg.id + " unavailable during a WebSocket connection, failure-mode closed", "blocked");
            verdict = {false, false, 1011};
            break;
        }
        state.report(true, false, agent::now_ms(), cfg);
        if (d.has_block()) {
            count(e, agent_outcome::block);
            ra.blocked_by = cfg.id;
            conn.audit(observability::audit_reason::agent_decision, audit_details(cfg.id, d, 1008), "blocked");
            verdict = {false, false, 1008};
            break;
        }
        count(e, agent_outcome::allow);
        if (d.has_replace_body()) {
            payload = d.replace_body();
            verdict.replaced = true;
        }
    }
    if (ra.frame_waiters.empty()) {
        ra.frame_busy = false;
    } else {
        ra.frame_waiters.front()->granted = true;
        ra.frame_waiters.front()->timer->cancel();
    }
    co_return verdict;
}

void finish_agents(http1_connection& conn) {
    auto& ra = conn.agents();
    if (!ra.active()) return;
    const auto& record = conn.record();
    for (auto& e : ra.entries) {
        if (e.stream.is_open() && !e.skipped && e.stream.caps().wants(v1::REQUEST_COMPLETE)) {
            v1::RequestComplete ev;
            ev.set_status(static_cast<std::uint32_t>(std::max(record.status, 0)));
            ev.set_bytes_received(record.bytes_received);
            ev.set_bytes_sent(record.bytes_sent);
            ev.set_duration_us(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                              std::chrono::steady_clock::now() - record.start)
                                                              .count()));
            ev.set_upstream(record.upstream_endpoint);
            ev.set_blocked_by(ra.blocked_by);
            e.stream.notify_end(proto::frame_type::request_complete, ev);
        }
        if (e.acquired) e.ch->state().release();
    }
    ra.entries.clear();  // open streams end with CANCEL(ENDED)
    ra.request_edits.clear();
    ra.response_edits.clear();
    ra.metadata.clear();
    ra.body.clear();
    ra.body_held = false;
    ra.body_complete = false;
    ra.decoder.reset();
    ra.blocked_by.clear();
}

}  // namespace sentinel::proxy
