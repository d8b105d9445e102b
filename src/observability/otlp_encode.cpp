// Hand-written protobuf wire encoding of the few OTLP messages Sentinel exports. Field numbers
// and types follow third_party/opentelemetry-proto (trace/v1/trace.proto, common/v1/common.proto,
// resource/v1/resource.proto, collector/trace/v1/trace_service.proto). Sizes are computed
// before writing so nested messages need no temporary buffers and no memmove.
#include "observability/tracing.hpp"

#include <chrono>

namespace sentinel::observability::tracing {

namespace {

enum wire : std::uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// Field numbers (see the .proto files named above).
namespace field {
constexpr std::uint32_t request_resource_spans = 1;  // ExportTraceServiceRequest
constexpr std::uint32_t rs_resource = 1, rs_scope_spans = 2;  // ResourceSpans
constexpr std::uint32_t resource_attributes = 1;              // Resource
constexpr std::uint32_t ss_scope = 1, ss_spans = 2;           // ScopeSpans
constexpr std::uint32_t scope_name = 1, scope_version = 2;    // InstrumentationScope
constexpr std::uint32_t kv_key = 1, kv_value = 2;             // KeyValue
constexpr std::uint32_t any_string = 1, any_int = 3;          // AnyValue
constexpr std::uint32_t span_trace_id = 1, span_span_id = 2, span_trace_state = 3, span_parent_span_id = 4,
                        span_name = 5, span_kind = 6, span_start = 7, span_end = 8, span_attributes = 9,
                        span_status = 15, span_flags = 16;    // Span
constexpr std::uint32_t status_message = 2, status_code = 3;  // Status
}  // namespace field

constexpr std::uint64_t status_code_error = 2;

std::size_t varint_size(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}
std::size_t tag_size(std::uint32_t f) { return varint_size(static_cast<std::uint64_t>(f) << 3); }
std::size_t bytes_field_size(std::uint32_t f, std::size_t len) { return tag_size(f) + varint_size(len) + len; }

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}
void put_tag(std::string& out, std::uint32_t f, wire w) { put_varint(out, (static_cast<std::uint64_t>(f) << 3) | w); }
void put_bytes(std::string& out, std::uint32_t f, std::string_view data) {
    put_tag(out, f, length_delimited);
    put_varint(out, data.size());
    out.append(data);
}
void put_bytes(std::string& out, std::uint32_t f, const std::uint8_t* data, std::size_t n) {
    put_bytes(out, f, std::string_view(reinterpret_cast<const char*>(data), n));
}
void put_len(std::string& out, std::uint32_t f, std::size_t len) {
    put_tag(out, f, length_delimited);
    put_varint(out, len);
}
void put_fixed(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);  // little-endian
}

std::size_t any_value_size(const attribute& a) {
    // int64 is encoded as the 64-bit two's complement varint (10 bytes when negative).
    return a.is_int ? tag_size(field::any_int) + varint_size(static_cast<std::uint64_t>(a.number))
                    : bytes_field_size(field::any_string, a.text.size());
}
std::size_t key_value_size(const attribute& a) {
    return bytes_field_size(field::kv_key, a.key.size()) + bytes_field_size(field::kv_value, any_value_size(a));
}
void put_key_value(std::string& out, std::uint32_t f, const attribute& a) {
    put_len(out, f, key_value_size(a));
    put_bytes(out, field::kv_key, a.key);
    put_len(out, field::kv_value, any_value_size(a));
    if (a.is_int) {
        put_tag(out, field::any_int, varint);
        put_varint(out, static_cast<std::uint64_t>(a.number));
    } else {
        put_bytes(out, field::any_string, a.text);
    }
}

std::size_t status_size(const span_data& s) {
    return (s.status_message.empty() ? 0 : bytes_field_size(field::status_message, s.status_message.size())) +
           tag_size(field::status_code) + varint_size(status_code_error);
}

