// Tracks one direction of a WebSocket connection across frames: the fragmentation rules of
// RFC 6455 §5.4, UTF-8 of text messages (§8.1), and the Close frame (§5.5.1). No buffering
// beyond a Close payload (≤ 125 bytes), so its memory is fixed however large messages get.
// Feed it the headers parse_header accepted, then each frame's unmasked payload in order.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/websocket/error.hpp"
#include "http/websocket/frame.hpp"
#include "http/websocket/utf8_validator.hpp"

namespace sentinel::websocket {

class message_state {
public:
    // `validate_utf8`: check text messages. Compressed messages (RSV1, permessage-deflate) are
    // never checked: their payload is deflate data, and the proxy does not inflate it.
    explicit message_state(bool validate_utf8 = true) : validate_utf8_(validate_utf8) {}

    // Starts a frame. Errors: unexpected_continuation, message_not_finished,
    // frame_after_close, frame_incomplete. A frame with an empty payload also ends here.
    // Every error is sticky: later calls return it again without doing anything.
    error on_frame(const frame_header& h);

    // Unmasked payload bytes of the current frame, in order, in pieces of any size. The frame
    // ends once payload_length bytes are fed or skipped; a text message that ends inside a
    // character, or a bad Close body, is reported by the call that ends it.
    error on_payload(std::string_view unmasked);

    // Accounts for `n` payload bytes relayed without inspection (a too_large frame, say).
    // The rest of that text message is then not UTF-8 checked, and a skipped Close body is
    // not validated (close_code() stays 0).
    error skip_payload(std::uint64_t n);

    bool in_message() const { return message_opcode_ != op::continuation; }
    bool in_frame() const { return remaining_ != 0; }
    // op::text or op::binary while a data message is open (so a continuation frame's
    // payload can be typed), op::continuation otherwise.
    std::uint8_t message_opcode() const { return message_opcode_; }
    // Payload bytes announced by the frames of the open (or last) data message, saturating;
    // a caller can cap whole messages with it right after on_frame, before any payload.
    std::uint64_t message_size() const { return message_size_; }

    bool closed() const { return closed_; }
    // The received close code (1005 for an empty body), once the Close frame ended; else 0.
    std::uint16_t close_code() const { return close_code_; }
    std::string_view close_reason() const;

    void reset() { *this = message_state(validate_utf8_); }

private:
    error fail(error e) { return failed_ = e; }
    error end_frame();

    bool validate_utf8_;
    error failed_ = error::none;
    std::uint8_t message_opcode_ = op::continuation;
    std::uint8_t frame_opcode_ = op::continuation;
    bool frame_fin_ = false;
    bool check_utf8_ = false;  // the open message is text, uncompressed and fully seen so far
    std::uint64_t remaining_ = 0;
    std::uint64_t message_size_ = 0;
    utf8_validator utf8_;
    bool closed_ = false;
    bool close_skipped_ = false;
    std::uint16_t close_code_ = 0;
    std::uint8_t close_length_ = 0;
    std::uint8_t close_reason_offset_ = 0;
    char close_body_[max_control_payload] = {};
};

}  // namespace sentinel::websocket
