#include "frame.hpp"

namespace sentinel::agent_protocol {

namespace {

std::uint32_t load_be32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void store_be32(char* p, std::uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
}

}  // namespace

bool type_info(std::uint8_t type, sender& who, bool& connection_level) {
    connection_level = type < 0x10;
    switch (static_cast<frame_type>(type)) {
    case frame_type::hello: who = sender::proxy; return true;
    case frame_type::hello_ack: who = sender::agent; return true;
    case frame_type::ping:
    case frame_type::pong:
    case frame_type::drain: who = sender::either; return true;
    case frame_type::health: who = sender::agent; return true;
    case frame_type::request_headers:
    case frame_type::request_body:
    case frame_type::response_headers:
    case frame_type::response_body:
    case frame_type::request_complete:
    case frame_type::websocket_frame:
    case frame_type::cancel: who = sender::proxy; return true;
    case frame_type::decision: who = sender::agent; return true;
    }
    return false;
}

std::string_view type_name(frame_type type) {
    switch (type) {
    case frame_type::hello: return "HELLO";
    case frame_type::hello_ack: return "HELLO_ACK";
    case frame_type::ping: return "PING";
    case frame_type::pong: return "PONG";
    case frame_type::health: return "HEALTH";
    case frame_type::drain: return "DRAIN";
    case frame_type::request_headers: return "REQUEST_HEADERS";
    case frame_type::request_body: return "REQUEST_BODY";
    case frame_type::response_headers: return "RESPONSE_HEADERS";
    case frame_type::response_body: return "RESPONSE_BODY";
    case frame_type::request_complete: return "REQUEST_COMPLETE";
    case frame_type::websocket_frame: return "WEBSOCKET_FRAME";
    case frame_type::cancel: return "CANCEL";
    case frame_type::decision: return "DECISION";
    }
    return "UNKNOWN";
}

std::string_view describe(decode_status s) {
    switch (s) {
    case decode_status::ok: return "ok";
    case decode_status::need_more: return "incomplete frame";
    case decode_status::too_large: return "frame larger than the negotiated limit";
    case decode_status::unknown_type: return "unknown frame type";
    case decode_status::wrong_sender: return "frame type not allowed in this direction";
    case decode_status::bad_stream: return "frame on the wrong stream";
    case decode_status::bad_flags: return "invalid frame flags";
    }
    return "?";
}

decode_status decode_frame(std::string_view data, sender receiver, std::uint32_t max_payload,
                           frame_view& out, std::size_t& consumed) {
    consumed = 0;
    if (data.size() < frame_header_size) return decode_status::need_more;
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    frame_header h;
    h.length = load_be32(p);
    const std::uint8_t type = p[4];
    h.flags = p[5];
    h.stream_id = load_be32(p + 6);
    // The header is checked before waiting for the payload, so a bad peer is refused at once.
    if (h.length > max_payload) return decode_status::too_large;
    sender who{};
    bool connection_level = false;
    if (!type_info(type, who, connection_level)) return decode_status::unknown_type;
    if (who != sender::either && who == receiver) return decode_status::wrong_sender;
    if (connection_level != (h.stream_id == 0)) return decode_status::bad_stream;
    h.type = static_cast<frame_type>(type);
    if ((h.flags & ~flag_end_stream) != 0) return decode_status::bad_flags;
    // END_STREAM marks the proxy's last event on a stream: only stream frames the proxy sends.
    if ((h.flags & flag_end_stream) != 0 && (connection_level || who != sender::proxy)) return decode_status::bad_flags;
    if (data.size() - frame_header_size < h.length) return decode_status::need_more;
    out.header = h;
    out.payload = data.substr(frame_header_size, h.length);
    consumed = frame_header_size + h.length;
    return decode_status::ok;
}

void encode_header(char* out, const frame_header& h) {
    store_be32(out, h.length);
    out[4] = static_cast<char>(h.type);
    out[5] = static_cast<char>(h.flags);
    store_be32(out + 6, h.stream_id);
}

char* append_frame(std::string& out, frame_type type, std::uint8_t flags, std::uint32_t stream_id,
                   std::size_t payload_size) {
    const std::size_t at = out.size();
    out.resize(at + frame_header_size + payload_size);
    encode_header(out.data() + at, {static_cast<std::uint32_t>(payload_size), type, flags, stream_id});
    return out.data() + at + frame_header_size;
}

}  // namespace sentinel::agent_protocol
