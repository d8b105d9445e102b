#include "proxy/http1_connection.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/h2_connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <optional>
#include <tuple>

#include <boost/asio/ssl/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"
#include "net/proxy_protocol.hpp"
#include "observability/access_log.hpp"

namespace sentinel::proxy {

namespace asio = boost::asio;
using observability::local_reply_reason;
using observability::timeout_kind;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Where a connection's input buffer starts: a typical request head fits.
constexpr std::size_t initial_input = 8 * 1024;

// Room for the largest allowed head plus body reads of a useful size.
std::size_t input_capacity(const snapshot& snap) {
    return std::max<std::size_t>(64 * 1024, snap.limits.max_header_bytes + 16 * 1024);
}

local_reply_reason reason_of(http1::parse_error error) {
    switch (error) {
    case http1::parse_error::uri_too_long: return local_reply_reason::uri_too_long;
    case http1::parse_error::headers_too_large: return local_reply_reason::headers_too_large;
    case http1::parse_error::not_implemented: return local_reply_reason::not_implemented;
    case http1::parse_error::version_not_supported: return local_reply_reason::version_not_supported;
    default: return local_reply_reason::bad_request;
    }
}

// Why the codec refused a head, for the audit log. The codec answers "bad request" for every
// framing conflict; the header fields it left in `head` tell a smuggling attempt (ambiguous
// body framing, RFC 9112 §6.3) from plain garbage. 501/505 are not security decisions.
std::optional<observability::audit_reason> rejection_reason(http1::parse_error error,
                                                             const http1::request_head& head,
                                                             std::string_view& details) {
    using observability::audit_reason;
    switch (error) {
    case http1::parse_error::uri_too_long: details = "request line over max-request-line"; return audit_reason::uri_too_long;
    case http1::parse_error::headers_too_large: details = "header section over max-header-bytes or max-headers"; return audit_reason::headers_too_large;
    case http1::parse_error::bad_request: break;
    default: return std::nullopt;
    }
    int content_length = 0, transfer_encoding = 0, host = 0;
    bool bad_length = false;
    for (const auto& h : head.headers) {
        if (http1::iequals(h.name, "content-length")) {
            ++content_length;
            bad_length = bad_length || h.value.empty() ||
                         h.value.find_first_not_of("0123456789") != std::string_view::npos;
        } else if (http1::iequals(h.name, "transfer-encoding")) {
            ++transfer_encoding;
        } else if (http1::iequals(h.name, "host")) {
            ++host;
        }
    }
    if (content_length > 0 && transfer_encoding > 0) {
        details = "Content-Length and Transfer-Encoding together";
        return audit_reason::request_smuggling;
    }
    if (content_length > 1) {
        details = "several Content-Length fields";
        return audit_reason::request_smuggling;
    }
    if (bad_length) {
        details = "invalid Content-Length";
        return audit_reason::request_smuggling;
    }
    if (transfer_encoding > 0 && head.version_minor == 0) {
        details = "Transfer-Encoding on HTTP/1.0";
        return audit_reason::request_smuggling;
    }
    details = host > 1 ? "several Host fields" : "malformed request";
    return audit_reason::malformed_request;
}

// A client-supplied X-Request-Id is kept only if it is short and plainly printable, so it
// can be logged and echoed without escaping surprises.
bool safe_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=';
        if (!ok) return false;
    }
    return true;
}

net::ip_address to_ip(const asio::ip::address& address) {
    net::ip_address ip;
    if (address.is_v4()) {
        const auto bytes = address.to_v4().to_bytes();
        std::copy(bytes.begin(), bytes.end(), ip.bytes);
    } else {
        ip.v6 = true;
        const auto bytes = address.to_v6().to_bytes();
        std::copy(bytes.begin(), bytes.end(), ip.bytes);
    }
    return ip;
}

// "2026-11-26T23:59:59.123Z", with the seconds part formatted once per second per thread.
void append_timestamp(std::string& out) {
    thread_local std::time_t cached_second = -1;
    thread_local char cached[32];
    const auto now = std::chrono::system_clock::now();
    const auto since = now.time_since_epoch();
    const std::time_t second = std::chrono::duration_cast<std::chrono::seconds>(since).count();
    if (second != cached_second) {
        std::tm tm{};
        gmtime_r(&second, &tm);
        std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = second;
    }
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
    fmt::format_to(std::back_inserter(out), "{}.{:03}Z", cached, millis);
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":\"";
    observability::append_json_escaped(out, value);
    out += '"';
}

