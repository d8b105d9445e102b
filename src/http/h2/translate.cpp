#include "http/h2/translate.hpp"

#include "http/http1/parser.hpp"

namespace sentinel::h2 {

namespace {

// Heads the pipeline writes are bounded by its own limits; these only stop a runaway.
const http1::limits response_limits{16 * 1024, 256 * 1024, 1000};

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

}  // namespace

request_builder::field_status request_builder::add(std::string_view name, std::string_view value) {
    if (!name.empty() && name[0] == ':') {
        // nghttp2 has refused unknown, repeated and misplaced pseudo-header fields.
        if (name == ":method") method_ = value;
        else if (name == ":scheme") scheme_ = value;
        else if (name == ":authority") authority_ = value;
        else if (name == ":path") path_ = value;
        else if (name == ":protocol") protocol_ = value;
        return field_status::ok;
    }
    if (name == "cookie") {
        if (!cookie_.empty()) cookie_.append("; ");
        cookie_.append(value);
        return field_status::ok;
    }
    if (name == "host") {
        if (!host_.empty()) return field_status::malformed;
        host_ = value;
        return field_status::ok;
    }
    // nghttp2 let only "te: trailers" through; it is hop-by-hop for the HTTP/1.1 side.
    if (name == "te") return field_status::ok;
    if (name == "content-length") has_content_length_ = true;
    append_field(fields_, name, value);
    return field_status::ok;
}

void request_builder::add_trailer(std::string_view name, std::string_view value) {
    if (!name.empty() && name[0] == ':') return;
    append_field(trailers_, name, value);
}

bool request_builder::build(bool end_stream, std::string_view websocket_key, std::string& out) {
    // RFC 9113 §8.3.1: a Host that names another authority than :authority is malformed.
    if (!authority_.empty() && !host_.empty() && !http1::iequals(authority_, host_)) return false;
    const std::string_view host = authority_.empty() ? std::string_view(host_) : std::string_view(authority_);
    out.clear();
    out.reserve(64 + method_.size() + path_.size() + host.size() + fields_.size() + cookie_.size());
    if (method_ == "CONNECT") {
        if (!protocol_.empty()) {
            // RFC 8441: the only protocol this proxy bootstraps is WebSocket, which becomes
            // an HTTP/1.1 upgrade so the WebSocket phase checks it like any other.
            if (!http1::iequals(protocol_, "websocket")) return false;
            out.append("GET ").append(path_).append(" HTTP/1.1\r\n");
            append_field(out, "host", host);
            out.append("connection: upgrade\r\nupgrade: websocket\r\n");
            append_field(out, "sec-websocket-key", websocket_key);
            body_ = body_kind::tunnel;
        } else {
            // A classic CONNECT: the pipeline answers it (Sentinel is not a forward proxy).
            out.append("CONNECT ").append(authority_).append(" HTTP/1.1\r\n");
            append_field(out, "host", host);
            body_ = body_kind::none;
        }
        out.append(fields_);
        if (!cookie_.empty()) append_field(out, "cookie", cookie_);
        out.append("\r\n");
        return true;
    }
    out.append(method_).append(" ").append(path_).append(" HTTP/1.1\r\n");
    if (!host.empty()) append_field(out, "host", host);
    out.append(fields_);
    if (!cookie_.empty()) append_field(out, "cookie", cookie_);
    if (end_stream) {
        body_ = body_kind::none;
    } else if (has_content_length_) {
        body_ = body_kind::content_length;
    } else {
        body_ = body_kind::chunked;
        out.append("transfer-encoding: chunked\r\n");
    }
    out.append("\r\n");
    return true;
}

void field_list::add(std::string_view name, std::string_view value) {
    spans_.push_back({store_.size(), name.size(), value.size()});
    for (char c : name) store_.push_back(lower(c));
    store_.append(value);
}

const std::vector<field>& field_list::fields() const {
    if (fields_.size() != spans_.size()) {
        fields_.clear();
        const std::string_view all(store_);
        for (const auto& s : spans_)
            fields_.push_back({all.substr(s.at, s.name), all.substr(s.at + s.name, s.value)});
    }
    return fields_;
}

void body_reader::start(http1::body_framing framing, std::uint64_t length) {
    framing_ = framing;
    remaining_ = length;
    tail_.clear();
    trailers_.clear();
    chunked_.reset();
    expected_ = framing != http1::body_framing::none &&
                !(framing == http1::body_framing::content_length && length == 0);
    complete_ = !expected_;
}

bool body_reader::feed(std::string_view& bytes, std::string& out) {
    if (complete_) {
        bytes = {};  // nothing may follow a complete message
        return true;
    }
    switch (framing_) {
    case http1::body_framing::content_length: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
        out.append(bytes.substr(0, n));
        remaining_ -= n;
        complete_ = remaining_ == 0;
        break;
    }
    case http1::body_framing::chunked:
        while (!bytes.empty() && !complete_) {
            std::size_t used = 0;
            std::string_view data;
            const auto st = chunked_.decode(bytes, used, data);
            if (st == http1::chunked_decoder::status::data) {
                out.append(data);
                tail_.clear();
            } else {
                tail_.append(bytes.substr(0, used));  // bounded by the decoder's line and trailer limits
            }
            bytes.remove_prefix(used);
            if (st == http1::chunked_decoder::status::error) return false;
            if (st == http1::chunked_decoder::status::done) {
                complete_ = true;
                take_trailers();
            }
            if (st == http1::chunked_decoder::status::need_more) break;
        }
        break;
    case http1::body_framing::until_close: out.append(bytes); break;
    case http1::body_framing::none: break;
    }
    bytes = {};
    return true;
}

