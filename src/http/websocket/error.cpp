#include "http/websocket/error.hpp"

namespace sentinel::websocket {

std::string_view description(error e) {
    switch (e) {
        case error::none: return "no error";
        case error::reserved_opcode: return "reserved opcode";
        case error::reserved_bits: return "reserved bits set without a negotiated extension";
        case error::fragmented_control: return "fragmented control frame";
        case error::control_too_long: return "control frame longer than 125 bytes";
        case error::length_msb_set: return "64-bit payload length with the high bit set";
        case error::non_minimal_length: return "payload length not minimally encoded";
        case error::mask_required: return "client frame not masked";
        case error::mask_forbidden: return "server frame masked";
        case error::too_large: return "frame payload larger than the limit";
        case error::unexpected_continuation: return "continuation frame without a message";
        case error::message_not_finished: return "new message before the fragmented one ended";
        case error::invalid_utf8: return "invalid UTF-8 in text";
        case error::frame_after_close: return "frame after close";
        case error::bad_close_payload: return "invalid close frame payload";
        case error::frame_incomplete: return "frame started before the previous payload ended";
        case error::payload_overrun: return "more payload than the frame header announced";
    }
    return "unknown error";
}

std::uint16_t close_code_for(error e) {
    switch (e) {
        case error::none: return 1000;
        case error::invalid_utf8: return 1007;
        case error::too_large: return 1009;
        case error::frame_incomplete:
        case error::payload_overrun: return 1011;
        default: return 1002;
    }
}

}  // namespace sentinel::websocket
