#include "proxy/upstream_exchange.hpp"

#include <openssl/ssl.h>

#include <cstring>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "http/http1/chunked.hpp"
#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"
#include "observability/event_log.hpp"
#include "proxy/chunked_scan.hpp"
#include "proxy/forwarding.hpp"
#include "router/route_table.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;
using observability::local_reply_reason;
using observability::timeout_kind;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_idempotent(std::string_view method) {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
           method == "PUT" || method == "DELETE";
}

// The request path after the route's rewrite (strip-prefix, then add-prefix). Stripping
// everything ("/api" from "/api") leaves the root, and a remainder without a leading slash
// gets one, so the add-prefix is joined to a path that always starts with "/".
std::string rewritten_path(const config::rewrite_config& rw, std::string_view path) {
    std::string stripped;
    // Strip on a segment boundary only: "/api" strips "/api" and "/api/x", not "/apix".
    const auto strips = [&](std::string_view prefix) {
        return path.starts_with(prefix) &&
               (prefix.ends_with('/') || path.size() == prefix.size() || path[prefix.size()] == '/');
    };
    if (rw.strip_prefix && strips(*rw.strip_prefix)) {
        path.remove_prefix(rw.strip_prefix->size());
        if (path.empty() || path.front() != '/') {
            stripped.assign("/").append(path);
            path = stripped;
        }
    }
    std::string out;
    if (rw.add_prefix) {
        std::string_view prefix = *rw.add_prefix;
        if (prefix.ends_with('/') && path.starts_with('/')) prefix.remove_suffix(1);
        out.assign(prefix);
    }
    out.append(path);
    return out;
}

// The value of cookie `name` in the request's Cookie fields, if any.
std::optional<std::string_view> find_cookie(const http1::request_head& request, std::string_view name) {
    for (const auto& h : request.headers) {
        if (!http1::iequals(h.name, "cookie")) continue;
        std::string_view rest = h.value;
        while (!rest.empty()) {
            const auto semi = rest.find(';');
            std::string_view pair = rest.substr(0, semi);
            rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
            while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
            const auto eq = pair.find('=');
            if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
        }
    }
    return std::nullopt;
}

// Sticky tokens name an endpoint without revealing its address.
std::uint64_t sticky_token(const upstream::endpoint& e) { return upstream::hash_bytes(e.key); }

std::optional<std::uint64_t> parse_hex64(std::string_view s) {
    if (s.size() != 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    return v;
}

upstream::attempt_result health_result(int status) {
    return status >= 500 ? upstream::attempt_result::server_error : upstream::attempt_result::success;
}

// SSL message callback during an upstream handshake: notes a CertificateRequest, so a
// refusal for want of a client certificate can be told from other failures even when the
// server's alert is lost (it closes with our request unread, and the reset discards it).
void note_certificate_request(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*,
                              void* arg) {
    if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        static_cast<const unsigned char*>(buf)[0] == SSL3_MT_CERTIFICATE_REQUEST)
        *static_cast<bool*>(arg) = true;
}

// Clears the connection's deadline on every exit path, before the upstream socket it may
// point at is destroyed.
struct deadline_guard {
    http1_connection& conn;
    ~deadline_guard() { conn.clear_deadline(); }
};

}  // namespace

upstream_exchange::upstream_exchange(http1_connection& down, const config::route_config& route,
                                     const upstream::upstream_group& group, const websocket_admission& websocket)
    : down_(down), route_(route), group_(group), snap_(down.snap()), websocket_(websocket),
      idle_after_(snap_.cfg->timeouts.upstream_body_idle) {}

upstream_exchange::~upstream_exchange() {
    if (try_span_.pending) emit_try_span(true);
    release_endpoint();
    if (retry_slot_) group_.state->end_retry();
    if (counted_in_flight_) group_.state->in_flight.fetch_sub(1, std::memory_order_relaxed);
}

// `current_.endpoint` non-null means its in_flight count includes this request (choose()).
void upstream_exchange::release_endpoint() {
    if (current_.endpoint != nullptr) current_.endpoint->state->in_flight.fetch_sub(1, std::memory_order_relaxed);
    current_.endpoint = nullptr;
}

awaitable<void> upstream_exchange::run() {
    co_await exchange();
    if (!pump_running_) co_return;
    // No whole response (a failure was answered instead): the upstream stream is stopped.
    if (!response_relayed_) {
        if (auto stream = pump_stream_.lock()) stream->cancel();
    }
    // The response is relayed; the client must finish its body in time (an HTTP/2 client is
    // told to stop by the RST_STREAM(NO_ERROR) after the response, which ends the pump).
    down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
    while (pump_running_) {
        pump_done_->expires_at(asio::steady_timer::time_point::max());
        co_await pump_done_->async_wait(use_tuple);
    }
    down_.clear_deadline();
    if (!request_complete_) down_.set_keep_alive(false);
}

awaitable<void> upstream_exchange::duplex_pump(std::shared_ptr<upstream::multiplexed_stream> stream) {
    auto& in = down_.input();
    http1::chunked_decoder decoder;
    std::uint64_t body_bytes = 0;
    for (;;) {
        const std::string_view data = in.readable();
        const chunked_scan scan = scan_chunked(decoder, data);
        body_bytes += scan.data_bytes;
        // Bad framing, over max-body, the client gone: the upstream stream is cancelled, so
        // the response fails too rather than answering half a request.
        if (scan.error || body_bytes > snap_.max_body) {
            stream->cancel();
            break;
        }
        if (scan.consumed > 0) {
            if (!co_await stream->write(data.substr(0, scan.consumed), {})) break;
            in.consume(scan.consumed);
        }
        if (scan.done) {
            request_complete_ = true;
            break;
        }
        boost::system::error_code ec;
        if (co_await down_.read_some(ec) == 0) {
            stream->cancel();
            break;
        }
    }
    pump_running_ = false;
    if (pump_done_) pump_done_->cancel();
}