bool body_reader::finish() {
    if (framing_ == http1::body_framing::until_close) complete_ = true;
    return complete_;
}

void body_reader::take_trailers() {
    // tail_: [CRLF ending the last data] "0[;ext]" CRLF *(field CRLF) CRLF, checked by the decoder.
    std::string_view rest(tail_);
    while (rest.substr(0, 2) == "\r\n") rest.remove_prefix(2);
    const auto line_end = rest.find("\r\n");
    if (line_end == std::string_view::npos) return;
    rest.remove_prefix(line_end + 2);
    trailers_.clear();
    trailers_.reserve(rest.size());
    for (;;) {
        const auto end = rest.find("\r\n");
        if (end == std::string_view::npos || end == 0) break;
        const std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view name = line.substr(0, colon);
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        // RFC 9110 §6.5.1: no framing, routing or connection fields in trailers.
        if (http1::is_hop_by_hop(name) || http1::iequals(name, "content-length") || http1::iequals(name, "host"))
            continue;
        trailers_.add(name, value);
    }
    tail_.clear();
}

namespace {

// Accumulates a head until its blank line; false while more is needed. On true, `bytes` holds
// what followed the head once `consumed` (the head's size) is known: see hand_back().
bool head_complete(std::string& head, std::string_view& bytes) {
    const std::size_t before = head.size();
    head.append(bytes);
    const std::size_t from = before > 3 ? before - 3 : 0;
    return head.find("\r\n\r\n", from) != std::string::npos;
}

// The bytes of `bytes` after a head of `consumed` bytes (the rest of `head` came from it).
std::string_view hand_back(const std::string& head, std::size_t consumed, std::string_view bytes) {
    return bytes.substr(bytes.size() - (head.size() - consumed));
}

std::size_t field_bytes(const std::vector<http1::header>& headers) {
    std::size_t n = 0;
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
}

}  // namespace

void response_translator::start(std::string_view request_method, bool tunnel) {
    method_ = request_method;
    tunnel_ = tunnel;
}

