// Every way a WebSocket byte stream can break the rules of RFC 6455, one enum for the frame
// codec and the message tracker, so the proxy maps all of them to a close code in one place.
#pragma once

#include <cstdint>
#include <string_view>

namespace sentinel::websocket {

enum class error : std::uint8_t {
    none,
    // parse_header
    reserved_opcode,     // opcode 0x3-0x7 or 0xB-0xF
    reserved_bits,       // RSV1-3 set without a negotiated extension, or RSV1 on a control or
                         // continuation frame (RFC 7692 §6.1 allows it on a message's first frame only)
    fragmented_control,  // control frame with FIN clear (§5.5)
    control_too_long,    // control frame payload over 125 bytes (§5.5)
    length_msb_set,      // 64-bit length with the most significant bit set (§5.2)
    non_minimal_length,  // 16/64-bit length form used for a length the shorter form holds (§5.2)
    mask_required,       // client-to-server frame not masked (§5.1)
    mask_forbidden,      // server-to-client frame masked (§5.1)
    too_large,           // payload over the caller's maximum; the header is still complete, so
                         // the caller may relay the frame uninspected instead of failing
    // message_state
    unexpected_continuation,  // continuation frame with no fragmented message open (§5.4)
    message_not_finished,     // text/binary frame while a fragmented message is open (§5.4)
    invalid_utf8,             // text message (or close reason) is not UTF-8 (§8.1)
    frame_after_close,        // any frame after this direction's Close frame (§5.5.1)
    bad_close_payload,        // 1-byte close body, invalid close code or non-UTF-8 reason (§7.4)
    // message_state misuse by the caller, never caused by the peer
    frame_incomplete,  // on_frame before the previous frame's payload was fed or skipped
    payload_overrun,   // more payload bytes fed than the frame header announced
};

// Short English text for logs ("control frame longer than 125 bytes").
std::string_view description(error e);

// The close code a peer violating `e` should get (RFC 6455 §7.4.1): 1007 for bad UTF-8,
// 1009 for too_large, 1002 for other protocol errors, 1011 for caller misuse, 1000 for none.
std::uint16_t close_code_for(error e);

}  // namespace sentinel::websocket
