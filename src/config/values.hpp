// Parsers for the typed scalar values of the config language (durations, sizes, addresses,
// CIDRs, HTTP tokens) and the "did you mean" helper. Pure functions, no I/O, so the schema
// check, the tests and future callers (admin API, CLI) share one definition of each form.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/model/config.hpp"

namespace sentinel::config {

// "250ms", "30s", "5m", "1h": a decimal integer immediately followed by one unit. Nothing else
// (no bare numbers, no fractions, no spaces, no compound "1h30m"). nullopt when malformed or
// when the value overflows.
std::optional<duration> parse_duration(std::string_view text);

// "512B", "8KiB", "10MiB", "1GiB": a decimal integer immediately followed by B/KiB/MiB/GiB.
std::optional<std::uint64_t> parse_size(std::string_view text);

// Canonical text of a duration/size (the largest unit that divides the value exactly).
std::string format_duration(duration d);
std::string format_size(std::uint64_t bytes);

enum class host_kind { ipv4, ipv6, name };

struct address_parse {
    std::optional<socket_address> address;
    std::string error;  // why it failed, when address is empty
    host_kind kind = host_kind::name;
};

// "1.2.3.4:80", "[::1]:80", "name:80". The port is 0-65535 here; callers apply their own range.
address_parse parse_socket_address(std::string_view text);

struct cidr_parse {
    std::optional<cidr> network;
    std::string error;
};

// "10.0.0.0/8", "::1/128". Host bits beyond the prefix must be zero.
cidr_parse parse_cidr(std::string_view text);

// RFC 9110 `token` (header field names, methods).
bool is_http_token(std::string_view text);
// A header field value: no CR, LF or NUL.
bool is_header_value(std::string_view text);

// Optimal-string-alignment edit distance (a transposition counts as one edit).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is plausibly a typo of it; empty otherwise.
std::string closest_match(std::string_view word, std::span<const std::string_view> candidates);
std::string closest_match(std::string_view word, std::span<const std::string> candidates);

}  // namespace sentinel::config