awaitable<void> upstream_exchange::exchange() {
    deadline_guard guard{down_};
    auto& request = down_.request();
    auto& record = down_.record();
    auto& worker = down_.worker();
    const config::upstream_config& ucfg = *group_.cfg;
    const config::retry_policy& policy = route_.retry;

    // Per-upstream cap on requests in flight, counted across workers. Counting first and
    // checking the previous value makes the cap exact when workers race for the last slot.
    const std::int64_t in_flight_before = group_.state->in_flight.fetch_add(1, std::memory_order_relaxed);
    if (ucfg.max_in_flight != 0 && in_flight_before >= static_cast<std::int64_t>(ucfg.max_in_flight)) {
        group_.state->in_flight.fetch_sub(1, std::memory_order_relaxed);
        worker.metrics.upstream_refused[static_cast<std::size_t>(observability::upstream_refusal::max_in_flight)].inc();
        if (request.framing != http1::body_framing::none) down_.set_keep_alive(false);
        down_.input().consume(down_.head_size());
        co_await down_.send_local_reply(503, local_reply_reason::upstream_overloaded, !down_.keep_alive());
        co_return;
    }
    counted_in_flight_ = true;

    // Everything taken from the request head happens before the head's bytes are consumed.
    idempotent_ = is_idempotent(record.method);
    upgrade_kind_ = relayed_upgrade(request, route_);
    if (upgrade_kind_ == upgrade_kind::websocket && !websocket_.admitted()) upgrade_kind_ = upgrade_kind::none;
    upgrade_ = upgrade_kind_ != upgrade_kind::none;
    pick_.now = upstream::now_ms();
    if (ucfg.balancing == config::load_balancing::consistent_hash) {
        const config::hash_key_config key = ucfg.hash_key.value_or(config::hash_key_config{});
        pick_.hash = upstream::request_hash(key, request, down_.peer_text(), down_.route_path());
    }
    if (ucfg.sticky) {
        if (auto cookie = find_cookie(request, ucfg.sticky->cookie)) sticky_token_ = parse_hex64(*cookie);
    }
    current_ = choose();
    if (current_.endpoint == nullptr) {
        worker.metrics.upstream_refused[static_cast<std::size_t>(observability::upstream_refusal::no_available_endpoint)].inc();
        if (request.framing != http1::body_framing::none) down_.set_keep_alive(false);
        down_.input().consume(down_.head_size());
        co_await down_.send_local_reply(503, local_reply_reason::upstream_unavailable, !down_.keep_alive());
        co_return;
    }
    record.upstream_endpoint = current_.endpoint->key;

    forward_context ctx;
    ctx.request_id = record.id();
    ctx.peer = down_.peer_text();
    ctx.peer_trusted = down_.peer_trusted();
    ctx.scheme = down_.scheme();
    if (down_.client_certificate().present) {
        ctx.client_cert_subject = down_.client_certificate().subject;
        ctx.client_cert_fingerprint = down_.client_certificate().sha256;
    }
    ctx.upgrade = upgrade_kind_;
    std::string path;
    if (route_.rewrite.strip_prefix || route_.rewrite.add_prefix) {
        path = rewritten_path(route_.rewrite, down_.route_path());
        ctx.path = path;
    } else if (down_.route_path().data() != request.path.data()) {
        ctx.path = down_.route_path();
    }
    if (route_.rewrite.host) ctx.host_override = *route_.rewrite.host;
    ctx.default_host = current_.endpoint->key;
    char traceparent[observability::tracing::traceparent_size];
    if (record.trace.active) {
        observability::tracing::make_span_id(try_span_.id, worker.ids.next64());
        observability::tracing::format_traceparent(traceparent, record.trace.trace_id, try_span_.id, record.trace.flags);
        ctx.trace = true;
        ctx.traceparent = std::string_view(traceparent, sizeof traceparent);
        ctx.tracestate = record.trace.tracestate;
    }
    auto& agents = down_.agents();
    if (agents.active()) {
        ctx.agent_edits = &agents.request_edits;
        if (agents.body_held && agents.body_complete) ctx.body_length = agents.body.size();
    }
    build_upstream_head(down_.upstream_head(), request, route_, ctx);
    down_.set_keep_alive(request.keep_alive);
    // The head's bytes are no longer needed; from here on only copies and scalars are used.
    down_.input().consume(down_.head_size());

    replayable_ = request.framing == http1::body_framing::none;
    if (agents.body_held) {
        // The agents read the body: all of it (sent from memory, so retries can resend it), or
        // its first part (the rest streams from the client after it).
        replay_ = std::move(agents.body);
        replayable_ = agents.body_complete;
        held_partial_ = !agents.body_complete;
    } else if (policy.attempts > 1 && !upgrade_ && request.framing == http1::body_framing::content_length &&
        request.content_length <= policy.max_body) {
        if (!co_await read_replay_body()) co_return;
        replayable_ = true;
    }

    for (std::uint32_t retries = 0;;) {
        if (record.trace.active) trace_try_begin(retries);
        const outcome result = co_await try_endpoint(current_);
        if (record.trace.sampled) trace_try_end(result);
        const std::int64_t now = upstream::now_ms();
        const auto try_end = std::chrono::steady_clock::now();
        const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(try_end - try_start_);
        const config::upstream_config& owner = *current_.group->cfg;
        const auto* cb = owner.circuit_breaker ? &*owner.circuit_breaker : nullptr;
        const auto* od = owner.outlier_detection ? &*owner.outlier_detection : nullptr;
        auto& state = *current_.endpoint->state;
        {
            // Per-upstream metrics of this try (the endpoint's group: a backup upstream counts as itself).
            using observability::upstream_try_failure;
            auto& um = worker.upstream_metrics(snap_, *current_.group);
            auto failed = [&](upstream_try_failure f) { um.try_failures[static_cast<std::size_t>(f)].inc(); };
            switch (result) {
            case outcome::ok:
                um.response_header_duration.observe(latency);
                record.upstream_header = std::chrono::duration_cast<std::chrono::microseconds>(try_end - record.start);
                um.responses[observability::status_class_of(response_.status)].inc();
                break;
            case outcome::connect_failed: failed(upstream_try_failure::connect_failure); break;
            case outcome::connect_timeout: failed(upstream_try_failure::connect_timeout); break;
            case outcome::timeout: failed(upstream_try_failure::timeout); break;
            case outcome::reset: failed(upstream_try_failure::reset); break;
            case outcome::bad_response: failed(upstream_try_failure::bad_response); break;
            case outcome::refused: failed(upstream_try_failure::refused); break;
            default: break;
            }
        }
        switch (result) {
        case outcome::ok: state.report(now, health_result(response_.status), latency, cb, od); break;
        case outcome::connect_failed:
        case outcome::connect_timeout: state.report(now, upstream::attempt_result::connect_failure, latency, cb, od); break;
        case outcome::reset:
        case outcome::bad_response: state.report(now, upstream::attempt_result::reset, latency, cb, od); break;
        case outcome::timeout: state.report(now, upstream::attempt_result::timeout, latency, cb, od); break;
        case outcome::stale:  // never returned by try_endpoint
        case outcome::refused:
        case outcome::done: state.release(cb); break;
        }
        if (result == outcome::done) co_return;

        if (retries + 1 < policy.attempts && retryable(result)) {
            if (!group_.state->try_begin_retry(ucfg.retry_budget)) {
                worker.metrics.upstream_retry_budget_exhausted.inc();
            } else {
                pick_.now = now;
                const choice next = choose();  // the failed endpoint is marked tried
                if (next.endpoint != nullptr) {
                    release_endpoint();
                    if (retry_slot_) group_.state->end_retry();  // the previous retry's slot
                    retry_slot_ = true;
                    ++retries;
                    worker.metrics.upstream_retries.inc();
                    ++record.retries;
                    up_.reset();  // a response we will not relay: its connection cannot be reused
                    current_ = next;
                    record.upstream_endpoint = current_.endpoint->key;
                    co_await backoff(retries);
                    continue;
                }
                group_.state->end_retry();  // no endpoint left to retry on
            }
        }
        if (result == outcome::ok) break;
        co_await reply_failure(result);
        co_return;
    }

    // response_filters: the agents see the response head before the client does.
    if (agents.active() && (!co_await run_response_agents(down_, route_, response_) ||
                            (response_body_wanted(down_) && !co_await inspect_response_body()))) {
        up_.reset();  // the response is replaced: the rest of it is never read
        co_return;
    }
    if (response_.status == 101) {
        co_await tunnel();
        co_return;
    }
    if (ucfg.sticky) {
        const std::uint64_t token = sticky_token(*current_.endpoint);
        if (sticky_token_ != token) {
            char hex[17];
            std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(token));
            set_cookie_ = ucfg.sticky->cookie + "=" + hex + "; Path=/; HttpOnly";
            if (ucfg.sticky->ttl)
                set_cookie_ += "; Max-Age=" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*ucfg.sticky->ttl).count());
        }
    }
    const bool complete = co_await relay_response_body();
    response_relayed_ = complete;
    if (complete)
        worker.upstream_metrics(snap_, *current_.group)
            .request_duration.observe(std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - try_start_));
    down_.clear_deadline();
    if (!complete) {
        down_.set_keep_alive(false);
        co_return;
    }
    // A stream is done with its exchange (its connection stays with the other streams).
    if (response_.keep_alive && request_complete_ && up_->buffer.empty() && !up_->stream) {
        ++up_->requests;
        worker.pool.give_back(std::move(up_), current_.group->cfg->pool);
    }
}