std::size_t span_size(const span_data& s) {
    std::size_t n = bytes_field_size(field::span_trace_id, 16) + bytes_field_size(field::span_span_id, 8);
    if (!s.trace_state.empty()) n += bytes_field_size(field::span_trace_state, s.trace_state.size());
    if (s.parent_span_id != nullptr) n += bytes_field_size(field::span_parent_span_id, 8);
    n += bytes_field_size(field::span_name, s.name.size());
    n += tag_size(field::span_kind) + varint_size(static_cast<std::uint64_t>(s.kind));
    n += tag_size(field::span_start) + 8 + tag_size(field::span_end) + 8;
    for (std::size_t i = 0; i < s.attribute_count; ++i)
        n += bytes_field_size(field::span_attributes, key_value_size(s.attributes[i]));
    if (s.error) n += bytes_field_size(field::span_status, status_size(s));
    n += tag_size(field::span_flags) + 4;
    return n;
}

}  // namespace

void append_span(std::string& out, const span_data& s) {
    put_len(out, field::ss_spans, span_size(s));
    put_bytes(out, field::span_trace_id, s.trace_id, 16);
    put_bytes(out, field::span_span_id, s.span_id, 8);
    if (!s.trace_state.empty()) put_bytes(out, field::span_trace_state, s.trace_state);
    if (s.parent_span_id != nullptr) put_bytes(out, field::span_parent_span_id, s.parent_span_id, 8);
    put_bytes(out, field::span_name, s.name);
    put_tag(out, field::span_kind, varint);
    put_varint(out, static_cast<std::uint64_t>(s.kind));
    put_tag(out, field::span_start, fixed64);
    put_fixed(out, s.start_unix_nano, 8);
    put_tag(out, field::span_end, fixed64);
    put_fixed(out, s.end_unix_nano, 8);
    for (std::size_t i = 0; i < s.attribute_count; ++i) put_key_value(out, field::span_attributes, s.attributes[i]);
    if (s.error) {
        put_len(out, field::span_status, status_size(s));
        if (!s.status_message.empty()) put_bytes(out, field::status_message, s.status_message);
        put_tag(out, field::status_code, varint);
        put_varint(out, status_code_error);
    }
    put_tag(out, field::span_flags, fixed32);
    put_fixed(out, s.flags, 4);  // low 8 bits: the W3C trace flags
}

void build_export_request(std::string& out, std::string_view service_name, std::string_view service_version,
                          std::string_view spans) {
    out.clear();
    const attribute resource_attrs[2] = {text_attribute("service.name", service_name),
                                         text_attribute("service.version", service_version)};
    const std::size_t attr_count = service_version.empty() ? 1 : 2;
    std::size_t resource = 0;
    for (std::size_t i = 0; i < attr_count; ++i)
        resource += bytes_field_size(field::resource_attributes, key_value_size(resource_attrs[i]));
    const std::size_t scope = bytes_field_size(field::scope_name, 8) +
                              (service_version.empty() ? 0 : bytes_field_size(field::scope_version, service_version.size()));
    const std::size_t scope_spans = bytes_field_size(field::ss_scope, scope) + spans.size();
    const std::size_t resource_spans =
        bytes_field_size(field::rs_resource, resource) + bytes_field_size(field::rs_scope_spans, scope_spans);
    out.reserve(bytes_field_size(field::request_resource_spans, resource_spans));

    put_len(out, field::request_resource_spans, resource_spans);
    put_len(out, field::rs_resource, resource);
    for (std::size_t i = 0; i < attr_count; ++i) put_key_value(out, field::resource_attributes, resource_attrs[i]);
    put_len(out, field::rs_scope_spans, scope_spans);
    put_len(out, field::ss_scope, scope);
    put_bytes(out, field::scope_name, std::string_view("sentinel"));
    if (!service_version.empty()) put_bytes(out, field::scope_version, service_version);
    out.append(spans);
}

std::uint64_t unix_nanos_now() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

}  // namespace sentinel::observability::tracing
