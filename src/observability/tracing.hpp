// Distributed tracing: W3C trace context (traceparent/tracestate) parsing and formatting,
// the sampling decision, OTLP protobuf encoding of spans (otlp_encode.cpp) and the exporter.
//
// Hot-path shape (like access_log): a worker encodes each finished span of a sampled request
// straight into its own batch buffer (no lock, no per-span allocation once the buffer has
// grown) and hands whole batches to the exporter, one short lock per batch. The exporter's
// queue is bounded in spans; a full queue drops the batch and counts it, so a slow or dead
// collector never makes a request wait. One thread per exporter POSTs OTLP/HTTP protobuf.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace sentinel::observability::tracing {

constexpr std::size_t traceparent_size = 55;  // "00-" 32 hex "-" 16 hex "-" 2 hex
constexpr std::size_t traceparent_span_offset = 36;  // where the parent-id hex starts
constexpr std::size_t max_tracestate = 512;   // longer tracestate values are dropped, not cut
constexpr std::uint8_t flag_sampled = 0x01;

struct trace_context {
    std::uint8_t trace_id[16] = {};
    std::uint8_t span_id[8] = {};  // the caller's span: our SERVER span's parent
    std::uint8_t flags = 0;
};

// Strict W3C Trace Context level 1: version "00", exactly 55 characters, lowercase hex,
// non-zero trace and parent ids. Anything else is invalid (the caller starts a new trace).
bool parse_traceparent(std::string_view value, trace_context& out);
// Writes the 55-character header value.
void format_traceparent(char out[traceparent_size], const std::uint8_t trace_id[16],
                        const std::uint8_t span_id[8], std::uint8_t flags);
void to_hex(const std::uint8_t* bytes, std::size_t n, char* out);  // 2n lowercase characters

// Sampling of a new trace: `random` is uniform over 64 bits.
inline bool sample_new_trace(std::uint32_t percent, std::uint64_t random) {
    return percent >= 100 || (percent > 0 && (random >> 11) % 100 < percent);
}
inline bool all_zero(const std::uint8_t* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (b[i] != 0) return false;
    return true;
}

// The trace state of one request (kept in the stream record, reused across requests of a
// connection: its strings keep their capacity).
struct request_trace {
    bool active = false;      // tracing is configured: traceparent/tracestate are propagated
    bool sampled = false;     // spans are recorded and exported
    bool has_parent = false;  // a valid traceparent came in: parent_id is the caller's span
    std::uint8_t flags = 0;   // trace flags we propagate (sampled bit = our decision)
    std::uint8_t trace_id[16] = {};
    std::uint8_t parent_id[8] = {};
    std::uint8_t server_span_id[8] = {};
    std::string tracestate;   // the incoming tracestate, as is (empty when absent/too long/invalid parent)
    std::uint64_t start_unix_nano = 0;  // sampled only, like the copies below
    std::string name, path, host;
};

// Starts `t` for a request: continues the incoming trace when `traceparent` is valid (and the
// only one), else starts a new one sampled at `percent`. `random` holds 4 uniform draws.
void start_request(request_trace& t, std::string_view traceparent, int traceparent_count, std::string_view tracestate,
                   std::uint32_t percent, const std::uint64_t random[4]);
// A non-zero span id from one random draw.
void make_span_id(std::uint8_t out[8], std::uint64_t random);

// ---- OTLP encoding (otlp_encode.cpp); field numbers from third_party/opentelemetry-proto.
enum class span_kind : std::uint8_t { server = 2, client = 3 };

struct attribute {
    std::string_view key;
    std::string_view text;  // string value, unless is_int
    std::int64_t number = 0;
    bool is_int = false;
};
inline attribute text_attribute(std::string_view key, std::string_view value) { return {key, value, 0, false}; }
inline attribute int_attribute(std::string_view key, std::int64_t value) { return {key, {}, value, true}; }

struct span_data {
    const std::uint8_t* trace_id = nullptr;        // 16 bytes
    const std::uint8_t* span_id = nullptr;         // 8 bytes
    const std::uint8_t* parent_span_id = nullptr;  // 8 bytes, or null for a root span
    std::string_view trace_state;
    std::string_view name;
    span_kind kind = span_kind::server;
    std::uint8_t flags = flag_sampled;
    std::uint64_t start_unix_nano = 0;
    std::uint64_t end_unix_nano = 0;
    const attribute* attributes = nullptr;
    std::size_t attribute_count = 0;
    bool error = false;               // Status.code = STATUS_CODE_ERROR
    std::string_view status_message;  // only with error
};

// Appends one Span as a ScopeSpans.spans entry (field 2, length-delimited), so a batch is
// the plain concatenation of spans and the exporter wraps it without re-encoding.
void append_span(std::string& out, const span_data& span);
// ExportTraceServiceRequest { ResourceSpans { Resource{service.name, service.version},
// ScopeSpans { scope "sentinel", <spans> } } } into `out` (cleared first).
void build_export_request(std::string& out, std::string_view service_name, std::string_view service_version,
                          std::string_view spans);

std::uint64_t unix_nanos_now();

// ---- Counters, process-wide (exporters come and go with snapshots; totals must not).
struct stats {
    static std::atomic<std::uint64_t> exported;               // spans the collector accepted
    static std::atomic<std::uint64_t> dropped_queue_full;     // spans refused by a full queue
    static std::atomic<std::uint64_t> dropped_export_failed;  // spans in failed/rejected exports
    static std::atomic<std::uint64_t> export_requests;        // POSTs answered 2xx
};

// ---- The exporter: a bounded queue and one thread doing blocking HTTP/1.1 POSTs.
struct exporter_settings {
    std::string host;
    std::uint16_t port = 4318;
    std::string path = "/v1/traces";
    std::uint32_t sample_percent = 100;
    std::uint32_t max_queue_spans = 8192;
    std::uint32_t batch_size = 512;
    std::chrono::milliseconds flush_interval{1000};
    std::chrono::milliseconds timeout{5000};
    std::string service_name = "sentinel";
    std::string service_version;

    bool operator==(const exporter_settings&) const = default;
};

class exporter {
public:
    explicit exporter(exporter_settings settings);
    ~exporter();  // exports what is queued (one try per batch), then stops
    exporter(const exporter&) = delete;
    exporter& operator=(const exporter&) = delete;

    // Queues `spans` (append_span output holding `count` spans). False: the queue had no room
    // for them; they are dropped and counted.
    bool submit(std::string&& spans, std::uint32_t count);
    const exporter_settings& settings() const { return settings_; }

private:
    void run();
    bool post(const std::string& body);  // true: 2xx
    bool connect_collector();
    void disconnect();
    bool warning_due();

    exporter_settings settings_;
    std::mutex mutex_;
    std::condition_variable wake_;
    struct chunk {
        std::string spans;
        std::uint32_t count;
    };
    std::deque<chunk> queue_;
    std::uint32_t queued_spans_ = 0;
    bool stopping_ = false;
    int fd_ = -1;  // exporter thread only
    std::string request_;  // exporter thread only: reused request buffers
    std::string body_;
    std::string response_;
    std::chrono::steady_clock::time_point last_warning_{};
    std::thread thread_;
};

}  // namespace sentinel::observability::tracing