void upstream_exchange::trace_try_begin(std::uint32_t retries) {
    namespace tracing = observability::tracing;
    auto& record = down_.record();
    if (retries > 0) {
        // Each try is its own CLIENT span: the upstream sees it as its parent.
        if (try_span_.pending) emit_try_span(false);
        tracing::make_span_id(try_span_.id, down_.worker().ids.next64());
        std::string& head = down_.upstream_head();
        const std::size_t at = head.find("\r\ntraceparent: ");
        if (at != std::string::npos)
            tracing::to_hex(try_span_.id, 8, head.data() + at + 15 + tracing::traceparent_span_offset);
    }
    if (!record.trace.sampled) return;
    try_span_.start = tracing::unix_nanos_now();
    try_span_.attempt = retries + 1;
    try_span_.endpoint = current_.endpoint;
    try_span_.group = current_.group;
}

void upstream_exchange::trace_try_end(outcome result) {
    try_span_.pending = true;
    try_span_.end = observability::tracing::unix_nanos_now();
    try_span_.result = result;
    try_span_.status = result == outcome::ok ? response_.status : 0;
}

void upstream_exchange::emit_try_span(bool exchange_ended) {
    namespace tracing = observability::tracing;
    try_span_.pending = false;
    const auto& t = down_.record().trace;
    static constexpr std::string_view outcome_names[] = {"ok", "stale", "connect_failure", "connect_timeout",
                                                         "refused", "reset", "timeout", "bad_response", "aborted"};
    const std::string_view outcome_name = outcome_names[static_cast<std::size_t>(try_span_.result)];
    const std::string& group_id = try_span_.group ? try_span_.group->id : group_.id;
    char name[160] = "upstream ";
    const std::size_t id_size = std::min(group_id.size(), sizeof name - 9);
    std::memcpy(name + 9, group_id.data(), id_size);
    tracing::attribute attrs[7];
    std::size_t n = 0;
    attrs[n++] = tracing::text_attribute("http.request.method", down_.record().method);
    attrs[n++] = tracing::text_attribute("sentinel.upstream", group_id);
    if (try_span_.endpoint) {
        attrs[n++] = tracing::text_attribute("sentinel.upstream.endpoint", try_span_.endpoint->key);
        attrs[n++] = tracing::text_attribute("server.address", try_span_.endpoint->host);
    }
    attrs[n++] = tracing::int_attribute("sentinel.upstream.attempt", try_span_.attempt);
    attrs[n++] = tracing::text_attribute("sentinel.upstream.outcome", outcome_name);
    if (try_span_.status != 0) attrs[n++] = tracing::int_attribute("http.response.status_code", try_span_.status);
    tracing::span_data span;
    span.trace_id = t.trace_id;
    span.span_id = try_span_.id;
    span.parent_span_id = t.server_span_id;
    span.trace_state = t.tracestate;
    span.name = std::string_view(name, 9 + id_size);
    span.kind = tracing::span_kind::client;
    span.flags = t.flags;
    span.start_unix_nano = try_span_.start;
    // The last successful try ends with the relayed response, not with its head.
    span.end_unix_nano = try_span_.result == outcome::ok && try_span_.status != 0 && exchange_ended
                             ? tracing::unix_nanos_now() : try_span_.end;
    span.attributes = attrs;
    span.attribute_count = n;
    span.error = try_span_.result != outcome::ok || try_span_.status >= 500;
    if (span.error && try_span_.result != outcome::ok) span.status_message = outcome_name;
    down_.worker().add_span(span);
}

