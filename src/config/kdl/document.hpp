// KDL v2 document model: what the parser produces and the printer consumes.
// Plain data with source positions, so the config schema can point at file:line:col.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sentinel::kdl {

struct position {
    std::uint32_t line = 1;    // 1-based
    std::uint32_t column = 1;  // 1-based, counted in Unicode scalar values
    std::uint32_t offset = 0;  // byte offset into the source
};

struct value {
    enum class kind { string, integer, decimal, boolean, null };
    kind type = kind::null;
    // string: the decoded string. integer/decimal: the number printed in canonical form
    // (decimal integer without underscores, or a float like `1.5`, `1.0E+10`, `#inf`, `#-inf`,
    // `#nan`) so numbers beyond 64 bits still round-trip.
    std::string text;
    bool boolean = false;
    // integer: set when the value fits in int64. decimal: the double value (may be inf/nan).
    std::optional<std::int64_t> integer;
    double decimal = 0.0;
    std::optional<std::string> annotation;  // `(type)` prefix, if any
    position pos;

    bool is_string() const { return type == kind::string; }
    bool is_number() const { return type == kind::integer || type == kind::decimal; }
};

struct property {
    std::string name;
    value val;
    position pos;  // position of the key
};

struct node {
    std::optional<std::string> annotation;
    std::string name;
    std::vector<value> arguments;
    // In source order, duplicates kept; `find_property` returns the right-most one (KDL rule).
    std::vector<property> properties;
    std::vector<node> children;
    position pos;

    const property* find_property(std::string_view key) const {
        for (auto it = properties.rbegin(); it != properties.rend(); ++it)
            if (it->name == key) return &*it;
        return nullptr;
    }
};

struct document {
    std::vector<node> nodes;
};

struct parse_error {
    std::string message;  // "expected X, found Y" — one line, no position
    position pos;
    std::string excerpt;  // the offending source line (no line terminator)

    // "file:line:col: error: message\n  <excerpt>\n  <caret>" — the form users see.
    std::string format(std::string_view file_name) const;
};

struct parse_result {
    std::optional<document> doc;  // set on success
    std::optional<parse_error> error;  // set on failure
};

struct parse_options {
    std::uint32_t max_depth = 64;  // children-block nesting limit; deeper input is an error
};

// Parses a whole KDL v2 document from raw bytes (UTF-8, optional BOM). Never throws.
parse_result parse(std::string_view source, const parse_options& options = {});

// Prints `doc` in the canonical form of the KDL test suite (see kdl-tests/README.md).
std::string print(const document& doc);

}  // namespace sentinel::kdl
