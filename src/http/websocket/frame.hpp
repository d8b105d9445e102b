// RFC 6455 §5 frame codec for a proxy that inspects both directions of an upgraded
// connection. No I/O: parse_header reads the bytes received so far, the caller waits until
// header_size + payload_length bytes are buffered (or relays the payload as it streams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/websocket/error.hpp"

namespace sentinel::websocket {

// Opcodes (§5.2). Kept as plain bytes because frame_header carries the raw value.
namespace op {
inline constexpr std::uint8_t continuation = 0x0;
inline constexpr std::uint8_t text = 0x1;
inline constexpr std::uint8_t binary = 0x2;
inline constexpr std::uint8_t close = 0x8;
inline constexpr std::uint8_t ping = 0x9;
inline constexpr std::uint8_t pong = 0xA;
}  // namespace op

inline constexpr bool is_control(std::uint8_t opcode) { return (opcode & 0x8) != 0; }

// Largest control frame payload (§5.5) and the longest possible frame header.
inline constexpr std::size_t max_control_payload = 125;
inline constexpr std::size_t max_header_size = 14;

struct frame_header {
    bool fin = false;
    bool rsv1 = false, rsv2 = false, rsv3 = false;
    std::uint8_t opcode = 0;
    bool masked = false;
    std::uint8_t mask[4] = {};
    std::uint64_t payload_length = 0;
    std::size_t header_size = 0;  // bytes before the payload: 2 to 14
};

enum class parse_status : std::uint8_t { ok, need_more, error };

struct header_options {
    // permessage-deflate (RFC 7692) was negotiated: RSV1 may mark a message's first frame.
    bool allow_rsv1 = false;
    // Accept a 16/64-bit length that would fit a shorter form. §5.2 says the minimal form
    // MUST be used; off by default (strict), for peers that are known to pad.
    bool allow_non_minimal_length = false;
};

// Parses the frame header at the start of `data`. `expect_masked` is the direction: true for
// client-to-server frames (which MUST be masked), false for server-to-client (MUST NOT be).
// Returns
//  * ok: `out` is complete; the payload is the payload_length bytes after header_size.
//  * need_more: every byte so far can begin a valid header; `out` and `err` are untouched.
//  * error: `err` says why and `out` is untouched (except for too_large, below). Checks run
//    in wire order, so an error is reported as soon as the byte that causes it arrives and a
//    longer input never changes it. The one exception is too_large: it is reported only once
//    the whole header (mask key included) is available, and then `out` is complete, so the
//    caller can relay header_size + payload_length bytes uninspected. Any other error wins
//    over too_large: a malformed frame is never relayed.
parse_status parse_header(std::string_view data, bool expect_masked, std::uint64_t max_payload,
                          frame_header& out, error& err, header_options options = {});

// XORs `n` payload bytes with the masking key (§5.3). `offset` is the position of
// payload[0] within the frame's payload, so a payload unmasked in pieces gives the same
// bytes as one call. Masking and unmasking are the same operation.
void unmask(char* payload, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset = 0);

// Appends the header described by fin, rsv1-3, opcode, masked, mask and payload_length, with
// the minimal length encoding (header_size is ignored). Returns the header's size.
std::size_t append_header(std::string& out, const frame_header& h);

// Appends a whole frame (RSV bits clear). With a non-null `mask` the frame is masked and the
// appended payload is the masked copy; `payload` itself is never modified.
void append_frame(std::string& out, bool fin, std::uint8_t opcode, std::string_view payload,
                  const std::uint8_t* mask /* null = unmasked */);

// Appends a Close frame. `code` 0 sends an empty body (no status, seen by the peer as 1005);
// otherwise the body is the code followed by `reason`, cut to 123 bytes at a UTF-8 character
// boundary so the frame stays within the control frame limit.
void append_close(std::string& out, std::uint16_t code, std::string_view reason,
                  const std::uint8_t* mask);

// True for a close code an endpoint may send (§7.4): 1000-1003, 1007-1014 (1012-1014 are
// IANA-registered since the RFC), 3000-4999. 1004-1006 and 1015 are reserved for local
// use and never appear on the wire.
bool is_valid_close_code(std::uint16_t code);

// Validates an unmasked Close payload (§5.5.1, §7.4): empty (code set to 1005, "no status
// received"), or a valid code and a UTF-8 reason. `reason` views into `payload`. On false the
// outputs are unspecified.
bool parse_close_payload(std::string_view payload, std::uint16_t& code, std::string_view& reason);

}  // namespace sentinel::websocket