bool upstream_exchange::sticky_choice(choice& out) {
    const upstream::endpoint_set* sets[2] = {&group_.primary, &group_.backup};
    for (int s = 0; s < 2; ++s) {
        const auto& eps = sets[s]->endpoints;
        for (std::size_t i = 0; i < eps.size(); ++i) {
            if (sticky_token(eps[i]) != *sticky_token_) continue;
            if (i < 64 && (tried_[s] >> i) & 1) return false;
            if (!eps[i].state->available(pick_.now)) return false;
            if (!eps[i].state->acquire(pick_.now, group_.cfg->circuit_breaker ? &*group_.cfg->circuit_breaker : nullptr)) {
                down_.worker().metrics.upstream_breaker_refusals.inc();
                return false;
            }
            if (i < 64) tried_[s] |= std::uint64_t{1} << i;
            out = {&eps[i], &group_};
            return true;
        }
    }
    return false;
}

// Primary endpoints first, then backup endpoints, then the backup upstream's (followed once).
// A breaker that refuses marks its endpoint tried and the pick goes on.
upstream_exchange::choice upstream_exchange::choose() {
    choice c;
    if (sticky_token_ && sticky_choice(c)) {
        c.endpoint->state->in_flight.fetch_add(1, std::memory_order_relaxed);
        return c;
    }
    const auto worker = down_.worker().index();
    const upstream::upstream_group* backup_group =
        group_.backup_upstream >= 0 ? &snap_.upstreams[static_cast<std::size_t>(group_.backup_upstream)] : nullptr;
    struct candidate { const upstream::endpoint_set* set; const upstream::upstream_group* group; };
    const candidate order[4] = {{&group_.primary, &group_},
                                {&group_.backup, &group_},
                                {backup_group ? &backup_group->primary : nullptr, backup_group},
                                {backup_group ? &backup_group->backup : nullptr, backup_group}};
    for (int s = 0; s < 4; ++s) {
        const auto& [set, group] = order[s];
        if (set == nullptr || set->endpoints.empty()) continue;
        const auto* cb = group->cfg->circuit_breaker ? &*group->cfg->circuit_breaker : nullptr;
        for (std::size_t guard = 0; guard <= set->endpoints.size(); ++guard) {
            pick_.tried = tried_[s];
            const int index = set->balancers[worker]->pick(pick_);
            if (index < 0) break;
            const auto i = static_cast<std::size_t>(index);
            if (i < 64) tried_[s] |= std::uint64_t{1} << i;
            const upstream::endpoint& e = set->endpoints[i];
            if (!e.state->acquire(pick_.now, cb)) {
                down_.worker().metrics.upstream_breaker_refusals.inc();
                if (i >= 64) break;  // cannot be excluded from the next pick
                continue;
            }
            e.state->in_flight.fetch_add(1, std::memory_order_relaxed);
            return {&e, group};
        }
    }
    return {};
}