// Why a handshake failed, in the few classes an operator acts on differently.
observability::tls_failure classify(const boost::system::error_code& ec) {
    using observability::tls_failure;
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset)
        return tls_failure::client_closed;
    if (ec.category() != asio::error::get_ssl_category()) return tls_failure::other;
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST: return tls_failure::protocol_version;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM: return tls_failure::no_shared_cipher;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_NO_CERTIFICATES_RETURNED: return tls_failure::client_certificate;
    default: return tls_failure::other;
    }
}

}  // namespace

http1_connection::http1_connection(worker_context& worker, tcp::socket socket,
                                   std::string listener_key)
    : worker_(worker), socket_(std::move(socket)), listener_key_(std::move(listener_key)),
      snap_(worker.current()), in_(initial_input, input_capacity(*snap_)) {
    worker_.add(this);
}

http1_connection::http1_connection(http1_connection& parent, h2_connection& h2, std::int32_t stream_id)
    : worker_(parent.worker_), socket_(parent.worker_.io()), secure_(parent.secure_),
      client_cert_(parent.client_cert_), tls_version_(parent.tls_version_), listener_key_(parent.listener_key_),
      snap_(worker_.current()), in_(initial_input, input_capacity(*snap_)), peer_(parent.peer_),
      peer_text_(parent.peer_text_), h2_(&h2), parent_(&parent), stream_id_(stream_id),
      wake_(std::make_unique<asio::steady_timer>(worker_.io())) {}

http1_connection::~http1_connection() {
    if (parent_ != nullptr) return;  // a stream: its accepted connection is registered
    worker_.remove(this);
    worker_.release();
}

void http1_connection::wake() {
    if (wake_) wake_->cancel();
}

awaitable<void> http1_connection::wait_event() {
    wake_->expires_at(asio::steady_timer::time_point::max());
    co_await wake_->async_wait(use_tuple);
}

std::string_view http1_connection::protocol() const {
    if (parent_ != nullptr) return "HTTP/2";
    return request_.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

void http1_connection::drain() {
    if (h2_ != nullptr) {
        h2_->drain();  // GOAWAY; the streams finish
        return;
    }
    keep_alive_ = false;
    // An idle connection (waiting for the next request) closes now; a busy one after its
    // response, because keep_alive_ is now false.
    if (idle_) {
        boost::system::error_code ignored;
        socket_.cancel(ignored);
    }
}

void http1_connection::abort() {
    keep_alive_ = false;
    expired_ = true;  // no lingering close, no further reads
    boost::system::error_code ignored;
    if (h2_ != nullptr && parent_ == nullptr) h2_->abort();
    socket_.close(ignored);
    if (deadline_upstream_) deadline_upstream_->close();
    wake();
}

void http1_connection::set_deadline(timeout_kind kind, std::chrono::milliseconds after,
                                    upstream::pooled_connection* upstream) {
    deadline_kind_ = kind;
    deadline_upstream_ = upstream;
    expired_ = false;
    worker_.schedule_deadline(deadline_, steady_clock::now() + after);
}

void http1_connection::clear_deadline() {
    worker_.cancel_deadline(deadline_);
    deadline_upstream_ = nullptr;
}

void http1_connection::on_deadline() {
    // The operation in progress sees operation_aborted; expired() tells it why.
    expired_ = true;
    expired_kind_ = deadline_kind_;
    worker_.metrics.count_timeout(deadline_kind_);
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    if (deadline_upstream_) deadline_upstream_->cancel();
    wake();
}

awaitable<std::size_t> http1_connection::read_some(boost::system::error_code& ec) {
    if (parent_ != nullptr) {
        const std::size_t got = co_await h2_->read(*this, stream_id_, in_, ec);
        record_.bytes_received += got;
        co_return got;
    }
    auto [data, room] = in_.prepare();
    if (room == 0) {
        ec = asio::error::no_buffer_space;
        co_return 0;
    }
    auto [error, n] = tls_ ? co_await tls_->async_read_some(asio::buffer(data, room), use_tuple)
                           : co_await socket_.async_read_some(asio::buffer(data, room), use_tuple);
    ec = error;
    if (tls_ && error.category() == asio::error::get_ssl_category() && error != asio::ssl::error::stream_truncated)
        tls_error_ = true;
    in_.commit(n);
    record_.bytes_received += n;
    worker_.metrics.bytes_received.inc(n);
    co_return n;
}

awaitable<bool> http1_connection::write(std::string_view data, std::string_view more) {
    if (parent_ != nullptr) {
        const bool ok = co_await h2_->write(*this, stream_id_, data, more);
        if (ok) record_.bytes_sent += data.size() + more.size();
        co_return ok;
    }
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(data.data(), data.size()),
                                                    asio::buffer(more.data(), more.size())};
    std::size_t n = 0;
    boost::system::error_code ec;
    if (!tls_) {
        std::tie(ec, n) = co_await asio::async_write(socket_, buffers, use_tuple);
    } else if (!more.empty() && data.size() + more.size() <= 16 * 1024) {
        // One TLS record instead of two (and one write instead of two) for a head + small body.
        tls_gather_.assign(data).append(more);
        std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(tls_gather_), use_tuple);
    } else {
        std::tie(ec, n) = co_await asio::async_write(*tls_, buffers, use_tuple);
    }
    record_.bytes_sent += n;
    worker_.metrics.bytes_sent.inc(n);
    co_return !ec;
}

