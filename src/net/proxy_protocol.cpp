// PROXY protocol v1/v2 (haproxy doc/proxy-protocol.txt). The header arrives before any
// application byte and comes from a peer we trust only because of its address, so the parser
// is strict and answers `error` as soon as the bytes so far cannot start a valid header: a
// stray client on a PROXY listener is cut off after its first wrong byte, not at a timeout.
#include "net/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "net/ip_text.hpp"

namespace sentinel::net {
namespace {

using status = proxy_parse_status;
using detail::ip_text_scanner;

// The spec's receive-buffer bound: the longest v1 line, CRLF included.
constexpr std::size_t v1_max_line = 107;

constexpr unsigned char v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t v2_fixed = 16;
constexpr std::uint8_t pp2_type_crc32c = 0x03;

std::uint8_t byte_at(std::string_view data, std::size_t i) noexcept {
    return static_cast<std::uint8_t>(data[i]);
}

// ---- v1 ------------------------------------------------------------------------------------

class v1_parser {
public:
    explicit v1_parser(std::string_view data) noexcept
        : data_(data), limit_(std::min(data.size(), v1_max_line)) {}

    status parse(proxy_header& out, std::size_t& consumed) noexcept;

private:
    // Called when the bytes run out at pos_ with at least `rest` more needed to finish the
    // line: need_more only if that still fits in the 107-byte bound.
    status out_of_bytes(std::size_t rest) const noexcept {
        if (pos_ >= v1_max_line) return status::error;
        return pos_ + rest <= v1_max_line ? status::need_more : status::error;
    }
    // Each scan_* consumes one field and its terminator, or returns the verdict.
    std::optional<status> scan_address(ip_text_scanner& scanner, std::size_t rest) noexcept;
    std::optional<status> scan_port(std::uint16_t& port, char terminator,
                                    std::size_t rest) noexcept;
    std::optional<status> scan_lf() noexcept;

    std::string_view data_;
    std::size_t limit_;
    std::size_t pos_ = 0;
};

std::optional<status> v1_parser::scan_address(ip_text_scanner& scanner,
                                              std::size_t rest) noexcept {
    for (;;) {
        if (pos_ >= limit_) return out_of_bytes(static_cast<std::size_t>(scanner.min_remaining()) + rest);
        const char c = data_[pos_++];
        if (c == ' ') {
            if (scanner.min_remaining() != 0) return status::error;
            return std::nullopt;
        }
        if (!scanner.feed(c)) return status::error;
    }
}

std::optional<status> v1_parser::scan_port(std::uint16_t& port, char terminator,
                                           std::size_t rest) noexcept {
    unsigned value = 0;
    int digits = 0;
    for (;;) {
        if (pos_ >= limit_) return out_of_bytes((digits == 0 ? 1 : 0) + rest);
        const char c = data_[pos_++];
        if (c == terminator && digits > 0) {
            port = static_cast<std::uint16_t>(value);
            return std::nullopt;
        }
        // Decimal in [0, 65535], no leading zeros (the spec forbids them to avoid octal).
        if (c < '0' || c > '9' || (digits == 1 && value == 0)) return status::error;
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > 65535) return status::error;
        ++digits;
    }
}

std::optional<status> v1_parser::scan_lf() noexcept {
    if (pos_ >= limit_) return out_of_bytes(1);
    if (data_[pos_++] != '\n') return status::error;
    return std::nullopt;
}

status v1_parser::parse(proxy_header& out, std::size_t& consumed) noexcept {
    static constexpr std::string_view prefix = "PROXY ";
    for (; pos_ < prefix.size(); ++pos_) {
        if (pos_ >= limit_) return status::need_more;
        if (data_[pos_] != prefix[pos_]) return status::error;
    }

    static constexpr std::array<std::string_view, 3> protocols = {"TCP4", "TCP6", "UNKNOWN"};
    const std::size_t proto_start = pos_;
    std::string_view proto;
    for (;;) {
        const std::string_view so_far = data_.substr(proto_start, pos_ - proto_start);
        const bool is_prefix = std::any_of(protocols.begin(), protocols.end(),
                                           [&](std::string_view p) { return p.starts_with(so_far); });
        if (!is_prefix) return status::error;
        if (pos_ >= limit_) return out_of_bytes(2);  // the rest can always fit: "UNKNOWN\r\n"
        const char c = data_[pos_];
        if (c == ' ' || c == '\r') {
            proto = so_far;
            break;
        }
        ++pos_;
    }

    proxy_header header;
    header.version = 1;
    if (proto == "UNKNOWN") {
        // The sender could not tell the addresses; anything up to CRLF is to be ignored, but a
        // bare CR or LF is still malformed.
        for (;;) {
            if (pos_ >= limit_) return out_of_bytes(2);
            const char c = data_[pos_++];
            if (c == '\r') break;
            if (c == '\n') return status::error;
        }
        if (auto st = scan_lf()) return *st;
        out = header;
        consumed = pos_;
        return status::done;
    }
    if (proto != "TCP4" && proto != "TCP6") return status::error;
    if (data_[pos_++] != ' ') return status::error;

    const bool v6 = proto == "TCP6";
    const auto fam = v6 ? ip_text_scanner::family::v6 : ip_text_scanner::family::v4;
    // Shortest possible remainder after each field, terminator included: the destination
    // address ("0.0.0.0" or "::") then " 0 0\r\n".
    const std::size_t shortest_address = v6 ? 2 : 7;
    ip_text_scanner source(fam), destination(fam);
    if (auto st = scan_address(source, 1 + shortest_address + 6)) return *st;
    if (auto st = scan_address(destination, 6)) return *st;
    if (auto st = scan_port(header.source.port, ' ', 4)) return *st;
    if (auto st = scan_port(header.destination.port, '\r', 2)) return *st;
    if (auto st = scan_lf()) return *st;

    ip_address src, dst;
    source.finish(src);
    destination.finish(dst);
    header.has_addresses = true;
    header.source.v6 = header.destination.v6 = v6;
    std::memcpy(header.source.bytes, src.bytes, sizeof src.bytes);
    std::memcpy(header.destination.bytes, dst.bytes, sizeof dst.bytes);
    out = header;
    consumed = pos_;
    return status::done;
}

// ---- v2 ------------------------------------------------------------------------------------

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t crc = i;
        for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        table[i] = crc;
    }
    return table;
}