// Reads a whole content-length body (it fits retry.max-body) so every try can resend it.
awaitable<bool> upstream_exchange::read_replay_body() {
    auto& request = down_.request();
    auto& in = down_.input();
    if (request.expect_continue && request.version_minor == 1 && in.size() < request.content_length) {
        if (!co_await down_.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return false;
    }
    replay_.reserve(request.content_length);
    while (replay_.size() < request.content_length) {
        if (in.empty()) {
            down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
            boost::system::error_code ec;
            if (co_await down_.read_some(ec) == 0) {
                co_await client_body_failed();
                co_return false;
            }
            down_.clear_deadline();
        }
        const std::size_t n = std::min<std::size_t>(in.size(), request.content_length - replay_.size());
        replay_.append(in.readable().substr(0, n));
        in.consume(n);
    }
    co_return true;
}

// Whether a failed try may be repeated on another endpoint: the route retries this kind of
// failure, and resending cannot do harm (nothing was sent, or the request is idempotent and
// complete in hand).
bool upstream_exchange::retryable(outcome result) const {
    const auto& policy = route_.retry;
    auto on = [&](config::retry_condition c) {
        return std::find(policy.on.begin(), policy.on.end(), c) != policy.on.end();
    };
    if (upgrade_) return false;
    const bool resendable = (idempotent_ || policy.non_idempotent) && (replayable_ || !body_started_);
    switch (result) {
    case outcome::connect_failed:
    case outcome::connect_timeout:
        // Nothing reached the upstream: safe for any method, as long as the body is still ours.
        return on(config::retry_condition::connect_failure) && (replayable_ || !body_started_);
    case outcome::reset:
    case outcome::bad_response: return on(config::retry_condition::reset) && resendable;
    case outcome::timeout: return on(config::retry_condition::timeout) && resendable;
    case outcome::ok:
        return resendable && std::find(policy.on_status.begin(), policy.on_status.end(), response_.status) !=
                                 policy.on_status.end();
    default: return false;
    }
}

// Full-jitter exponential backoff: a random wait up to min(max, base × 2^(retry-1)).
awaitable<void> upstream_exchange::backoff(std::uint32_t retry) {
    const auto& policy = route_.retry;
    auto cap = policy.backoff;
    for (std::uint32_t i = 1; i < retry && cap < policy.backoff_max; ++i) cap *= 2;
    cap = std::min(cap, policy.backoff_max);
    if (cap.count() <= 0) co_return;
    char id[32];
    down_.worker().ids.next(id);  // a cheap unpredictable source; only its first bytes are used
    std::uint64_t r = 0;
    for (int i = 0; i < 12; ++i) r = r * 16 + static_cast<std::uint64_t>(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    const auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(r % static_cast<std::uint64_t>(cap.count() + 1)));
    if (wait.count() == 0) co_return;
    asio::steady_timer timer(down_.worker().io(), wait);
    co_await timer.async_wait(use_tuple);
}

awaitable<void> upstream_exchange::reply_failure(outcome result) {
    auto& metrics = down_.worker().metrics;
    switch (result) {
    case outcome::connect_failed: co_await fail(502, local_reply_reason::upstream_connect_failure); break;
    case outcome::connect_timeout: co_await fail(504, local_reply_reason::upstream_connect_timeout); break;
    case outcome::timeout: co_await fail(504, local_reply_reason::upstream_response_timeout); break;
    case outcome::refused: co_await fail(503, local_reply_reason::upstream_overloaded); break;
    case outcome::bad_response: metrics.upstream_bad_responses.inc(); [[fallthrough]];
    default: co_await fail(502, local_reply_reason::upstream_bad_response); break;
    }
}

// One try on one endpoint: a pooled connection (retried once on a fresh one if the upstream
// had closed it), or a new one within the upstream's connection caps.
awaitable<upstream_exchange::outcome> upstream_exchange::try_endpoint(const choice& c) {
    auto& worker = down_.worker();
    const upstream::endpoint& endpoint = *c.endpoint;
    try_start_ = std::chrono::steady_clock::now();
    body_started_ = body_started_ && !replayable_;
    request_complete_ = false;
    const bool h2 = c.group->cfg->protocol == config::upstream_protocol::h2;
    for (int attempt = 0;; ++attempt) {
        if (h2) {
            // A stream on a multiplexed connection; a new connection only when none has room.
            auto& pool = worker.h2_upstreams;
            auto conn = attempt == 0 ? pool.find(endpoint.key, c.group->tls.get()) : nullptr;
            if (!conn && attempt == 0 && pool.connecting(endpoint.key)) {
                co_await pool.wait_connect(endpoint.key);  // another exchange is connecting: share it
                conn = pool.find(endpoint.key, c.group->tls.get());
            }
            down_.record().upstream_reused = conn != nullptr;
            if (conn) {
                worker.metrics.upstream_connections_reused.inc();
            } else {
                const bool first = !pool.connecting(endpoint.key);
                if (first) pool.begin_connect(endpoint.key, worker.io());
                const outcome connected = co_await connect(endpoint);
                if (first) pool.end_connect(endpoint.key);
                if (connected != outcome::ok) co_return connected;
                up_->count_in(c.group->state);
                conn = worker.h2_upstreams.adopt(worker, std::move(up_), c.group->cfg->pool.idle_timeout);
            }
            up_ = conn->open_stream(std::max<std::size_t>(64 * 1024, snap_.limits.max_header_bytes + 16 * 1024));
        } else {
            up_ = attempt == 0 ? worker.pool.take(endpoint.key, c.group->tls.get()) : nullptr;
            down_.record().upstream_reused = up_ != nullptr;
            if (up_) {
                worker.metrics.upstream_connections_reused.inc();
            } else {
                const outcome connected = co_await connect(endpoint);
                if (connected != outcome::ok) co_return connected;
                up_->count_in(c.group->state);
            }
        }
        worker.metrics.upstream_requests.inc();
        auto result = co_await send_request();
        if (result == outcome::ok) result = co_await read_response_head();
        // A stream the server refused (REFUSED_STREAM, beyond its GOAWAY) never reached it.
        if (h2 && up_ && up_->stream && up_->stream->refused() && result != outcome::ok) result = outcome::stale;
        if (result == outcome::stale && attempt == 0 && (replayable_ || !body_started_) &&
            (idempotent_ || route_.retry.non_idempotent)) {
            // The pooled connection was closed by the upstream before it saw our request.
            worker.metrics.upstream_stale_retries.inc();
            down_.clear_deadline();
            up_.reset();
            continue;
        }
        if (result == outcome::stale) result = outcome::reset;
        if (result == outcome::reset && !down_.record().upstream_reused && up_ && up_->tls &&
            up_->buffer.empty() && up_->tls_certificate_requested && !c.group->cfg->tls->client_certificate) {
            // TLS 1.3 lets the server refuse a missing client certificate only after our side
            // of the handshake ended; its alert is often lost to the reset that follows (it
            // closes with our request unread). Closed before any response byte after asking
            // for a certificate we do not have: the handshake failed, the request was unread.
            auto& metrics = worker.metrics;
            metrics.upstream_tls_handshake_failures.inc();
            metrics.upstream_connect_failures.inc();
            observability::event_log::warn("upstream \"" + c.group->id + "\": TLS handshake failed", {{"endpoint", endpoint.key}, {"host", endpoint.host}, {"reason", "the server asked for a client certificate and none is configured (connection closed before a response)"}});
            result = outcome::connect_failed;
        }
        if (result != outcome::ok) {
            down_.clear_deadline();
            up_.reset();
        }
        co_return result;
    }
}

awaitable<upstream_exchange::outcome> upstream_exchange::connect(const upstream::endpoint& endpoint) {
    auto& worker = down_.worker();
    const config::upstream_config& ucfg = *current_.group->cfg;
    auto& ustate = *current_.group->state;
    if (ucfg.max_connections != 0 &&
        ustate.connections.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(ucfg.max_connections)) {
        worker.metrics.upstream_refused[static_cast<std::size_t>(observability::upstream_refusal::max_connections)].inc();
        co_return outcome::refused;
    }
    const std::int64_t pending = ustate.pending.fetch_add(1, std::memory_order_relaxed) + 1;
    struct pending_guard {
        upstream::upstream_state& s;
        ~pending_guard() { s.pending.fetch_sub(1, std::memory_order_relaxed); }
    } pending_release{ustate};
    if (ucfg.max_pending != 0 && pending > static_cast<std::int64_t>(ucfg.max_pending)) {
        worker.metrics.upstream_refused[static_cast<std::size_t>(observability::upstream_refusal::max_pending)].inc();
        co_return outcome::refused;
    }
    const std::size_t capacity = std::max<std::size_t>(64 * 1024, snap_.limits.max_header_bytes + 16 * 1024);
    up_ = std::make_unique<upstream::pooled_connection>(worker.io(), capacity);
    up_->key = endpoint.key;
    const auto connect_start = std::chrono::steady_clock::now();
    down_.set_deadline(timeout_kind::upstream_connect, snap_.cfg->timeouts.upstream_connect, up_.get());
    auto [ec] = co_await up_->socket.async_connect(endpoint.address, use_tuple);
    if (ec) {
        worker.metrics.upstream_connect_failures.inc();
        const bool timed_out = down_.expired();
        down_.clear_deadline();
        up_.reset();
        co_return timed_out ? outcome::connect_timeout : outcome::connect_failed;
    }
    boost::system::error_code ignored;
    up_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (current_.group->tls) {
        // One upstream-connect budget for TCP and TLS: the caller asked for a connection.
        const outcome shaken = co_await tls_handshake(endpoint);
        if (shaken != outcome::ok) co_return shaken;
    }
    down_.clear_deadline();
    worker.metrics.upstream_connections_created.inc();
    worker.upstream_metrics(snap_, *current_.group)
        .connect_duration.observe(std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - connect_start));
    down_.record().upstream_connect = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - connect_start);
    co_return outcome::ok;
}