awaitable<void> http1_connection::send_local_reply(int status, local_reply_reason reason, bool close) {
    worker_.metrics.count_local(reason);
    if (close) keep_alive_ = false;
    record_.local_error = status >= 400;
    const std::string_view phrase = http1::reason_phrase(status);
    char body[64];
    const auto size = fmt::format_to_n(body, sizeof body, "{} {}\n", status, phrase).size;
    co_await send_response(status, "text/plain; charset=utf-8", std::string_view(body, size));
}

awaitable<void> http1_connection::send_response(int status, std::string_view content_type,
                                                std::string_view body,
                                                const std::vector<config::header_value>& headers,
                                                const config::header_ops* route_ops, bool head_only) {
    record_.status = status;
    out_.clear();
    http1::append_status_line(out_, status);
    bool has_type = false;
    for (const auto& h : headers) {
        has_type = has_type || http1::iequals(h.name, "content-type");
        http1::append_header(out_, h.name, h.value);
    }
    if (!has_type) http1::append_header(out_, "Content-Type", content_type);
    if (route_ops != nullptr) {
        for (const auto& h : route_ops->set) http1::append_header(out_, h.name, h.value);
        for (const auto& h : route_ops->add) http1::append_header(out_, h.name, h.value);
    }
    char length[24];
    const auto length_size = fmt::format_to_n(length, sizeof length, "{}", body.size()).size;
    http1::append_header(out_, "Content-Length", std::string_view(length, length_size));
    http1::append_header(out_, "X-Request-Id", record_.id());
    if (const auto* security = security_headers(record_.route)) append_security_headers(out_, *security, nullptr);
    if (!keep_alive_) http1::append_header(out_, "Connection", "close");
    http1::append_head_end(out_);
    if (!head_only) out_.append(body);
    set_deadline(timeout_kind::client_body_idle, snap_->cfg->timeouts.client_body_idle);
    if (!co_await write(out_)) keep_alive_ = false;
    clear_deadline();
}

void http1_connection::ensure_request_id() {
    for (const auto& h : request_.headers) {
        if (http1::iequals(h.name, "x-request-id") && safe_request_id(h.value)) {
            std::memcpy(record_.request_id, h.value.data(), h.value.size());
            record_.request_id_len = h.value.size();
            return;
        }
    }
    worker_.ids.next(record_.request_id);
    record_.request_id_len = 32;
}

