#include "http/websocket/message_state.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace sentinel::websocket {

error message_state::on_frame(const frame_header& h) {
    if (failed_ != error::none) return failed_;
    if (remaining_ != 0) return fail(error::frame_incomplete);
    // §5.5.1: the Close frame is the last frame a side sends.
    if (closed_) return fail(error::frame_after_close);
    if (is_control(h.opcode)) {
        // Control frames may sit between the fragments of a data message and leave it alone.
        if (h.opcode == op::close) closed_ = true;
    } else if (h.opcode == op::continuation) {
        if (message_opcode_ == op::continuation) return fail(error::unexpected_continuation);
    } else {
        if (message_opcode_ != op::continuation) return fail(error::message_not_finished);
        message_opcode_ = h.opcode;
        message_size_ = 0;
        check_utf8_ = validate_utf8_ && h.opcode == op::text && !h.rsv1;
        utf8_.reset();
    }
    if (!is_control(h.opcode)) {
        constexpr auto max = std::numeric_limits<std::uint64_t>::max();
        message_size_ = h.payload_length > max - message_size_ ? max : message_size_ + h.payload_length;
    }
    frame_opcode_ = h.opcode;
    frame_fin_ = h.fin;
    remaining_ = h.payload_length;
    return remaining_ == 0 ? end_frame() : error::none;
}

error message_state::on_payload(std::string_view unmasked) {
    if (failed_ != error::none) return failed_;
    if (unmasked.empty()) return error::none;
    if (unmasked.size() > remaining_) return fail(error::payload_overrun);
    if (frame_opcode_ == op::close) {
        // parse_header caps control payloads at 125 bytes; the bound is checked again here
        // because the header may come from a caller that did not use it.
        const std::size_t room = sizeof close_body_ - close_length_;
        const std::size_t n = std::min(room, unmasked.size());
        std::memcpy(close_body_ + close_length_, unmasked.data(), n);
        close_length_ = static_cast<std::uint8_t>(close_length_ + n);
        if (n < unmasked.size()) close_skipped_ = true;
    } else if (!is_control(frame_opcode_) && check_utf8_ && !utf8_.feed(unmasked)) {
        return fail(error::invalid_utf8);
    }
    remaining_ -= unmasked.size();
    return remaining_ == 0 ? end_frame() : error::none;
}

error message_state::skip_payload(std::uint64_t n) {
    if (failed_ != error::none) return failed_;
    if (n == 0) return error::none;
    if (n > remaining_) return fail(error::payload_overrun);
    if (frame_opcode_ == op::close) close_skipped_ = true;
    else if (!is_control(frame_opcode_)) check_utf8_ = false;
    remaining_ -= n;
    return remaining_ == 0 ? end_frame() : error::none;
}

error message_state::end_frame() {
    if (frame_opcode_ == op::close) {
        if (close_skipped_) return error::none;
        std::uint16_t code = 0;
        std::string_view reason;
        if (!parse_close_payload(std::string_view(close_body_, close_length_), code, reason))
            return fail(error::bad_close_payload);
        close_code_ = code;
        close_reason_offset_ = close_length_ == 0 ? 0 : 2;
        return error::none;
    }
    if (is_control(frame_opcode_) || !frame_fin_) return error::none;
    message_opcode_ = op::continuation;
    if (check_utf8_ && !utf8_.complete()) return fail(error::invalid_utf8);
    return error::none;
}

std::string_view message_state::close_reason() const {
    if (close_code_ == 0) return {};
    return std::string_view(close_body_ + close_reason_offset_, close_length_ - close_reason_offset_);
}

}  // namespace sentinel::websocket