awaitable<upstream_exchange::outcome> upstream_exchange::tls_handshake(const upstream::endpoint& endpoint) {
    auto& metrics = down_.worker().metrics;
    const upstream::upstream_group& group = *current_.group;
    const std::string_view expected = group.cfg->tls->sni ? std::string_view(*group.cfg->tls->sni)
                                                          : std::string_view(endpoint.host);
    const auto failed = [&](std::string_view reason, bool timed_out) {
        metrics.upstream_tls_handshake_failures.inc();
        metrics.upstream_connect_failures.inc();
        observability::event_log::warn("upstream \"" + group.id + "\": TLS handshake failed", {{"endpoint", endpoint.key}, {"host", endpoint.host}, {"reason", reason}});
        down_.clear_deadline();
        up_.reset();
        return timed_out ? outcome::connect_timeout : outcome::connect_failed;
    };

    std::string error;
    SSL* ssl = SSL_new(group.tls->native());
    if (ssl == nullptr) co_return failed("cannot create a TLS connection", false);
    if (!group.tls->prepare(ssl, endpoint.host, endpoint.key, error)) {
        SSL_free(ssl);
        co_return failed(error, false);
    }
    up_->tls_context = group.tls;  // the SSL must not outlive its context
    up_->tls = std::make_unique<upstream::pooled_connection::tls_stream>(up_->socket, ssl);  // owns `ssl`
    SSL_set_msg_callback(ssl, note_certificate_request);
    SSL_set_msg_callback_arg(ssl, &up_->tls_certificate_requested);
    auto [ec] = co_await up_->tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    SSL_set_msg_callback(ssl, nullptr);  // it would run for every record
    if (ec) {
        if (down_.expired()) co_return failed("timed out (upstream-connect)", true);
        std::string reason = tls::client_context::verify_error(ssl, expected);
        if (reason.empty()) reason = ec.message();
        if (up_->tls_certificate_requested && !group.cfg->tls->client_certificate)
            reason += " (the server asked for a client certificate and none is configured)";
        co_return failed(reason, false);
    }
    if (group.cfg->protocol == config::upstream_protocol::h2 && !tls::selected_h2(ssl))
        co_return failed("the server did not select h2 in ALPN", false);
    // TLS 1.2 sessions are complete now; TLS 1.3 tickets arrive with the response and the
    // context's new-session callback stores them.
    group.tls->remember(ssl, endpoint.key);
    (tls::session_reused(ssl) ? metrics.upstream_tls_handshakes_resumed : metrics.upstream_tls_handshakes_full).inc();
    co_return outcome::ok;
}