void http1_connection::begin_record() {
    record_.status = 0;
    record_.bytes_sent = 0;
    record_.route = nullptr;
    record_.upstream_endpoint.clear();
    record_.upstream_reused = false;
    record_.trace_id.clear();
    record_.retries = 0;
    record_.upstream_connect = record_.upstream_header = std::chrono::microseconds(-1);
    record_.local_error = false;
    record_.method.assign(request_.method);  // the pipeline needs it after the head is gone
    ensure_request_id();
    record_.trace.active = record_.trace.sampled = false;
    if (snap_->tracer) begin_trace();
    // The rest is for the access log only: no copies and no header scan without one, nor
    // for a request sampled out whose line could not be written even if it failed.
    if (!snap_->access_log) return;
    const auto& cfg = *snap_->cfg->observability.access_log;
    record_.sampled = worker_.sample(cfg.sample_percent);
    if (!record_.sampled && !cfg.always_log_errors) return;
    record_.host.assign(request_.host);
    record_.path.assign(request_.path);
    record_.query.assign(request_.query);
    record_.user_agent.clear();
    for (const auto& h : request_.headers)
        if (http1::iequals(h.name, "user-agent")) record_.user_agent.assign(h.value);
}

std::string_view http1_connection::tls_sni() const {
    if (parent_ != nullptr) return parent_->tls_sni();
    if (!tls_) return {};
    const char* name = SSL_get_servername(tls_->native_handle(), TLSEXT_NAMETYPE_host_name);
    return name == nullptr ? std::string_view() : std::string_view(name);
}

void http1_connection::detach_head(std::string& storage) {
    const bool normalized = route_path_.data() == normalized_path_.data();
    storage.assign(in_.readable().substr(0, head_size_));
    request_.clear();
    http1::parse_request(storage, snap_->limits, request_);  // the same bytes parse the same way
    in_.consume(head_size_);
    head_size_ = 0;
    if (!normalized) route_path_ = request_.path;
}

void http1_connection::finish_record() {
    ++requests_;
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - record_.start);
    worker_.metrics.count_status(record_.status);
    worker_.request_counter(*snap_, listener_, record_.route, record_.method, record_.status).inc();
    worker_.route_metrics(*snap_, record_.route).duration.observe(elapsed);
    auto& per_listener = worker_.listener_metrics(*snap_, listener_);
    per_listener.request_bytes.inc(record_.bytes_received);
    per_listener.response_bytes.inc(record_.bytes_sent);
    if (record_.trace.sampled) finish_trace();
    if (snap_->access_log) {
        const auto& cfg = *snap_->cfg->observability.access_log;
        // Errors bypass sampling: a 5xx, a local error reply, or no response at all.
        const bool failed = record_.status >= 500 || record_.status == 0 || record_.local_error;
        if (record_.sampled || (cfg.always_log_errors && failed)) append_access_log(cfg, elapsed);
        else worker_.metrics.access_log_sampled_out.inc();
    }
    finish_agents(*this);  // after the access log, which may show the agents' metadata
    // Bytes already read past this request (pipelining) belong to the next one.
    record_.bytes_received = in_.size();
}

void http1_connection::begin_trace() {
    namespace tracing = observability::tracing;
    std::string_view traceparent;
    int traceparent_count = 0;
    std::string_view tracestate;
    std::string joined;  // several tracestate fields form one list (rare: allocates only then)
    for (const auto& h : request_.headers) {
        if (http1::iequals(h.name, "traceparent")) {
            traceparent = h.value;
            ++traceparent_count;
        } else if (http1::iequals(h.name, "tracestate")) {
            if (tracestate.empty()) {
                tracestate = h.value;
            } else {
                joined.assign(tracestate).append(",").append(h.value);
                tracestate = joined;
            }
        }
    }
    std::uint64_t random[4];
    for (auto& r : random) r = worker_.ids.next64();
    auto& t = record_.trace;
    tracing::start_request(t, traceparent, traceparent_count, tracestate,
                           snap_->tracer->settings().sample_percent, random);
    record_.trace_id.resize(32);
    tracing::to_hex(t.trace_id, 16, record_.trace_id.data());
    if (!t.sampled) return;
    // Copies only for sampled requests: the head's views do not outlive the pipeline.
    t.start_unix_nano = tracing::unix_nanos_now() -
                        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                       steady_clock::now() - record_.start).count());
    t.path.assign(request_.path);
    t.host.assign(request_.host);
}

