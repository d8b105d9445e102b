// Private to the KDL parser: turns a bare number token into a value in canonical form.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/kdl/document.hpp"

namespace sentinel::kdl::detail {

// Radix integers are converted to decimal text, which costs O(digits^2); the cap keeps hostile
// input linear-ish while leaving room far beyond any 64-bit (or 128-bit) value.
inline constexpr std::size_t max_radix_digits = 1024;

struct number_error {
    std::string expected;  // what the grammar wanted at `offset`
    std::size_t offset = 0;  // byte offset inside the token
};

// Parses `token` (a maximal run of identifier characters that looks like a number) into `out`
// (type, text, integer, decimal). Returns false and fills `err` when it is not a valid number.
bool parse_number(std::string_view token, value& out, number_error& err);

// Canonical text for a double (used by the printer for values built in code, not parsed).
std::string format_decimal(double d);

}  // namespace sentinel::kdl::detail