awaitable<std::size_t> upstream_exchange::read_some_upstream(boost::system::error_code& ec) {
    if (up_->stream) co_return co_await up_->stream->read_some(up_->buffer, ec);
    auto [data, room] = up_->buffer.prepare();
    if (room == 0) {
        ec = asio::error::no_buffer_space;
        co_return 0;
    }
    auto [error, n] = up_->tls ? co_await up_->tls->async_read_some(asio::buffer(data, room), use_tuple)
                               : co_await up_->socket.async_read_some(asio::buffer(data, room), use_tuple);
    ec = error;
    up_->buffer.commit(n);
    co_return n;
}

awaitable<bool> upstream_exchange::write_upstream(std::string_view first, std::string_view second) {
    down_.set_deadline(idle_kind_, idle_after_, up_.get());
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(first.data(), first.size()),
                                                    asio::buffer(second.data(), second.size())};
    if (up_->stream) co_return co_await up_->stream->write(first, second);
    boost::system::error_code ec;
    std::size_t n = 0;
    if (!up_->tls) {
        std::tie(ec, n) = co_await asio::async_write(up_->socket, buffers, use_tuple);
    } else if (!first.empty() && !second.empty() && first.size() + second.size() <= 16 * 1024) {
        // The TLS stream writes one buffer per record: join a head and a small body.
        tls_gather_.assign(first).append(second);
        std::tie(ec, n) = co_await asio::async_write(*up_->tls, asio::buffer(tls_gather_), use_tuple);
    } else {
        std::tie(ec, n) = co_await asio::async_write(*up_->tls, buffers, use_tuple);
    }
    co_return !ec;
}