void http1_connection::finish_trace() {
    namespace tracing = observability::tracing;
    auto& t = record_.trace;
    t.name.assign(record_.method);
    if (record_.route) t.name.append(" ").append(record_.route->id);
    tracing::attribute attrs[8];
    std::size_t n = 0;
    attrs[n++] = tracing::text_attribute("http.request.method", record_.method);
    attrs[n++] = tracing::text_attribute("url.path", t.path);
    if (record_.route) attrs[n++] = tracing::text_attribute("http.route", record_.route->id);
    if (!t.host.empty()) attrs[n++] = tracing::text_attribute("server.address", t.host);
    if (record_.status != 0) attrs[n++] = tracing::int_attribute("http.response.status_code", record_.status);
    attrs[n++] = tracing::text_attribute("network.peer.address", peer_text_);
    attrs[n++] = tracing::text_attribute("sentinel.request_id", record_.id());
    if (listener_) attrs[n++] = tracing::text_attribute("sentinel.listener", listener_->id);
    tracing::span_data span;
    span.trace_id = t.trace_id;
    span.span_id = t.server_span_id;
    span.parent_span_id = t.has_parent ? t.parent_id : nullptr;
    span.trace_state = t.tracestate;
    span.name = t.name;
    span.kind = tracing::span_kind::server;
    span.flags = t.flags;
    span.start_unix_nano = t.start_unix_nano;
    span.end_unix_nano = tracing::unix_nanos_now();
    span.attributes = attrs;
    span.attribute_count = n;
    // 5xx, or no response at all (the client went away or the connection failed).
    span.error = record_.status >= 500 || record_.status == 0;
    worker_.add_span(span);
}

namespace {
void append_millis(std::string& out, std::string_view key, std::chrono::microseconds d) {
    fmt::format_to(std::back_inserter(out), ",\"{}\":{:.3f}", key, static_cast<double>(d.count()) / 1000.0);
}
}  // namespace

void http1_connection::append_access_log(const config::access_log_config& cfg, std::chrono::microseconds elapsed) {
    using config::access_log_field;
    std::string& line = worker_.log_buffer();
    const std::size_t start = line.size();
    line += '{';
    for (const access_log_field f : cfg.fields) {
        switch (f) {
        case access_log_field::timestamp:
            line += ",\"ts\":\"";
            append_timestamp(line);
            line += '"';
            break;
        case access_log_field::request_id: append_field(line, "request_id", record_.id()); break;
        case access_log_field::trace_id:
            if (!record_.trace_id.empty()) append_field(line, "trace_id", record_.trace_id);
            break;
        case access_log_field::client: append_field(line, "client", peer_text_); break;
        case access_log_field::listener:
            append_field(line, "listener", listener_ ? std::string_view(listener_->id) : std::string_view());
            break;
        case access_log_field::method: append_field(line, "method", record_.method); break;
        case access_log_field::host: append_field(line, "host", record_.host); break;
        case access_log_field::path: append_field(line, "path", record_.path); break;
        case access_log_field::query: append_field(line, "query", record_.query); break;
        case access_log_field::status: fmt::format_to(std::back_inserter(line), ",\"status\":{}", record_.status); break;
        case access_log_field::bytes_sent:
            fmt::format_to(std::back_inserter(line), ",\"bytes_sent\":{}", record_.bytes_sent);
            break;
        case access_log_field::bytes_received:
            fmt::format_to(std::back_inserter(line), ",\"bytes_received\":{}", record_.bytes_received);
            break;
        case access_log_field::duration: append_millis(line, "duration_ms", elapsed); break;
        case access_log_field::upstream_connect_duration:
            if (record_.upstream_connect.count() >= 0) append_millis(line, "upstream_connect_ms", record_.upstream_connect);
            break;
        case access_log_field::upstream_header_duration:
            if (record_.upstream_header.count() >= 0) append_millis(line, "upstream_header_ms", record_.upstream_header);
            break;
        case access_log_field::upstream: append_field(line, "upstream", record_.upstream_endpoint); break;
        case access_log_field::route:
            append_field(line, "route", record_.route ? std::string_view(record_.route->id) : std::string_view());
            break;
        case access_log_field::tls_version:
            if (!tls_version_.empty()) append_field(line, "tls_version", tls_version_);
            break;
        case access_log_field::user_agent: append_field(line, "user_agent", record_.user_agent); break;
        case access_log_field::protocol: append_field(line, "protocol", protocol()); break;
        case access_log_field::retries: fmt::format_to(std::back_inserter(line), ",\"retries\":{}", record_.retries); break;
        case access_log_field::agent_metadata:
            if (!agents_.metadata.empty()) {
                line += ",\"agent_metadata\":{";
                for (std::size_t i = 0; i < agents_.metadata.size(); ++i) {
                    if (i > 0) line += ',';
                    line += '"';
                    observability::append_json_escaped(line, agents_.metadata[i].first);
                    line += "\":\"";
                    observability::append_json_escaped(line, agents_.metadata[i].second);
                    line += '"';
                }
                line += '}';
            }
            break;
        case access_log_field::count_: break;
        }
    }
    // Every field wrote a leading comma; the first one's goes.
    if (line.size() > start + 1 && line[start + 1] == ',') line.erase(start + 1, 1);
    line += "}\n";
    worker_.log_line_done();
}

