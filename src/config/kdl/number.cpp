#include "config/kdl/number.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <system_error>
#include <vector>

#include "config/kdl/unicode.hpp"

namespace sentinel::kdl::detail {
namespace {

// Digits of `digits` (already stripped of `_`, most significant first) in `radix`, as decimal.
std::string radix_to_decimal(std::string_view digits, unsigned radix) {
    constexpr std::uint32_t limb_base = 1'000'000'000;
    std::vector<std::uint32_t> limbs;  // little-endian, base 1e9
    for (char ch : digits) {
        std::uint64_t carry = static_cast<std::uint64_t>(hex_value(static_cast<unsigned char>(ch)));
        for (auto& limb : limbs) {
            const std::uint64_t v = static_cast<std::uint64_t>(limb) * radix + carry;
            limb = static_cast<std::uint32_t>(v % limb_base);
            carry = v / limb_base;
        }
        if (carry != 0) limbs.push_back(static_cast<std::uint32_t>(carry));
    }
    if (limbs.empty()) return "0";
    std::string out = std::to_string(limbs.back());
    for (std::size_t i = limbs.size() - 1; i-- > 0;) {
        const std::string part = std::to_string(limbs[i]);
        out.append(9 - part.size(), '0');
        out += part;
    }
    return out;
}

// Sets `out.integer` when the canonical decimal text fits in int64.
void set_int64(std::string_view magnitude, bool negative, value& out) {
    if (magnitude.size() > 19) return;
    std::uint64_t v = 0;
    for (char ch : magnitude) v = v * 10 + static_cast<std::uint64_t>(ch - '0');
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative && v <= max) out.integer = static_cast<std::int64_t>(v);
    if (negative && v <= max + 1)
        out.integer = v == max + 1 ? std::numeric_limits<std::int64_t>::min()
                                   : -static_cast<std::int64_t>(v);
}

void set_double(value& out) {
    const std::string& t = out.text;
    double d = 0.0;
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec == std::errc::result_out_of_range) {
        // Beyond double range: keep the text exact, approximate the double sensibly.
        const bool tiny = t.find("E-") != std::string::npos;
        d = tiny ? 0.0 : std::numeric_limits<double>::infinity();
        if (!t.empty() && t[0] == '-') d = -d;
    }
    out.decimal = d;
}

std::string_view strip_leading_zeros(std::string_view s) {
    while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
    return s;
}

}  // namespace

bool parse_number(std::string_view token, value& out, number_error& err) {
    std::size_t i = 0;
    bool negative = false;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) negative = token[i++] == '-';
    const auto at = [&](std::size_t k) -> char32_t {
        return k < token.size() ? static_cast<unsigned char>(token[k]) : end_of_input;
    };
    const auto fail = [&](std::string what) {
        err.expected = std::move(what);
        err.offset = i;
        return false;
    };

    if (at(i) == '0' && (at(i + 1) == 'x' || at(i + 1) == 'o' || at(i + 1) == 'b')) {
        const char marker = token[i + 1];
        const unsigned radix = marker == 'x' ? 16 : marker == 'o' ? 8 : 2;
        const char* name = radix == 16 ? "hexadecimal digit" : radix == 8 ? "octal digit"
                                                                          : "binary digit";
        const auto in_radix = [&](char32_t c) {
            return radix == 16 ? is_hex_digit(c) : (c >= '0' && c < '0' + radix);
        };
        i += 2;
        if (!in_radix(at(i))) return fail(name);
        std::string digits;
        for (; i < token.size(); ++i) {
            if (token[i] == '_') continue;
            if (!in_radix(at(i))) return fail(std::string(name) + " or '_'");
            digits.push_back(token[i]);
        }
        const std::string_view significant = strip_leading_zeros(digits);
        if (significant.size() > max_radix_digits) {
            i = 0;
            return fail("a number of at most " + std::to_string(max_radix_digits) + " digits");
        }
        const std::string magnitude = radix_to_decimal(significant, radix);
        out.type = value::kind::integer;
        out.text.clear();
        if (negative && magnitude != "0") out.text.push_back('-');
        out.text += magnitude;
        set_int64(magnitude, negative, out);
        set_double(out);
        return true;
    }

    // decimal := sign? integer ('.' integer)? exponent?   integer := digit (digit | '_')*
    const auto integer = [&](std::string& digits) {
        if (!is_digit(at(i))) return false;
        for (; i < token.size() && (is_digit(at(i)) || token[i] == '_'); ++i)
            if (token[i] != '_') digits.push_back(token[i]);
        return true;
    };
    std::string whole;
    std::string fraction;
    std::string exponent;
    bool has_fraction = false;
    bool has_exponent = false;
    char exponent_sign = '+';
    if (!integer(whole)) return fail("digit");
    if (at(i) == '.') {
        ++i;
        has_fraction = true;
        if (!integer(fraction)) return fail("digit after '.'");
    }
    if (at(i) == 'e' || at(i) == 'E') {
        ++i;
        has_exponent = true;
        if (at(i) == '+' || at(i) == '-') exponent_sign = token[i++];
        if (!integer(exponent)) return fail("exponent digit");
    }
    if (i != token.size()) {
        if (at(i) == '.') return fail(has_exponent ? "end of number" : "digit or exponent");
        return fail(has_exponent ? "exponent digit" : "digit, '.' or exponent");
    }

    const std::string_view magnitude = strip_leading_zeros(whole);
    if (!has_fraction && !has_exponent) {
        out.type = value::kind::integer;
        out.text.clear();
        if (negative && magnitude != "0") out.text.push_back('-');
        out.text += magnitude;
        set_int64(magnitude, negative, out);
    } else {
        out.type = value::kind::decimal;
        out.text.clear();
        if (negative) out.text.push_back('-');
        out.text += magnitude;
        if (has_fraction) {
            out.text += '.';
            out.text += fraction;
        }
        if (has_exponent) {
            out.text += 'E';
            out.text += exponent_sign;
            out.text += strip_leading_zeros(exponent);
        }
    }
    set_double(out);
    return true;
}

std::string format_decimal(double d) {
    if (std::isnan(d)) return "#nan";
    if (std::isinf(d)) return d > 0 ? "#inf" : "#-inf";
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    std::string s(buf, ec == std::errc{} ? end : buf);
    // to_chars gives the shortest round-trip form: `1e+10`, `1.5`, `100`; bring it to the
    // canonical `1.0E+10` / `100.0` shape so it reads back as a decimal, not an integer.
    std::string mantissa = s;
    std::string exponent;
    if (const auto e = s.find('e'); e != std::string::npos) {
        mantissa = s.substr(0, e);
        exponent = s.substr(e + 1);
    }
    if (mantissa.find('.') == std::string::npos) mantissa += ".0";
    if (exponent.empty()) return mantissa;
    const char sign = exponent[0] == '-' ? '-' : '+';
    if (exponent[0] == '-' || exponent[0] == '+') exponent.erase(0, 1);
    return mantissa + 'E' + sign + std::string(strip_leading_zeros(exponent));
}

}  // namespace sentinel::kdl::detail