constexpr auto crc32c_table = make_crc32c_table();

// CRC32c of `data` with the four bytes at `zeroed` taken as zero (the spec's rule for the
// checksum TLV's own value).
std::uint32_t crc32c(std::string_view data, std::size_t zeroed) noexcept {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint8_t b = (i >= zeroed && i < zeroed + 4) ? 0 : byte_at(data, i);
        crc = crc32c_table[(crc ^ b) & 0xff] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFu;
}

// Size of the address block for a v2 family byte, or -1 for a value the spec says receivers
// must reject. The low nibble is the transport (1 STREAM, 2 DGRAM); UNSPEC only as 0x00.
int v2_address_length(std::uint8_t family) noexcept {
    switch (family) {
        case 0x00: return 0;
        case 0x11: case 0x12: return 12;   // AF_INET: 2 x 4 bytes + 2 x port
        case 0x21: case 0x22: return 36;   // AF_INET6: 2 x 16 bytes + 2 x port
        case 0x31: case 0x32: return 216;  // AF_UNIX: 2 x 108 bytes
        default: return -1;
    }
}

status parse_v2(std::string_view data, proxy_header& out, std::size_t& consumed,
                std::size_t max_v2_bytes) noexcept {
    const std::size_t have = data.size();
    for (std::size_t i = 0; i < sizeof v2_signature; ++i) {
        if (i >= have) return status::need_more;
        if (byte_at(data, i) != v2_signature[i]) return status::error;
    }
    if (have < 13) return status::need_more;
    const std::uint8_t ver_cmd = byte_at(data, 12);
    const unsigned command = ver_cmd & 0x0f;
    if ((ver_cmd >> 4) != 2 || command > 1) return status::error;  // 0 LOCAL, 1 PROXY
    if (have < 14) return status::need_more;
    const std::uint8_t family = byte_at(data, 13);
    // Undefined family bytes are rejected even for LOCAL (where the family is otherwise
    // ignored): the spec says receivers must reject them, and no real sender emits them.
    const int address_length = v2_address_length(family);
    if (address_length < 0) return status::error;
    if (have < v2_fixed) return status::need_more;
    const std::size_t total = v2_fixed + (std::size_t{byte_at(data, 14)} << 8 | byte_at(data, 15));
    if (total > max_v2_bytes) return status::error;
    const bool proxy = command == 1;
    if (proxy && total < v2_fixed + static_cast<std::size_t>(address_length)) return status::error;

    // TLVs follow the addresses of a PROXY block. They are skipped, but must tile the block
    // exactly so a length field cannot point outside it. LOCAL and UNSPEC blocks are opaque
    // by spec and are skipped whole.
    std::optional<std::size_t> crc_at;
    if (proxy && family != 0x00) {
        std::size_t tlv = v2_fixed + static_cast<std::size_t>(address_length);
        while (tlv < total) {
            if (total - tlv < 3) return status::error;
            if (tlv + 3 > have) return status::need_more;
            const std::uint8_t type = byte_at(data, tlv);
            const std::size_t length = std::size_t{byte_at(data, tlv + 1)} << 8 | byte_at(data, tlv + 2);
            if (length > total - tlv - 3) return status::error;
            if (type == pp2_type_crc32c) {
                if (length != 4 || crc_at) return status::error;
                crc_at = tlv + 3;
            }
            tlv += 3 + length;
        }
    }
    if (have < total) return status::need_more;

    if (crc_at) {
        const std::size_t at = *crc_at;
        const std::uint32_t expected = std::uint32_t{byte_at(data, at)} << 24 |
                                       std::uint32_t{byte_at(data, at + 1)} << 16 |
                                       std::uint32_t{byte_at(data, at + 2)} << 8 |
                                       byte_at(data, at + 3);
        if (crc32c(data.substr(0, total), at) != expected) return status::error;
    }

    proxy_header header;
    header.version = 2;
    const unsigned fam = family >> 4;
    if (proxy && (fam == 1 || fam == 2)) {
        const std::size_t width = fam == 1 ? 4 : 16;
        const char* p = data.data() + v2_fixed;
        header.has_addresses = true;
        header.source.v6 = header.destination.v6 = fam == 2;
        std::memcpy(header.source.bytes, p, width);
        std::memcpy(header.destination.bytes, p + width, width);
        const std::size_t ports = v2_fixed + 2 * width;
        header.source.port = static_cast<std::uint16_t>(byte_at(data, ports) << 8 | byte_at(data, ports + 1));
        header.destination.port =
            static_cast<std::uint16_t>(byte_at(data, ports + 2) << 8 | byte_at(data, ports + 3));
    }
    out = header;
    consumed = total;
    return status::done;
}

}  // namespace

proxy_parse_status parse_proxy_header(std::string_view data, proxy_header& out,
                                      std::size_t& consumed, std::size_t max_v2_bytes) {
    if (data.empty()) return status::need_more;
    if (data[0] == 'P') {
        v1_parser parser(data);
        return parser.parse(out, consumed);
    }
    if (data[0] == '\r') return parse_v2(data, out, consumed, max_v2_bytes);
    return status::error;
}

}  // namespace sentinel::net
