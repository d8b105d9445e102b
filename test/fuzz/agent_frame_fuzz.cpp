// Fuzzes what an agent can send the proxy (and the proxy an agent): the frame decoder over a
// byte stream, the protobuf payload of every frame type, and the decision checks and header
// merging the proxy applies to whatever parses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/decision.hpp"
#include "agents/protocol/frame.hpp"
#include "sentinel_agent_v1.pb.h"

namespace proto = sentinel::agent_protocol;
namespace v1 = sentinel::agent::v1;

namespace {

void on_agent_frame(const proto::frame_view& f) {
    switch (f.header.type) {
    case proto::frame_type::decision: {
        v1::Decision d;
        if (!proto::parse_message(f.payload, d)) return;
        sentinel::agent::header_edits edits;
        for (auto at : {sentinel::agent::decision_point::request_headers, sentinel::agent::decision_point::request_body,
                        sentinel::agent::decision_point::response_headers}) {
            if (sentinel::agent::check_decision(d, at, true)) continue;
            for (const auto& m : d.request_headers()) edits.apply(m);
            for (const auto& m : d.response_headers()) edits.apply(m);
            if (d.has_block()) (void)sentinel::agent::block_status(d.block());
            if (d.has_redirect()) (void)sentinel::agent::redirect_status(d.redirect());
        }
        return;
    }
    case proto::frame_type::hello_ack: {
        v1::HelloAck a;
        (void)proto::parse_message(f.payload, a);
        return;
    }
    case proto::frame_type::health: {
        v1::Health h;
        (void)proto::parse_message(f.payload, h);
        return;
    }
    default: {
        v1::Ping p;
        (void)proto::parse_message(f.payload, p);
        return;
    }
    }
}

void on_proxy_frame(const proto::frame_view& f) {
    switch (f.header.type) {
    case proto::frame_type::hello: {
        v1::Hello h;
        (void)proto::parse_message(f.payload, h);
        return;
    }
    case proto::frame_type::request_headers: {
        v1::RequestHeaders r;
        (void)proto::parse_message(f.payload, r);
        return;
    }
    default: {
        v1::BodyChunk b;
        (void)proto::parse_message(f.payload, b);
        return;
    }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte picks the receiving side; the rest is the byte stream.
    const bool proxy_receives = (data[0] & 1) == 0;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto side = proxy_receives ? proto::sender::proxy : proto::sender::agent;
    for (int frames = 0; frames < 64; ++frames) {
        proto::frame_view f;
        std::size_t used = 0;
        if (proto::decode_frame(in, side, 1u << 16, f, used) != proto::decode_status::ok) break;
        if (proxy_receives) on_agent_frame(f);
        else on_proxy_frame(f);
        in.remove_prefix(used);
    }
    return 0;
}