void http1_connection::audit(observability::audit_reason reason, std::string_view details,
                             std::string_view decision) {
    worker_.metrics.audit_events[static_cast<std::size_t>(reason)].inc();
    if (!snap_ || !snap_->audit_log) return;
    std::string& line = worker_.audit_buffer();
    line += "{\"ts\":\"";
    append_timestamp(line);
    line += '"';
    append_field(line, "decision", decision);
    append_field(line, "reason", observability::to_string(reason));
    if (record_.request_id_len > 0) append_field(line, "request_id", record_.id());
    // Before the handshake completes peer_text_ is not set yet; the address is known.
    append_field(line, "client", peer_text_.empty() ? std::string_view(net::format_ip(peer_)) : std::string_view(peer_text_));
    append_field(line, "listener", listener_ ? std::string_view(listener_->id) : std::string_view());
    if (record_.route) append_field(line, "route", record_.route->id);
    if (!record_.method.empty()) append_field(line, "method", record_.method);
    append_field(line, "details", details);
    line += "}\n";
    // Flushed with the access log by the worker's 100 ms housekeeping (or the next batch).
}

bool http1_connection::refresh_snapshot() {
    snap_ = worker_.current();
    const auto it = snap_->listeners.find(listener_key_);
    if (it == snap_->listeners.end()) {
        listener_ = nullptr;
        return false;
    }
    listener_ = it->second;  // points into snap_, which this connection holds
    if (!peer_text_.empty()) peer_trusted_ = net::any_contains(listener_->trusted_proxies, peer_);
    return true;
}

awaitable<bool> http1_connection::read_proxy_header() {
    set_deadline(timeout_kind::client_header, snap_->cfg->timeouts.client_header);
    for (;;) {
        net::proxy_header header;
        std::size_t consumed = 0;
        const auto status = net::parse_proxy_header(in_.readable(), header, consumed);
        if (status == net::proxy_parse_status::done) {
            in_.consume(consumed);
            if (header.has_addresses) {
                peer_.v6 = header.source.v6;
                std::memcpy(peer_.bytes, header.source.bytes, sizeof peer_.bytes);
            }
            clear_deadline();
            co_return true;
        }
        if (status == net::proxy_parse_status::error) break;
        boost::system::error_code ec;
        if (co_await read_some(ec) == 0) break;
    }
    worker_.metrics.proxy_protocol_errors.inc();
    co_return false;
}