response_translator::status response_translator::feed(std::string_view& bytes, std::string& body) {
    if (head_done_) return body_.feed(bytes, body) ? status::need_more : status::error;
    if (!head_complete(head_, bytes)) {
        bytes = {};
        return head_.size() > response_limits.max_header_bytes ? status::error : status::need_more;
    }
    parsed_.clear();
    // An extended CONNECT went to the pipeline as a GET upgrade: parse its answer as one.
    const auto outcome = http1::parse_response(head_, response_limits, tunnel_ ? "GET" : method_, parsed_);
    if (outcome.status != http1::parse_status::done) return status::error;
    bytes = hand_back(head_, outcome.consumed, bytes);
    const int code = parsed_.status;
    const bool upgraded = code == 101;
    if (upgraded && !tunnel_) return status::error;  // HTTP/2 has no 101 (RFC 9113 §8.6)
    status_code_ = upgraded ? 200 : code;
    // Any 2xx to an extended CONNECT means "tunnel open" (RFC 8441 §5): an upstream that
    // answered the upgrade with a plain 2xx did not open one.
    if (tunnel_ && !upgraded && code >= 200 && code < 300) status_code_ = 502;

    // Fields: lowercased, without the connection-specific ones HTTP/2 forbids.
    fields_.clear();
    fields_.reserve(field_bytes(parsed_.headers));
    for (const auto& h : parsed_.headers) {
        if (http1::is_hop_by_hop(h.name) || http1::named_in_connection(parsed_.headers, h.name)) continue;
        if (upgraded && http1::iequals(h.name, "sec-websocket-accept")) continue;
        fields_.add(h.name, h.value);
    }
    head_.clear();
    if (code >= 100 && code < 200 && !upgraded) return status::informational;
    head_done_ = true;
    body_.start(upgraded ? http1::body_framing::until_close : parsed_.framing, parsed_.content_length);
    return status::head;
}

bool response_translator::finish() { return head_done_ && body_.finish(); }

request_translator::status request_translator::feed(std::string_view& bytes, std::string& body) {
    if (head_done_) return body_.feed(bytes, body) ? status::need_more : status::error;
    if (!head_complete(head_, bytes)) {
        bytes = {};
        return head_.size() > response_limits.max_header_bytes ? status::error : status::need_more;
    }
    parsed_.clear();
    const auto outcome = http1::parse_request(head_, response_limits, parsed_);
    if (outcome.status != http1::parse_status::done || parsed_.has_upgrade) return status::error;
    bytes = hand_back(head_, outcome.consumed, bytes);
    method_ = parsed_.method;
    fields_.clear();
    fields_.reserve(field_bytes(parsed_.headers) + parsed_.method.size() + parsed_.target.size() +
                    parsed_.host.size() + 64);
    fields_.add(":method", parsed_.method);
    fields_.add(":scheme", tls_ ? "https" : "http");
    fields_.add(":authority", parsed_.host.empty() ? authority_ : parsed_.host);
    fields_.add(":path", parsed_.target);
    bool grpc = false;
    for (const auto& h : parsed_.headers) {
        if (http1::is_hop_by_hop(h.name) || http1::named_in_connection(parsed_.headers, h.name) ||
            http1::iequals(h.name, "host"))
            continue;
        if (http1::iequals(h.name, "content-type") && http1::iequals(h.value.substr(0, 16), "application/grpc"))
            grpc = true;
        fields_.add(h.name, h.value);
    }
    // TE is hop-by-hop for HTTP/1.1, so the pipeline dropped it; gRPC servers want it.
    if (grpc) fields_.add("te", "trailers");
    head_.clear();
    head_done_ = true;
    body_.start(parsed_.framing, parsed_.content_length);
    return status::head;
}

std::string websocket_key(const std::array<std::uint8_t, 16>& nonce) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve(24);
    for (std::size_t i = 0; i < 15; i += 3) {
        const std::uint32_t v = (nonce[i] << 16) | (nonce[i + 1] << 8) | nonce[i + 2];
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        out.push_back(alphabet[v & 63]);
    }
    const std::uint32_t last = nonce[15];
    out.push_back(alphabet[(last >> 2) & 63]);
    out.push_back(alphabet[(last << 4) & 63]);
    out.append("==");
    return out;
}

}  // namespace sentinel::h2
