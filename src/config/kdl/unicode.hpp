// Private to the KDL parser and printer: UTF-8 decoding and the code point classes of KDL v2.
// The sets are spelled out by hand because the spec fixes them exactly; <cwctype> would follow
// the C locale instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sentinel::kdl::detail {

inline constexpr char32_t end_of_input = 0xFFFFFFFF;
inline constexpr char32_t invalid_utf8 = 0xFFFFFFFE;

struct decoded {
    char32_t cp;
    std::uint32_t length;  // bytes consumed; 1 for invalid input so callers always advance
};

// Strict UTF-8: rejects overlong forms, surrogates and values above U+10FFFF.
inline decoded decode_utf8(std::string_view s, std::size_t at) {
    if (at >= s.size()) return {end_of_input, 0};
    const auto b0 = static_cast<unsigned char>(s[at]);
    if (b0 < 0x80) return {b0, 1};
    std::uint32_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
    else return {invalid_utf8, 1};
    if (s.size() - at < len) return {invalid_utf8, 1};
    for (std::uint32_t i = 1; i < len; ++i) {
        const auto b = static_cast<unsigned char>(s[at + i]);
        if ((b & 0xC0) != 0x80) return {invalid_utf8, 1};
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {invalid_utf8, 1};
    return {cp, len};
}

inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// unicode-space: White_Space characters that are not newlines (spec table "Whitespace").
inline bool is_unicode_space(char32_t c) {
    switch (c) {
    case 0x09: case 0x20: case 0xA0: case 0x1680: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

// newline: CRLF counts as one, but each of its code points is a newline on its own too.
inline bool is_newline(char32_t c) {
    switch (c) {
    case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x85: case 0x2028: case 0x2029:
        return true;
    default:
        return false;
    }
}

// Code points that may not appear literally anywhere (U+FEFF is allowed only as a leading BOM).
inline bool is_disallowed_literal(char32_t c) {
    return c <= 0x08 || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0xD800 && c <= 0xDFFF) ||
           c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF || c > 0x10FFFF;
}

inline bool is_identifier_char(char32_t c) {
    if (is_unicode_space(c) || is_newline(c) || is_disallowed_literal(c)) return false;
    switch (c) {
    case '\\': case '/': case '(': case ')': case '{': case '}': case ';': case '[': case ']':
    case '"': case '#': case '=':
        return false;
    default:
        return true;
    }
}

inline bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

inline bool is_hex_digit(char32_t c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline int hex_value(char32_t c) {
    if (is_digit(c)) return static_cast<int>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
    return static_cast<int>(c - 'A' + 10);
}

// A bare token that starts like a number (after an optional sign and dot) must be a number;
// `.5`, `+.5` and `0n` are errors rather than identifiers.
inline bool looks_like_number(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i < s.size() && s[i] == '.') ++i;
    return i < s.size() && is_digit(static_cast<unsigned char>(s[i]));
}

inline bool is_reserved_keyword_ident(std::string_view s) {
    return s == "true" || s == "false" || s == "null" || s == "inf" || s == "-inf" || s == "nan";
}

// True when `s` can be printed (and re-read) as a bare identifier-string.
inline bool is_bare_identifier(std::string_view s) {
    if (s.empty() || looks_like_number(s) || is_reserved_keyword_ident(s)) return false;
    for (std::size_t i = 0; i < s.size();) {
        const auto d = decode_utf8(s, i);
        if (d.cp == invalid_utf8 || !is_identifier_char(d.cp)) return false;
        i += d.length;
    }
    return true;
}

}  // namespace sentinel::kdl::detail
