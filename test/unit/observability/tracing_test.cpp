// W3C trace context parsing/formatting, sampling decisions and the OTLP protobuf encoding,
// decoded back with a tiny wire decoder (field numbers from third_party/opentelemetry-proto).
#include "observability/tracing.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace tracing = sentinel::observability::tracing;

namespace {

// ---- a minimal protobuf wire decoder
struct field {
    std::uint32_t number;
    std::uint32_t wire;
    std::uint64_t value;     // varint / fixed
    std::string_view bytes;  // length-delimited
};

std::uint64_t read_varint(std::string_view& in) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (in.empty()) throw std::runtime_error("truncated varint");
        const auto b = static_cast<std::uint8_t>(in[0]);
        in.remove_prefix(1);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    throw std::runtime_error("varint too long");
}

std::vector<field> decode(std::string_view in) {
    std::vector<field> out;
    while (!in.empty()) {
        const std::uint64_t tag = read_varint(in);
        field f{static_cast<std::uint32_t>(tag >> 3), static_cast<std::uint32_t>(tag & 7), 0, {}};
        switch (f.wire) {
        case 0: f.value = read_varint(in); break;
        case 1:
        case 5: {
            const std::size_t n = f.wire == 1 ? 8 : 4;
            if (in.size() < n) throw std::runtime_error("truncated fixed");
            for (std::size_t i = 0; i < n; ++i) f.value |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in[i])) << (8 * i);
            in.remove_prefix(n);
            break;
        }
        case 2: {
            const std::uint64_t n = read_varint(in);
            if (in.size() < n) throw std::runtime_error("truncated bytes");
            f.bytes = in.substr(0, n);
            in.remove_prefix(n);
            break;
        }
        default: throw std::runtime_error("bad wire type");
        }
        out.push_back(f);
    }
    return out;
}

std::vector<field> all(const std::vector<field>& fs, std::uint32_t number) {
    std::vector<field> out;
    for (const auto& f : fs)
        if (f.number == number) out.push_back(f);
    return out;
}
const field& one(const std::vector<field>& fs, std::uint32_t number) {
    for (const auto& f : fs)
        if (f.number == number) return f;
    throw std::runtime_error("missing field " + std::to_string(number));
}

// KeyValue list → key -> (string or int as text)
std::map<std::string, std::string> attributes(const std::vector<field>& fs, std::uint32_t number) {
    std::map<std::string, std::string> out;
    for (const auto& kv : all(fs, number)) {
        const auto k = decode(kv.bytes);
        const auto any = decode(one(k, 2).bytes);
        const auto& v = any.at(0);
        out[std::string(one(k, 1).bytes)] = v.number == 1 ? std::string(v.bytes) : "int:" + std::to_string(static_cast<std::int64_t>(v.value));
    }
    return out;
}

std::string hex(std::string_view b) {
    std::string out(b.size() * 2, '?');
    tracing::to_hex(reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), out.data());
    return out;
}

}  // namespace

