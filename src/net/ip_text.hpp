// Incremental validator for IP address text, shared by parse_ip and the PROXY v1 parser.
// Private to src/net/. It is fed one character at a time so the PROXY v1 parser can reject a
// partial line the moment no continuation could be valid, instead of waiting for CRLF.
#pragma once

#include <cstdint>

#include "net/cidr.hpp"

namespace sentinel::net::detail {

class ip_text_scanner {
public:
    enum class family : std::uint8_t { v4, v6 };
    // Larger than any real completion, so "pos + min_remaining() <= limit" works unguarded.
    static constexpr int impossible = 1000;

    explicit ip_text_scanner(family f) noexcept;

    // False once no continuation of the characters fed so far is a valid address; the
    // scanner must not be fed again after that.
    bool feed(char c) noexcept;
    // Fewest further characters that would complete a valid address; 0 when the text fed so
    // far already is one. Never `impossible` after a successful feed.
    int min_remaining() const noexcept;
    // Writes the address if the text fed so far is complete.
    bool finish(ip_address& out) const noexcept;

private:
    enum class phase : std::uint8_t { start, lead_colon, hex, colon, dcolon, v4 };

    int v4_remaining() const noexcept;

    bool v6_;
    phase phase_;
    std::uint16_t groups_[8] = {};  // completed 16-bit groups, in text order
    int groups_done_ = 0;
    int dcolon_at_ = -1;  // groups before "::", or -1 when there is none
    int digits_ = 0;      // digits in the current hex group or IPv4 octet
    unsigned value_ = 0;  // hex value of the group, or decimal value of the octet
    unsigned decimal_value_ = 0;  // the group read as decimal, in case it turns out to be IPv4
    bool decimal_ = true;         // every digit of the group so far is 0-9
    std::uint8_t octets_[4] = {};
    int octet_ = 0;  // index of the IPv4 octet being read
};

}  // namespace sentinel::net::detail
