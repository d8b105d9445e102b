// Frame codec of the agent protocol (PROTOCOL.md §2): the 10-byte frame header and the
// mapping between frame types and protobuf payloads. No I/O: the proxy's agent client, the
// C++ SDK and the fuzz target all feed it bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sentinel::agent_protocol {

inline constexpr std::uint32_t protocol_version = 1;
inline constexpr std::size_t frame_header_size = 10;
// Payload limit when the peer states none (HelloAck/Hello max_frame_size 0), and the largest
// limit either side may state.
inline constexpr std::uint32_t default_max_frame_size = 1u << 20;
inline constexpr std::uint32_t max_frame_size_limit = 16u << 20;

enum class frame_type : std::uint8_t {
    // connection level, stream 0
    hello = 0x01,
    hello_ack = 0x02,
    ping = 0x03,
    pong = 0x04,
    health = 0x05,
    drain = 0x06,
    // stream level, stream id >= 1
    request_headers = 0x10,
    request_body = 0x11,
    response_headers = 0x12,
    response_body = 0x13,
    request_complete = 0x14,
    websocket_frame = 0x15,
    cancel = 0x16,
    decision = 0x20,
};

// Flag bits; every other bit must be zero.
inline constexpr std::uint8_t flag_end_stream = 0x01;  // proxy: no further event on this stream

// Who may send a frame type.
enum class sender : std::uint8_t { proxy, agent, either };

struct frame_header {
    std::uint32_t length = 0;  // payload bytes after the header
    frame_type type{};
    std::uint8_t flags = 0;
    std::uint32_t stream_id = 0;
};

// Known type → its sender; false for an unknown type byte.
bool type_info(std::uint8_t type, sender& who, bool& connection_level);
std::string_view type_name(frame_type type);

enum class decode_status {
    ok,             // `out` holds one frame; `consumed` bytes of the input belong to it
    need_more,      // the input holds no complete frame yet
    too_large,      // length over the receiver's limit
    unknown_type,
    wrong_sender,   // e.g. a DECISION sent by the proxy
    bad_stream,     // connection-level frame on a stream, or stream frame on stream 0
    bad_flags,      // reserved flag bits set, or END_STREAM on a type that cannot carry it
};
std::string_view describe(decode_status s);

struct frame_view {
    frame_header header;
    std::string_view payload;
};

// Decodes the first frame of `data` as received by `receiver` (proxy: frames an agent may
// send; agent: frames the proxy may send). Validates everything the header says; the payload
// is parsed by the caller with the message type that frame_type implies.
decode_status decode_frame(std::string_view data, sender receiver, std::uint32_t max_payload,
                           frame_view& out, std::size_t& consumed);

void encode_header(char* out, const frame_header& h);

// Appends one frame with `payload_size` bytes to `out` and returns where the payload goes.
// Message types serialise straight into it (append_message).
char* append_frame(std::string& out, frame_type type, std::uint8_t flags, std::uint32_t stream_id,
                   std::size_t payload_size);

// Appends a frame whose payload is protobuf message `m` (any generated MessageLite).
template <class Message>
void append_message(std::string& out, frame_type type, std::uint8_t flags, std::uint32_t stream_id,
                    const Message& m) {
    const std::size_t size = m.ByteSizeLong();
    char* p = append_frame(out, type, flags, stream_id, size);
    m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(p));
}

// Parses `payload` into `m`; false when it is not a valid encoding.
template <class Message>
bool parse_message(std::string_view payload, Message& m) {
    return m.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

}  // namespace sentinel::agent_protocol