awaitable<upstream_exchange::outcome> upstream_exchange::send_request() {
    auto& request = down_.request();
    auto& in = down_.input();
    const std::string& head = down_.upstream_head();
    const outcome write_failed = down_.record().upstream_reused ? outcome::stale : outcome::reset;

    if (request.framing == http1::body_framing::none || replayable_) {
        if (!co_await write_upstream(head, replay_)) co_return down_.expired() ? outcome::timeout : write_failed;
        request_complete_ = true;
        co_return outcome::ok;
    }

    if (held_partial_) {
        body_started_ = true;
        if (request.framing == http1::body_framing::chunked) {
            // The held start goes as one chunk; the rest is re-chunked after it.
            std::string held;
            if (!replay_.empty()) {
                http1::append_chunk_header(held, replay_.size());
                held.append(replay_);
                http1::append_chunk_end(held);
            }
            if (!co_await write_upstream(head, held)) co_return down_.expired() ? outcome::timeout : write_failed;
            const outcome rest = co_await send_chunked_body(true);
            if (rest != outcome::ok) co_return rest;
        } else {
            if (!co_await write_upstream(head, replay_)) co_return down_.expired() ? outcome::timeout : write_failed;
            const outcome rest = co_await send_content_length_body(request.content_length - replay_.size());
            if (rest != outcome::ok) co_return rest;
        }
        request_complete_ = true;
        co_return outcome::ok;
    }

    // Tell a waiting client to send its body (we strip Expect towards the upstream).
    if (request.expect_continue && request.version_minor == 1 && in.empty() && !body_started_) {
        if (!co_await down_.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return outcome::done;
    }

    if (request.framing == http1::body_framing::content_length) {
        const std::uint64_t first = std::min<std::uint64_t>(in.size(), request.content_length);
        if (!co_await write_upstream(head, in.readable().substr(0, first)))
            co_return down_.expired() ? outcome::timeout : write_failed;
        body_started_ = first > 0;
        in.consume(first);
        const outcome rest = co_await send_content_length_body(request.content_length - first);
        if (rest != outcome::ok) co_return rest;
    } else {
        if (!co_await write_upstream(head)) co_return down_.expired() ? outcome::timeout : write_failed;
        if (up_->stream) {
            body_started_ = true;  // no retry: the pump consumes the body as it goes
            pump_running_ = true;
            if (!pump_done_) pump_done_ = std::make_unique<asio::steady_timer>(down_.worker().io());
            pump_stream_ = up_->stream;
            asio::co_spawn(down_.worker().io(), duplex_pump(up_->stream), asio::detached);
            co_return outcome::ok;
        }
        const outcome rest = co_await send_chunked_body(false);
        if (rest != outcome::ok) co_return rest;
    }
    request_complete_ = true;
    co_return outcome::ok;
}

awaitable<std::size_t> upstream_exchange::read_upstream(boost::system::error_code& ec) {
    down_.set_deadline(idle_kind_, idle_after_, up_.get());
    co_return co_await read_some_upstream(ec);
}

awaitable<bool> upstream_exchange::write_downstream(std::string_view first, std::string_view second) {
    down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
    co_return co_await down_.write(first, second);
}

awaitable<void> upstream_exchange::client_body_failed() {
    // The client stalled or went away mid-body: the upstream must not wait for the rest.
    const bool timed_out = down_.expired();
    down_.clear_deadline();
    up_.reset();
    down_.set_keep_alive(false);
    if (timed_out) co_await down_.send_local_reply(408, local_reply_reason::client_body_timeout, true);
}

awaitable<void> upstream_exchange::fail(int status, local_reply_reason reason) {
    down_.clear_deadline();
    up_.reset();
    const bool unread_body = !request_complete_ && !replayable_ && down_.request().framing != http1::body_framing::none;
    co_await down_.send_local_reply(status, reason, unread_body || !down_.keep_alive());
}

awaitable<upstream_exchange::outcome> upstream_exchange::send_content_length_body(std::uint64_t remaining) {
    auto& in = down_.input();
    while (remaining > 0) {
        down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
        boost::system::error_code ec;
        if (co_await down_.read_some(ec) == 0) {
            co_await client_body_failed();
            co_return outcome::done;
        }
        const std::uint64_t chunk = std::min<std::uint64_t>(in.size(), remaining);
        body_started_ = true;
        if (!co_await write_upstream(in.readable().substr(0, chunk)))
            co_return down_.expired() ? outcome::timeout : outcome::reset;
        in.consume(chunk);
        remaining -= chunk;
    }
    co_return outcome::ok;
}

awaitable<upstream_exchange::outcome> upstream_exchange::send_chunked_body(bool held_start) {
    auto& in = down_.input();
    http1::chunked_decoder fresh;
    http1::chunked_decoder& decoder = held_start ? down_.agents().decoder : fresh;
    std::uint64_t body_bytes = held_start ? replay_.size() : 0;
    std::string rechunked;
    for (;;) {
        const std::string_view data = in.readable();
        rechunked.clear();
        const chunked_scan scan = scan_chunked(decoder, data, held_start ? &rechunked : nullptr);
        body_bytes += scan.data_bytes;
        if (scan.error) {
            co_await fail(400, local_reply_reason::bad_request);
            co_return outcome::done;
        }
        if (body_bytes > snap_.max_body) {
            co_await fail(413, local_reply_reason::body_too_large);
            co_return outcome::done;
        }
        if (scan.consumed > 0) {
            body_started_ = true;
            const std::string_view out = held_start ? std::string_view(rechunked) : data.substr(0, scan.consumed);
            if (!out.empty() && !co_await write_upstream(out))
                co_return down_.expired() ? outcome::timeout : outcome::reset;
            in.consume(scan.consumed);
        }
        if (scan.done) co_return outcome::ok;
        if (!in.empty() && scan.consumed > 0) continue;  // re-chunking stopped at 64 KiB
        down_.set_deadline(timeout_kind::client_body_idle, snap_.cfg->timeouts.client_body_idle);
        boost::system::error_code ec;
        if (co_await down_.read_some(ec) == 0) {
            co_await client_body_failed();
            co_return outcome::done;
        }
    }
}

awaitable<upstream_exchange::outcome> upstream_exchange::read_response_head() {
    auto& buffer = up_->buffer;
    const bool http10_client = down_.request().version_minor == 0;
    const auto header_timeout = route_.retry.per_try_timeout.value_or(snap_.cfg->timeouts.upstream_response_header);
    down_.set_deadline(timeout_kind::upstream_response_header, header_timeout, up_.get());
    bool any_byte = false;
    for (;;) {
        if (!buffer.empty()) {
            any_byte = true;
            response_.clear();
            const auto result = http1::parse_response(buffer.readable(), snap_.limits,
                                                      down_.record().method, response_);
            if (result.status == http1::parse_status::error) co_return outcome::bad_response;
            if (result.status == http1::parse_status::done) {
                if (response_.status >= 100 && response_.status < 200 && response_.status != 101) {
                    // Interim responses (100, 103) go to HTTP/1.1 clients as they come; once
                    // one is out, this try is committed (no retry can take it back).
                    if (!http10_client) {
                        build_interim_head(down_.scratch(), response_);
                        if (!co_await down_.write(down_.scratch())) co_return outcome::done;
                        replayable_ = false;
                        body_started_ = true;
                    }
                    buffer.consume(result.consumed);
                    down_.set_deadline(timeout_kind::upstream_response_header, header_timeout, up_.get());
                    continue;
                }
                if (response_.status == 101 && !upgrade_) co_return outcome::bad_response;
                if (response_.status == 101 && upgrade_kind_ == upgrade_kind::websocket &&
                    !websocket_response_ok(down_, route_, websocket_, response_))
                    co_return outcome::bad_response;  // 502, and this connection is closed
                response_head_size_ = result.consumed;
                down_.clear_deadline();
                co_return outcome::ok;
            }
        }
        boost::system::error_code ec;
        const std::size_t n = co_await read_some_upstream(ec);
        if (ec == asio::error::no_buffer_space) co_return outcome::bad_response;
        if (n > 0) continue;
        if (down_.expired()) co_return outcome::timeout;
        if (up_->tls && ec.category() == asio::error::get_ssl_category()) {
            const auto& e = *current_.endpoint;
            if (!any_byte && !down_.record().upstream_reused) {
                // A fatal alert as the first thing on a new connection is the server refusing
                // the handshake: in TLS 1.3 it judges our client certificate (or its absence)
                // only after our side has finished, so the refusal arrives here. It never
                // read the request: a connect failure like any other failed handshake.
                auto& metrics = down_.worker().metrics;
                metrics.upstream_tls_handshake_failures.inc();
                metrics.upstream_connect_failures.inc();
                observability::event_log::warn("upstream \"" + current_.group->id + "\": TLS handshake failed", {{"endpoint", e.key}, {"host", e.host}, {"reason", "refused by the server: " + ec.message()}});
                co_return outcome::connect_failed;
            }
            observability::event_log::warn("upstream \"" + current_.group->id + "\": TLS error instead of a response", {{"endpoint", e.key}, {"host", e.host}, {"reason", ec.message()}});
        }
        if (!any_byte && down_.record().upstream_reused) co_return outcome::stale;
        co_return outcome::reset;
    }
}

}  // namespace sentinel::proxy