awaitable<bool> http1_connection::read_request_head() {
    const auto& timeouts = snap_->cfg->timeouts;
    bool header_clock_started = false;
    idle_ = true;
    // The parser works on whole heads, so a head that trickles in would be re-parsed from its
    // start on every read: quadratic for a client sending a byte at a time. Parse only the
    // first bytes (to reject garbage early), once the blank line that ends a head is there, or
    // when the bytes exceed a limit (the parser then answers 414/431).
    std::size_t scanned = 0;
    bool parsed_once = false;
    bool line_complete = false;
    const auto& limits = snap_->limits;
    for (;;) {
        const std::string_view data = in_.readable();
        const std::size_t from = scanned > 3 ? scanned - 3 : 0;
        const bool head_complete = data.find("\r\n\r\n", from) != std::string_view::npos;
        line_complete = line_complete || data.find("\r\n", from) != std::string_view::npos;
        scanned = data.size();
        const bool over_limit = data.size() > limits.max_header_bytes ||
                                (!line_complete && data.size() > limits.max_request_line);
        if (!data.empty() && (!parsed_once || head_complete || over_limit)) {
            if (idle_) {
                idle_ = false;
                record_.start = steady_clock::now();
            }
            parsed_once = true;
            request_.clear();
            const auto outcome = http1::parse_request(data, snap_->limits, request_);
            if (outcome.status == http1::parse_status::done) {
                clear_deadline();
                head_size_ = outcome.consumed;
                co_return true;
            }
            if (outcome.status == http1::parse_status::error) {
                std::string_view details;
                const auto audited = rejection_reason(outcome.error, request_, details);
                request_.clear();
                begin_record();
                if (audited) audit(*audited, details);
                co_await send_local_reply(http1::status_of(outcome.error), reason_of(outcome.error), true);
                finish_record();
                co_return false;
            }
        }
        if (idle_) {
            if (!keep_alive_) co_return false;  // draining: no new request on this connection
            in_.shrink();  // an idle connection keeps only the initial buffer
            // The first request gets the header timeout from accept; later ones may idle.
            set_deadline(requests_ == 0 ? timeout_kind::client_header : timeout_kind::keepalive_idle,
                         requests_ == 0 ? timeouts.client_header : timeouts.keepalive_idle);
        } else if (!header_clock_started) {
            // Slowloris bound: the whole head must arrive within client-header.
            header_clock_started = true;
            set_deadline(timeout_kind::client_header, timeouts.client_header);
        }
        boost::system::error_code ec;
        if (co_await read_some(ec) > 0) continue;
        if (expired() && expired_kind() == timeout_kind::client_header && !idle_) {
            request_.clear();
            begin_record();
            co_await send_local_reply(408, local_reply_reason::client_header_timeout, true);
            finish_record();
        }
        // A connection that never sent a byte, or idled out between requests, closes silently.
        keep_alive_ = false;
        co_return false;
    }
}

awaitable<bool> http1_connection::tls_handshake() {
    auto it = snap_->tls_contexts.find(listener_key_);
    if (it == snap_->tls_contexts.end()) co_return false;
    tls_context_ = it->second;
    SSL* ssl = SSL_new(tls_context_->native());
    if (ssl == nullptr) co_return false;
    tls_ = std::make_unique<tls_stream>(socket_, ssl);  // takes ownership of `ssl`
    set_deadline(timeout_kind::client_header, snap_->cfg->timeouts.client_header);
    // Bytes that arrived with a PROXY header belong to the ClientHello.
    auto [ec, used] = co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                                      asio::buffer(in_.readable().data(), in_.size()), use_tuple);
    clear_deadline();
    in_.consume(std::min(used, in_.size()));
    if (ec) {
        const auto failure = expired() ? observability::tls_failure::timeout : classify(ec);
        worker_.metrics.count_tls_failure(failure);
        if (failure == observability::tls_failure::client_certificate)
            audit(observability::audit_reason::client_certificate, ec.message());
        keep_alive_ = false;
        co_return false;
    }
    SSL* handle = tls_->native_handle();
    secure_ = true;
    tls_version_ = tls::version_name(handle);
    client_cert_ = tls::verified_peer(handle);
    worker_.metrics.count_tls_handshake(tls_version_, tls::session_reused(handle));
    co_return true;
}

