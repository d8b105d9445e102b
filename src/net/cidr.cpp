// IP text is parsed by hand rather than with inet_pton: the PROXY v1 parser needs to validate
// an address one character at a time (see ip_text.hpp), and one grammar for both callers
// means a config CIDR and a PROXY line can never disagree about what an address is. glibc's
// inet_pton is equally strict (no leading zeros, no octal/hex IPv4, no zone ids); the unit
// tests use it as a differential oracle.
#include "net/cidr.hpp"

#include <algorithm>
#include <cstring>

#include "net/ip_text.hpp"

namespace sentinel::net {
namespace detail {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

ip_text_scanner::ip_text_scanner(family f) noexcept
    : v6_(f == family::v6), phase_(v6_ ? phase::start : phase::v4) {}

bool ip_text_scanner::feed(char c) noexcept {
    const int h = hex_value(c);
    switch (phase_) {
        case phase::start:
            if (c == ':') {
                phase_ = phase::lead_colon;
                return true;
            }
            if (h < 0) return false;
            break;  // first digit of a group, handled below
        case phase::lead_colon:
            if (c != ':') return false;
            dcolon_at_ = 0;
            phase_ = phase::dcolon;
            return true;
        case phase::hex:
            if (h >= 0) {
                if (digits_ == 4) return false;
                ++digits_;
                value_ = value_ * 16 + static_cast<unsigned>(h);
                decimal_ = decimal_ && h < 10;
                decimal_value_ = decimal_value_ * 10 + static_cast<unsigned>(h);
                return true;
            }
            if (c == ':') {
                if (groups_done_ == 8) return false;
                groups_[groups_done_++] = static_cast<std::uint16_t>(value_);
                phase_ = phase::colon;
                return min_remaining() < impossible;
            }
            if (c == '.') {
                // The group was really the first octet of an embedded IPv4 address, which
                // has the same no-leading-zero rule as a bare one.
                const bool leading_zero = digits_ > 1 && (decimal_value_ < (digits_ == 2 ? 10u : 100u));
                if (!decimal_ || digits_ > 3 || leading_zero || decimal_value_ > 255) return false;
                octets_[0] = static_cast<std::uint8_t>(decimal_value_);
                octet_ = 1;
                digits_ = 0;
                value_ = 0;
                phase_ = phase::v4;
                return min_remaining() < impossible;
            }
            return false;
        case phase::colon:
            if (c == ':') {
                if (dcolon_at_ >= 0) return false;
                dcolon_at_ = groups_done_;
                phase_ = phase::dcolon;
                return min_remaining() < impossible;
            }
            if (h < 0) return false;
            break;
        case phase::dcolon:
            if (h < 0) return false;
            break;
        case phase::v4:
            if (c >= '0' && c <= '9') {
                if (digits_ == 3 || (digits_ == 1 && value_ == 0)) return false;
                value_ = value_ * 10 + static_cast<unsigned>(c - '0');
                if (value_ > 255) return false;
                ++digits_;
                return true;
            }
            if (c == '.') {
                if (digits_ == 0 || octet_ == 3) return false;
                octets_[octet_++] = static_cast<std::uint8_t>(value_);
                digits_ = 0;
                value_ = 0;
                return true;
            }
            return false;
    }
    // A new hex group starts with `c`.
    phase_ = phase::hex;
    digits_ = 1;
    value_ = static_cast<unsigned>(h);
    decimal_ = h < 10;
    decimal_value_ = static_cast<unsigned>(h);
    return min_remaining() < impossible;
}

int ip_text_scanner::v4_remaining() const noexcept {
    // Each missing octet costs a dot and a digit; an octet in progress with no digit yet
    // needs just the digit.
    return digits_ == 0 ? (4 - octet_) + (3 - octet_) : 2 * (3 - octet_);
}

int ip_text_scanner::min_remaining() const noexcept {
    if (!v6_) return v4_remaining();
    const bool has_dcolon = dcolon_at_ >= 0;
    switch (phase_) {
        case phase::start:
            return 2;  // "::"
        case phase::lead_colon:
            return 1;
        case phase::hex: {
            const int groups = groups_done_ + 1;
            // "::" stands for at least one zero group, so at most 7 may be written with it.
            if (has_dcolon) return groups <= 7 ? 0 : impossible;
            if (groups == 8) return 0;
            return groups < 8 ? 2 : impossible;  // append "::"
        }
        case phase::colon:
            // One more character: a digit for the next group, or the second ':' of "::".
            if (has_dcolon) return groups_done_ + 1 <= 7 ? 1 : impossible;
            return groups_done_ <= 7 ? 1 : impossible;
        case phase::dcolon:
            return groups_done_ <= 7 ? 0 : impossible;
        case phase::v4: {
            // The embedded IPv4 address is the last 32 bits: exactly 6 groups precede it, or
            // at most 5 plus "::".
            const bool fits = has_dcolon ? groups_done_ <= 5 : groups_done_ == 6;
            return fits ? v4_remaining() : impossible;
        }
    }
    return impossible;
}

bool ip_text_scanner::finish(ip_address& out) const noexcept {
    if (min_remaining() != 0) return false;
    out = ip_address{};
    if (!v6_) {
        std::memcpy(out.bytes, octets_, 3);
        out.bytes[3] = static_cast<std::uint8_t>(value_);
        return true;
    }
    std::uint16_t written[8] = {};
    int count = groups_done_;
    std::copy(groups_, groups_ + count, written);
    if (phase_ == phase::hex) {
        written[count++] = static_cast<std::uint16_t>(value_);
    } else if (phase_ == phase::v4) {
        written[count++] = static_cast<std::uint16_t>(octets_[0] << 8 | octets_[1]);
        written[count++] = static_cast<std::uint16_t>(octets_[2] << 8 | value_);
    }
    std::uint16_t full[8] = {};
    if (dcolon_at_ >= 0) {
        std::copy(written, written + dcolon_at_, full);
        const int tail = count - dcolon_at_;
        std::copy(written + dcolon_at_, written + count, full + 8 - tail);
    } else {
        std::copy(written, written + 8, full);
    }
    out.v6 = true;
    for (int i = 0; i < 8; ++i) {
        out.bytes[2 * i] = static_cast<std::uint8_t>(full[i] >> 8);
        out.bytes[2 * i + 1] = static_cast<std::uint8_t>(full[i] & 0xff);
    }
    return true;
}

}  // namespace detail

namespace {

constexpr std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const std::uint8_t* bytes) noexcept {
    return std::memcmp(bytes, mapped_prefix, sizeof mapped_prefix) == 0;
}

// Compares the first `prefix_len` bits.
bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix_len) noexcept {
    const unsigned whole = prefix_len / 8;
    if (std::memcmp(a, b, whole) != 0) return false;
    const unsigned rest = prefix_len % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

void append_hex(std::string& out, unsigned value) {
    static constexpr char digits[] = "0123456789abcdef";
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
        const unsigned nibble = (value >> shift) & 0xf;
        if (nibble != 0 || started || shift == 0) {
            out.push_back(digits[nibble]);
            started = true;
        }
    }
}

