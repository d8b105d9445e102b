// IP address and CIDR helpers shared by listeners (trusted proxies) and the config loader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model/config.hpp"

namespace sentinel::net {

struct ip_address {
    bool v6 = false;
    std::uint8_t bytes[16] = {};  // network byte order; IPv4 uses the first 4
};

// Parses "1.2.3.4" or "::1" / "2001:db8::1" (no brackets, no port).
// Strict: IPv4 is exactly four decimal octets without leading zeros (no octal/hex/short forms);
// IPv6 is any RFC 4291 §2.2 text form (hex case-insensitive, one "::", embedded dotted IPv4 as
// the last 32 bits). Zone ids ("%eth0") are rejected.
std::optional<ip_address> parse_ip(std::string_view text);
// Parses "10.0.0.0/8", "::1/128"; a bare address means a full-length prefix. Host bits
// beyond the prefix must be zero. The prefix length is decimal without leading zeros.
// `text` of the result is the input as written.
std::optional<config::cidr> parse_cidr(std::string_view text);
// True if `addr` lies in `net`. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 nets,
// and a plain IPv4 address matches IPv6 nets through its mapped form (so ::/0 contains it).
// Other embeddings (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96) are distinct addresses.
bool cidr_contains(const config::cidr& net, const ip_address& addr);
bool any_contains(const std::vector<config::cidr>& nets, const ip_address& addr);
// Canonical text ("1.2.3.4", "2001:db8::1") for X-Forwarded-For and logs: RFC 5952 for IPv6
// (lowercase, no leading zeros, longest run of 2+ zero groups as "::"), and "::ffff:1.2.3.4"
// for IPv4-mapped addresses (use unmap_ipv4 first to print them as plain IPv4).
std::string format_ip(const ip_address& addr);
// The IPv4 address inside an IPv4-mapped IPv6 address; any other address is returned as is.
ip_address unmap_ipv4(const ip_address& addr) noexcept;

}  // namespace sentinel::net