TEST(Traceparent, ParsesTheSpecExample) {
    tracing::trace_context c;
    ASSERT_TRUE(tracing::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", c));
    EXPECT_EQ(hex({reinterpret_cast<const char*>(c.trace_id), 16}), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(hex({reinterpret_cast<const char*>(c.span_id), 8}), "00f067aa0ba902b7");
    EXPECT_EQ(c.flags, 1);
    ASSERT_TRUE(tracing::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", c));
    EXPECT_EQ(c.flags, 0);
}

TEST(Traceparent, RejectsEverythingNotStrictVersion00) {
    const char* bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",     // short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",   // long
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // future-version suffix on 00
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // other version
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separators
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // non-hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
    };
    for (const char* v : bad) {
        tracing::trace_context c;
        EXPECT_FALSE(tracing::parse_traceparent(v, c)) << v;
    }
}

TEST(Traceparent, FormatRoundTrips) {
    tracing::trace_context c;
    const std::string in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ASSERT_TRUE(tracing::parse_traceparent(in, c));
    char out[tracing::traceparent_size];
    tracing::format_traceparent(out, c.trace_id, c.span_id, c.flags);
    EXPECT_EQ(std::string(out, sizeof out), in);
    EXPECT_EQ(std::string(out + tracing::traceparent_span_offset, 16), "b7ad6b7169203331");
}

TEST(Sampling, RatioForNewTraces) {
    EXPECT_FALSE(tracing::sample_new_trace(0, 0));
    EXPECT_FALSE(tracing::sample_new_trace(0, ~0ull));
    EXPECT_TRUE(tracing::sample_new_trace(100, 12345));
    // Roughly the asked share over a spread of draws.
    std::uint64_t x = 88172645463325252ull;
    int sampled = 0;
    for (int i = 0; i < 100000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sampled += tracing::sample_new_trace(10, x);
    }
    EXPECT_NEAR(sampled, 10000, 600);
}

TEST(Sampling, ParentBasedAndTracestateRules) {
    const std::uint64_t random[4] = {1, 2, 3, 0};  // random[3]=0: a new trace would be sampled at 10%
    tracing::request_trace t;
    tracing::start_request(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 1, "a=b", 100, random);
    EXPECT_TRUE(t.active);
    EXPECT_FALSE(t.sampled) << "the incoming unsampled flag wins over sample-percent 100";
    EXPECT_TRUE(t.has_parent);
    EXPECT_EQ(t.tracestate, "a=b");
    EXPECT_EQ(t.flags, 0);

    tracing::start_request(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1, "a=b", 0, random);
    EXPECT_TRUE(t.sampled) << "the incoming sampled flag wins over sample-percent 0";
    EXPECT_EQ(hex({reinterpret_cast<const char*>(t.parent_id), 8}), "00f067aa0ba902b7");

    // Too long a tracestate is dropped whole, never cut.
    tracing::start_request(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1,
                           std::string(tracing::max_tracestate + 1, 'x'), 100, random);
    EXPECT_TRUE(t.tracestate.empty());
    tracing::start_request(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1,
                           std::string(tracing::max_tracestate, 'x'), 100, random);
    EXPECT_EQ(t.tracestate.size(), tracing::max_tracestate);

    // Two traceparent fields: invalid → new trace, tracestate ignored.
    tracing::start_request(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 2, "a=b", 100, random);
    EXPECT_FALSE(t.has_parent);
    EXPECT_TRUE(t.tracestate.empty());
    EXPECT_NE(hex({reinterpret_cast<const char*>(t.trace_id), 16}), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_FALSE(tracing::all_zero(t.trace_id, 16));
    EXPECT_FALSE(tracing::all_zero(t.server_span_id, 8));
    EXPECT_TRUE(t.sampled);
    EXPECT_EQ(t.flags, 1);

    // Invalid and sample-percent 0: not sampled.
    tracing::start_request(t, "garbage", 1, "", 0, random);
    EXPECT_FALSE(t.sampled);
    const std::uint64_t zeros[4] = {0, 0, 0, 0};
    tracing::start_request(t, "", 0, "", 100, zeros);
    EXPECT_FALSE(tracing::all_zero(t.trace_id, 16)) << "ids are never all zero";
    EXPECT_FALSE(tracing::all_zero(t.server_span_id, 8));
}

TEST(OtlpEncode, SpanDecodesBackWithOfficialFieldNumbers) {
    const std::uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                       0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    const std::uint8_t span_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const std::uint8_t parent[8] = {9, 10, 11, 12, 13, 14, 15, 16};
    const std::string long_value(300, 'v');  // a length needing a 2-byte varint
    const tracing::attribute attrs[] = {
        tracing::text_attribute("http.request.method", "GET"),
        tracing::int_attribute("http.response.status_code", 503),
        tracing::int_attribute("negative", -5),
        tracing::text_attribute("long", long_value),
    };
    tracing::span_data s;
    s.trace_id = trace_id;
    s.span_id = span_id;
    s.parent_span_id = parent;
    s.trace_state = "k=v";
    s.name = "GET api";
    s.kind = tracing::span_kind::client;
    s.flags = 1;
    s.start_unix_nano = 1700000000123456789ull;
    s.end_unix_nano = 1700000000223456789ull;
    s.attributes = attrs;
    s.attribute_count = 4;
    s.error = true;
    s.status_message = "connect_failure";
    std::string spans;
    tracing::append_span(spans, s);
    tracing::span_data root = s;
    root.parent_span_id = nullptr;
    root.trace_state = {};
    root.error = false;
    root.kind = tracing::span_kind::server;
    root.attribute_count = 0;
    tracing::append_span(spans, root);

    std::string body;
    tracing::build_export_request(body, "sentinel", "0.1.0", spans);

    const auto request = decode(body);
    ASSERT_EQ(request.size(), 1u);
    ASSERT_EQ(request[0].number, 1u);  // ExportTraceServiceRequest.resource_spans
    const auto rs = decode(request[0].bytes);
    const auto resource = decode(one(rs, 1).bytes);
    const auto res_attrs = attributes(resource, 1);
    EXPECT_EQ(res_attrs.at("service.name"), "sentinel");
    EXPECT_EQ(res_attrs.at("service.version"), "0.1.0");
    const auto ss = decode(one(rs, 2).bytes);
    EXPECT_EQ(one(decode(one(ss, 1).bytes), 1).bytes, "sentinel");  // InstrumentationScope.name
    const auto span_fields = all(ss, 2);
    ASSERT_EQ(span_fields.size(), 2u);

    const auto sp = decode(span_fields[0].bytes);
    EXPECT_EQ(hex(one(sp, 1).bytes), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(hex(one(sp, 2).bytes), "0102030405060708");
    EXPECT_EQ(one(sp, 3).bytes, "k=v");
    EXPECT_EQ(hex(one(sp, 4).bytes), "090a0b0c0d0e0f10");
    EXPECT_EQ(one(sp, 5).bytes, "GET api");
    EXPECT_EQ(one(sp, 6).wire, 0u);
    EXPECT_EQ(one(sp, 6).value, 3u);  // SPAN_KIND_CLIENT
    EXPECT_EQ(one(sp, 7).wire, 1u);   // fixed64
    EXPECT_EQ(one(sp, 7).value, 1700000000123456789ull);
    EXPECT_EQ(one(sp, 8).value, 1700000000223456789ull);
    EXPECT_EQ(one(sp, 16).wire, 5u);  // fixed32 flags
    EXPECT_EQ(one(sp, 16).value, 1u);
    const auto a = attributes(sp, 9);
    EXPECT_EQ(a.at("http.request.method"), "GET");
    EXPECT_EQ(a.at("http.response.status_code"), "int:503");
    EXPECT_EQ(a.at("negative"), "int:-5");
    EXPECT_EQ(a.at("long"), long_value);
    const auto status = decode(one(sp, 15).bytes);
    EXPECT_EQ(one(status, 2).bytes, "connect_failure");
    EXPECT_EQ(one(status, 3).value, 2u);  // STATUS_CODE_ERROR

    const auto r = decode(span_fields[1].bytes);
    EXPECT_TRUE(all(r, 4).empty()) << "a root span has no parent_span_id";
    EXPECT_TRUE(all(r, 3).empty());
    EXPECT_TRUE(all(r, 15).empty()) << "no status when not an error";
    EXPECT_EQ(one(r, 6).value, 2u);  // SPAN_KIND_SERVER
}

TEST(OtlpEncode, KnownBytesForASmallSpan) {
    const std::uint8_t trace_id[16] = {};
    const std::uint8_t span_id[8] = {};
    tracing::span_data s;
    s.trace_id = trace_id;
    s.span_id = span_id;
    s.name = "x";
    s.kind = tracing::span_kind::server;
    s.flags = 1;
    s.start_unix_nano = 1;
    s.end_unix_nano = 2;
    std::string out;
    tracing::append_span(out, s);
    std::string expected;
    expected += "\x12";                                    // ScopeSpans.spans, length-delimited
    expected += static_cast<char>(18 + 10 + 3 + 2 + 9 + 9 + 6);  // 57
    expected += "\x0a\x10" + std::string(16, '\0');       // trace_id
    expected += "\x12\x08" + std::string(8, '\0');        // span_id
    expected += "\x2a\x01x";                              // name
    expected += "\x30\x02";                               // kind = SERVER
    expected += "\x39" + std::string("\x01\0\0\0\0\0\0\0", 8);  // start (fixed64)
    expected += "\x41" + std::string("\x02\0\0\0\0\0\0\0", 8);  // end
    expected += "\x85\x01" + std::string("\x01\0\0\0", 4);      // flags (field 16, fixed32)
    EXPECT_EQ(hex(out), hex(expected));
}