void append_v4(std::string& out, const std::uint8_t* bytes) {
    for (int i = 0; i < 4; ++i) {
        if (i != 0) out.push_back('.');
        out += std::to_string(bytes[i]);
    }
}

}  // namespace

std::optional<ip_address> parse_ip(std::string_view text) {
    using detail::ip_text_scanner;
    const auto fam = text.find(':') != std::string_view::npos ? ip_text_scanner::family::v6
                                                               : ip_text_scanner::family::v4;
    ip_text_scanner scanner(fam);
    for (char c : text)
        if (!scanner.feed(c)) return std::nullopt;
    ip_address addr;
    if (!scanner.finish(addr)) return std::nullopt;
    return addr;
}

std::optional<config::cidr> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    const auto addr = parse_ip(text.substr(0, slash));
    if (!addr) return std::nullopt;
    const unsigned max_len = addr->v6 ? 128 : 32;
    unsigned len = max_len;
    if (slash != std::string_view::npos) {
        // Decimal, no sign, no leading zeros: "/08" is as suspicious as "010.0.0.1".
        const auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0'))
            return std::nullopt;
        len = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            len = len * 10 + static_cast<unsigned>(c - '0');
        }
        if (len > max_len) return std::nullopt;
    }
    // Host bits must be zero: "10.0.0.1/8" is almost always a typo for a host or a /32, and
    // silently widening it to 10.0.0.0/8 would trust far more peers than intended.
    const unsigned width = max_len / 8;
    for (unsigned bit = len; bit < max_len; ++bit)
        if (addr->bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
    config::cidr net;
    net.v6 = addr->v6;
    std::memcpy(net.bytes, addr->bytes, width);
    net.prefix_len = static_cast<std::uint8_t>(len);
    net.text = std::string(text);
    return net;
}

ip_address unmap_ipv4(const ip_address& addr) noexcept {
    if (!addr.v6 || !is_v4_mapped(addr.bytes)) return addr;
    ip_address v4;
    std::memcpy(v4.bytes, addr.bytes + 12, 4);
    return v4;
}

bool cidr_contains(const config::cidr& net, const ip_address& addr) {
    // An IPv4 peer and its IPv4-mapped form (what a dual-stack socket reports) are the same
    // host, so both directions match: v4 nets contain mapped addresses, and v6 nets covering
    // ::ffff:0:0/96 contain plain v4 addresses.
    if (net.v6 == addr.v6) return prefix_equal(net.bytes, addr.bytes, net.prefix_len);
    if (!net.v6) {
        if (!is_v4_mapped(addr.bytes)) return false;
        return prefix_equal(net.bytes, addr.bytes + 12, net.prefix_len);
    }
    std::uint8_t mapped[16];
    std::memcpy(mapped, mapped_prefix, 12);
    std::memcpy(mapped + 12, addr.bytes, 4);
    return prefix_equal(net.bytes, mapped, net.prefix_len);
}

bool any_contains(const std::vector<config::cidr>& nets, const ip_address& addr) {
    return std::any_of(nets.begin(), nets.end(),
                       [&](const config::cidr& net) { return cidr_contains(net, addr); });
}

std::string format_ip(const ip_address& addr) {
    std::string out;
    if (!addr.v6) {
        append_v4(out, addr.bytes);
        return out;
    }
    // RFC 5952 §5: IPv4-mapped addresses keep the dotted tail.
    if (is_v4_mapped(addr.bytes)) {
        out = "::ffff:";
        append_v4(out, addr.bytes + 12);
        return out;
    }
    unsigned groups[8];
    for (int i = 0; i < 8; ++i) groups[i] = addr.bytes[2 * i] << 8 | addr.bytes[2 * i + 1];
    // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
    int best_start = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        if (groups[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && groups[j] == 0) ++j;
        if (j - i > best_len) {
            best_start = i;
            best_len = j - i;
        }
        i = j;
    }
    for (int i = 0; i < 8; ++i) {
        if (i == best_start) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (i != 0 && i != best_start + best_len) out.push_back(':');
        append_hex(out, groups[i]);
    }
    return out;
}

}  // namespace sentinel::net
