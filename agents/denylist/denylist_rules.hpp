// The denylist: parsing the rules file and matching requests against it. No I/O (the file is
// read by rule_store), so both halves are unit-tested with strings.
//
// File format, one rule per line; blank lines and lines whose first non-blank character is `#`
// are ignored (there are no trailing comments: `#` may be part of a user-agent):
//
//     ip 203.0.113.0/24          client address in a CIDR (IPv4 or IPv6); a bare address is /32 or /128
//     path /admin                request path starts with this (case-sensitive bytes)
//     header X-Name some value   a header of that name (case-insensitive) with exactly this value
//     user-agent sqlmap          User-Agent contains this (ASCII case-insensitive)
//
// When several rules match, the one on the lowest line is reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentinel::denylist {

enum class rule_kind : std::uint8_t { ip, path, header, user_agent };

struct rule {
    rule_kind kind{};
    std::size_t line = 0;  // 1-based line in the file: the audit rule id is "denylist:<line>"
    std::string text;      // the rule as written, e.g. "ip 203.0.113.0/24": the audit reason
};

struct parse_error {
    std::size_t line = 0;    // 1-based
    std::size_t column = 0;  // 1-based byte column
    std::string message;
};
// "FILE:LINE:COL: message", the form editors and CI annotate.
std::string format_error(std::string_view file, const parse_error& e);

struct header_view {
    std::string_view name;
    std::string_view value;
};

// What a rule can look at. `client_address` is an IP literal (IPv4, or IPv6 optionally in
// brackets); `path` is as received, without the query.
struct request_facts {
    std::string_view client_address;
    std::string_view path;
    std::span<const header_view> headers;
};

// An IP address as 128 bits; IPv4 is held in its IPv4-mapped form (::ffff:a.b.c.d), so IPv4
// rules match IPv4-mapped clients and an IPv6 rule covering ::ffff:0:0/96 (or ::/0) matches
// IPv4 clients, as the proxy's own CIDR matching does.
struct ip_key {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;
    bool operator==(const ip_key&) const = default;
};
// Parses an address literal; false for anything else (zone ids, ports, spaces).
bool parse_ip(std::string_view text, ip_key& out);

// The path an origin server would most likely act on: percent-decoded once (except %2F, which
// would change the segments), duplicate slashes merged, `.` and `..` segments resolved. Rules
// match both this and the raw path, so "/%61dmin" or "//admin/./" cannot slip past "/admin".
std::string normalize_path(std::string_view path);

class rule_set {
public:
    // Parses a whole file. On any error `errors` lists every bad line (in order) and `out` is
    // left unchanged.
    static bool parse(std::string_view text, rule_set& out, std::vector<parse_error>& errors);

    // The matching rule with the lowest line, or nullptr.
    const rule* match(const request_facts& request) const;

    std::size_t size() const noexcept { return rules_.size(); }
    const std::vector<rule>& rules() const noexcept { return rules_; }

private:
    struct ip_key_hash {
        std::size_t operator()(const ip_key& k) const noexcept {
            return std::hash<std::uint64_t>{}(k.hi * 0x9e3779b97f4a7c15ull ^ k.lo);
        }
    };
    // One hash table per prefix length in use: a lookup costs one probe per distinct length,
    // whatever the number of rules.
    struct ip_table {
        unsigned prefix = 0;  // in the 128-bit space
        std::unordered_map<ip_key, std::uint32_t, ip_key_hash> nets;  // masked network -> rule index
    };
    struct path_table {
        std::size_t length = 0;
        std::unordered_map<std::string, std::uint32_t> prefixes;  // normalized prefix -> rule index
    };
    struct header_rule {
        std::string value;
        std::uint32_t index = 0;
    };

    void add_ip(ip_key net, unsigned prefix, std::uint32_t index);
    void add_path(std::string prefix, std::uint32_t index);
    void match_path(std::string_view path, std::uint32_t& best) const;

    std::vector<rule> rules_;
    std::vector<ip_table> ip_tables_;
    std::vector<path_table> path_tables_;
    std::unordered_map<std::string, std::vector<header_rule>> header_rules_;  // key: lower-case name
    std::vector<header_rule> user_agent_rules_;                               // value: lower-case
};

}  // namespace sentinel::denylist
