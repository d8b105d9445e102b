#include "http/websocket/frame.hpp"

#include <cstring>

#include "http/websocket/utf8_validator.hpp"

namespace sentinel::websocket {

namespace {

bool reserved_opcode(std::uint8_t opcode) {
    return (opcode >= 0x3 && opcode <= 0x7) || opcode >= 0xB;
}

std::uint64_t read_be(const unsigned char* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

parse_status parse_header(std::string_view data, bool expect_masked, std::uint64_t max_payload,
                          frame_header& out, error& err, header_options options) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    if (data.empty()) return parse_status::need_more;

    frame_header h;
    h.fin = (p[0] & 0x80) != 0;
    h.rsv1 = (p[0] & 0x40) != 0;
    h.rsv2 = (p[0] & 0x20) != 0;
    h.rsv3 = (p[0] & 0x10) != 0;
    h.opcode = p[0] & 0x0F;
    const bool control = is_control(h.opcode);
    auto fail = [&err](error e) {
        err = e;
        return parse_status::error;
    };
    if (reserved_opcode(h.opcode)) return fail(error::reserved_opcode);
    // permessage-deflate's RSV1 marks a compressed *message*, so only its first frame carries
    // it; control frames are never compressed (RFC 7692 §6.1).
    if (h.rsv2 || h.rsv3) return fail(error::reserved_bits);
    if (h.rsv1 && (!options.allow_rsv1 || control || h.opcode == op::continuation))
        return fail(error::reserved_bits);
    if (control && !h.fin) return fail(error::fragmented_control);

    if (data.size() < 2) return parse_status::need_more;
    h.masked = (p[1] & 0x80) != 0;
    const std::uint8_t len7 = p[1] & 0x7F;
    if (h.masked != expect_masked)
        return fail(expect_masked ? error::mask_required : error::mask_forbidden);
    if (control && len7 > max_control_payload) return fail(error::control_too_long);

    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (data.size() < 2 + ext) return parse_status::need_more;
    h.payload_length = ext == 0 ? len7 : read_be(p + 2, ext);
    if (ext == 8 && (h.payload_length >> 63) != 0) return fail(error::length_msb_set);
    if (!options.allow_non_minimal_length &&
        ((ext == 2 && h.payload_length < 126) || (ext == 8 && h.payload_length <= 0xFFFF)))
        return fail(error::non_minimal_length);

    h.header_size = 2 + ext + (h.masked ? 4 : 0);
    if (data.size() < h.header_size) return parse_status::need_more;
    if (h.masked) std::memcpy(h.mask, p + 2 + ext, 4);
    out = h;
    if (h.payload_length > max_payload) return fail(error::too_large);
    return parse_status::ok;
}

void unmask(char* payload, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset) {
    // Rotate the key so that key[0] applies to payload[0]; after that every 8-byte word lines
    // up with the same 8-byte key regardless of alignment (memcpy keeps loads legal and
    // compiles to plain unaligned moves, which the loop below lets the compiler vectorise).
    unsigned char key[8];
    for (std::size_t i = 0; i < 8; ++i) key[i] = mask[(offset + i) & 3];
    std::uint64_t word_key;
    std::memcpy(&word_key, key, 8);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        std::uint64_t w[4];
        std::memcpy(w, payload + i, 32);
        w[0] ^= word_key;
        w[1] ^= word_key;
        w[2] ^= word_key;
        w[3] ^= word_key;
        std::memcpy(payload + i, w, 32);
    }
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, payload + i, 8);
        w ^= word_key;
        std::memcpy(payload + i, &w, 8);
    }
    for (; i < n; ++i) payload[i] = static_cast<char>(payload[i] ^ key[i & 7]);
}

std::size_t append_header(std::string& out, const frame_header& h) {
    char buf[max_header_size];
    std::size_t n = 0;
    buf[n++] = static_cast<char>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                 (h.rsv3 ? 0x10 : 0) | (h.opcode & 0x0F));
    const char mask_bit = h.masked ? static_cast<char>(0x80) : 0;
    const std::uint64_t len = h.payload_length;
    if (len < 126) {
        buf[n++] = static_cast<char>(mask_bit | static_cast<char>(len));
    } else if (len <= 0xFFFF) {
        buf[n++] = static_cast<char>(mask_bit | 126);
        buf[n++] = static_cast<char>(len >> 8);
        buf[n++] = static_cast<char>(len & 0xFF);
    } else {
        buf[n++] = static_cast<char>(mask_bit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) buf[n++] = static_cast<char>(len >> shift);
    }
    if (h.masked) {
        std::memcpy(buf + n, h.mask, 4);
        n += 4;
    }
    out.append(buf, n);
    return n;
}

void append_frame(std::string& out, bool fin, std::uint8_t opcode, std::string_view payload,
                  const std::uint8_t* mask) {
    frame_header h;
    h.fin = fin;
    h.opcode = opcode;
    h.payload_length = payload.size();
    if (mask != nullptr) {
        h.masked = true;
        std::memcpy(h.mask, mask, 4);
    }
    append_header(out, h);
    const std::size_t start = out.size();
    out.append(payload);
    if (mask != nullptr) unmask(out.data() + start, payload.size(), mask);
}

void append_close(std::string& out, std::uint16_t code, std::string_view reason,
                  const std::uint8_t* mask) {
    if (code == 0) {
        append_frame(out, true, op::close, {}, mask);
        return;
    }
    constexpr std::size_t max_reason = max_control_payload - 2;
    if (reason.size() > max_reason) {
        // Back off to the start of the character that straddles the limit: a close reason
        // cut inside a character would make the peer fail the connection with 1007.
        std::size_t cut = max_reason;
        while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
        reason = reason.substr(0, cut);
    }
    char body[max_control_payload];
    body[0] = static_cast<char>(code >> 8);
    body[1] = static_cast<char>(code & 0xFF);
    if (!reason.empty()) std::memcpy(body + 2, reason.data(), reason.size());
    append_frame(out, true, op::close, std::string_view(body, 2 + reason.size()), mask);
}

bool is_valid_close_code(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

bool parse_close_payload(std::string_view payload, std::uint16_t& code, std::string_view& reason) {
    if (payload.empty()) {
        code = 1005;
        reason = {};
        return true;
    }
    if (payload.size() < 2) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
    code = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
    if (!is_valid_close_code(code)) return false;
    reason = payload.substr(2);
    utf8_validator v;
    return v.feed(reason) && v.complete();
}

}  // namespace sentinel::websocket
