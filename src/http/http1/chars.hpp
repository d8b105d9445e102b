// Byte-class tables shared by the HTTP/1 codec (private to src/http/http1). Tables instead of
// <cctype> because the hot path must not depend on the locale and a lookup is one load.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sentinel::http1::detail {

enum char_class : std::uint8_t {
    cc_tchar = 1 << 0,        // RFC 9110 §5.6.2 token characters
    cc_field = 1 << 1,        // field-value bytes: VCHAR, obs-text, SP, HTAB (no CTL, no DEL)
    cc_target = 1 << 2,       // request-target bytes (RFC 3986 set, see build_table())
    cc_host = 1 << 3,         // reg-name subset we accept in Host (alnum - . _ ~)
    cc_hex = 1 << 4,          // HEXDIG
    cc_qdtext = 1 << 5,       // quoted-string text (RFC 9110 §5.6.4), without '"' and '\'
};

consteval std::array<std::uint8_t, 256> build_table() {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        std::uint8_t v = 0;
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (alpha || digit || std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos)
            v |= cc_tchar;
        if ((c >= 0x20 && c != 0x7f) || c == '\t') v |= cc_field;
        // unreserved / sub-delims / ":" / "@" / "/" / "?" / "%" plus "[" "]" (IP literals in
        // absolute-form and common unencoded query arrays). Excluded: CTL, SP, obs-text, DEL,
        // and "\"<>\\^`{|}#" — '#' because a fragment is never part of a request-target.
        if (alpha || digit ||
            std::string_view("-._~!$&'()*+,;=:@/?%[]").find(char(c)) != std::string_view::npos)
            v |= cc_target;
        if (alpha || digit || c == '-' || c == '.' || c == '_' || c == '~') v |= cc_host;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= cc_hex;
        if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
            (c >= 0x5d && c <= 0x7e) || c >= 0x80)
            v |= cc_qdtext;
        t[static_cast<std::size_t>(c)] = v;
    }
    return t;
}

inline constexpr std::array<std::uint8_t, 256> char_table = build_table();

inline bool is(char c, char_class cls) {
    return (char_table[static_cast<unsigned char>(c)] & cls) != 0;
}
inline bool is_tchar(char c) { return is(c, cc_tchar); }
inline bool is_ows(char c) { return c == ' ' || c == '\t'; }
inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Returns the first byte in [p, e) that is not field-value content (a CTL other than HTAB,
// or DEL), or e. Values are most of a head's bytes, so eight are checked per step: a word
// with no byte < 0x20 and none == 0x7f is all valid (obs-text >= 0x80 is valid too).
inline const char* skip_field_bytes(const char* p, const char* e) {
    constexpr std::uint64_t ones = 0x0101010101010101ull;
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    while (e - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
        const std::uint64_t x = w ^ (ones * 0x7f);
        const std::uint64_t del = (x - ones) & ~x & highs;
        if ((below_space | del) != 0) break;  // the byte loop finds it (HTAB is fine)
        p += 8;
    }
    while (p < e && is(*p, cc_field)) ++p;
    return p;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// Calls f(element) for each comma-separated list element, OWS-trimmed (empty ones included,
// so callers decide whether empty elements are an error). Returns false as soon as f does.
template <typename F>
bool for_each_list_element(std::string_view value, F&& f) {
    for (;;) {
        const auto comma = value.find(',');
        if (!f(trim_ows(value.substr(0, comma)))) return false;
        if (comma == std::string_view::npos) return true;
        value.remove_prefix(comma + 1);
    }
}

}  // namespace sentinel::http1::detail