awaitable<void> http1_connection::lingering_close() {
    // Stop sending, then read and discard what the client still sends for a bounded time and
    // size, so the reply is not destroyed by a reset (RFC 9112 §9.6).
    boost::system::error_code ec;
    if (tls_ && !tls_error_) {
        // TLS: end the stream with close_notify first. A stream that just stops is a
        // truncation to the client (OpenSSL 3: "unexpected eof while reading"), which then
        // treats the session as bad and never resumes it. Marking the client's close_notify
        // as received makes the shutdown send ours without waiting for theirs.
        SSL_set_shutdown(tls_->native_handle(), SSL_get_shutdown(tls_->native_handle()) | SSL_RECEIVED_SHUTDOWN);
        set_deadline(timeout_kind::client_body_idle, std::chrono::seconds(2));
        std::tie(ec) = co_await tls_->async_shutdown(use_tuple);
        clear_deadline();
        if (expired()) co_return;
    }
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    set_deadline(timeout_kind::client_body_idle, std::chrono::seconds(2));
    std::size_t discarded = 0;
    while (discarded < 256 * 1024) {
        in_.consume(in_.size());
        std::size_t n = 0;
        if (tls_) {
            // The TLS session is closed: discard the raw bytes.
            auto [data, room] = in_.prepare();
            std::tie(ec, n) = co_await socket_.async_read_some(asio::buffer(data, room), use_tuple);
        } else {
            n = co_await read_some(ec);
        }
        if (n == 0) break;
        discarded += n;
    }
    clear_deadline();
}

awaitable<bool> http1_connection::wants_http2() {
    if (!listener_->http2.enabled) co_return false;
    if (tls_) co_return tls::selected_h2(tls_->native_handle());
    // h2c with prior knowledge (RFC 9113 §3.3). An HTTP/1.1 request differs from the preface
    // at its first byte (no method starts with "PRI * HTTP/2.0"), so it is not delayed.
    static constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    set_deadline(timeout_kind::client_header, snap_->cfg->timeouts.client_header);
    for (;;) {
        const std::string_view data = in_.readable();
        const std::size_t n = std::min(data.size(), preface.size());
        if (data.substr(0, n) != preface.substr(0, n)) break;
        if (n == preface.size()) {
            clear_deadline();
            co_return true;
        }
        boost::system::error_code ec;
        if (co_await read_some(ec) == 0) {
            keep_alive_ = false;  // gone or silent: as for an HTTP/1.1 connection, close quietly
            break;
        }
    }
    clear_deadline();
    co_return false;
}

awaitable<void> http1_connection::run_stream() {
    auto self = shared_from_this();
    // The stream's one request, on the newest snapshot, through the same pipeline.
    if (!refresh_snapshot()) {
        h2_->refuse_and_drain(stream_id_);
    } else if (co_await read_request_head()) {
        set_keep_alive(false);
        begin_record();
        co_await run_pipeline(*this);
        finish_record();
    }
    clear_deadline();
}

awaitable<void> http1_connection::run() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    const auto remote = socket_.remote_endpoint(ec);
    if (!ec) peer_ = to_ip(remote.address());
    socket_.set_option(tcp::no_delay(true), ec);

    if (!refresh_snapshot()) co_return;  // listener removed by a reload after accept
    {
        auto& per_listener = worker_.listener_metrics(*snap_, listener_);
        worker_.count_on_listener(this, listener_->tls ? per_listener.active_https : per_listener.active_http);
    }

    bool ok = true;
    if (listener_->proxy_protocol) ok = co_await read_proxy_header();
    if (ok && listener_->tls) ok = co_await tls_handshake();
    if (ok) {
        peer_text_ = net::format_ip(peer_);
        peer_trusted_ = net::any_contains(listener_->trusted_proxies, peer_);
        if (co_await wants_http2()) {
            h2_connection h2(*this);
            h2_ = &h2;
            co_await h2.run();
            h2_ = nullptr;
            keep_alive_ = false;
        }
        while (keep_alive_) {
            // Each request runs on the newest snapshot; a connection whose listener a reload
            // removed takes no new request (it drains).
            if (!refresh_snapshot()) break;
            if (!co_await read_request_head()) break;
            // Connection: close (or HTTP/1.0 without keep-alive) ends the connection after
            // this response, whichever phase answers it.
            set_keep_alive(request_.keep_alive);
            begin_record();
            co_await run_pipeline(*this);
            finish_record();
            if (worker_.draining()) keep_alive_ = false;
        }
        if (!expired() && socket_.is_open()) co_await lingering_close();

    }
    clear_deadline();
    // Clients rarely send close_notify; without this the session would be dropped from the
    // cache and never resume.
    if (tls_ && !tls_error_) tls::keep_session_on_close(tls_->native_handle());
    socket_.close(ec);
}

}  // namespace sentinel::proxy
