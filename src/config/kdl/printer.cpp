// Canonical printer (kdl-tests v2 README, "Translation Rules"): one node per line, 4-space
// indent, arguments in order, properties sorted with the right-most duplicate winning, strings
// bare when they are valid identifiers and quoted+escaped otherwise, numbers in canonical text.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "config/kdl/document.hpp"
#include "config/kdl/number.hpp"
#include "config/kdl/unicode.hpp"

namespace sentinel::kdl {
namespace {

using namespace detail;

void append_quoted(std::string& out, std::string_view s) {
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        const auto d = decode_utf8(s, i);
        i += d.length;
        switch (d.cp) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        default: break;
        }
        // Anything that may not appear literally in a single-line string must be escaped so the
        // output parses again; invalid bytes (only possible in hand-built documents) become U+FFFD.
        const char32_t cp = d.cp == invalid_utf8 ? 0xFFFD : d.cp;
        if (is_newline(cp) || is_disallowed_literal(cp)) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "\\u{%x}", static_cast<unsigned>(cp));
            out += buf;
        } else {
            append_utf8(out, cp);
        }
    }
    out.push_back('"');
}

void append_string(std::string& out, std::string_view s) {
    if (is_bare_identifier(s)) {
        out += s;
    } else {
        append_quoted(out, s);
    }
}

void append_value(std::string& out, const value& v) {
    if (v.annotation) {
        out.push_back('(');
        append_string(out, *v.annotation);
        out.push_back(')');
    }
    switch (v.type) {
    case value::kind::string: append_string(out, v.text); break;
    case value::kind::boolean: out += v.boolean ? "#true" : "#false"; break;
    case value::kind::null: out += "#null"; break;
    case value::kind::integer:
        // Parsed values always carry text; values built in code may only set `integer`.
        out += !v.text.empty() ? v.text : std::to_string(v.integer.value_or(0));
        break;
    case value::kind::decimal: out += !v.text.empty() ? v.text : format_decimal(v.decimal); break;
    }
}

// Iterative over siblings, recursive over children: depth is bounded by the parser's max_depth
// for parsed documents.
void append_node(std::string& out, const node& n, std::size_t depth) {
    out.append(depth * 4, ' ');
    if (n.annotation) {
        out.push_back('(');
        append_string(out, *n.annotation);
        out.push_back(')');
    }
    append_string(out, n.name);
    for (const auto& arg : n.arguments) {
        out.push_back(' ');
        append_value(out, arg);
    }
    // Stable sort by key keeps source order among duplicates, so the last of each run wins.
    std::vector<const property*> props;
    props.reserve(n.properties.size());
    for (const auto& p : n.properties) props.push_back(&p);
    std::stable_sort(props.begin(), props.end(),
                     [](const property* a, const property* b) { return a->name < b->name; });
    for (std::size_t i = 0; i < props.size(); ++i) {
        if (i + 1 < props.size() && props[i + 1]->name == props[i]->name) continue;
        out.push_back(' ');
        append_string(out, props[i]->name);
        out.push_back('=');
        append_value(out, props[i]->val);
    }
    if (n.children.empty()) {
        out.push_back('\n');
        return;
    }
    out += " {\n";
    for (const auto& child : n.children) append_node(out, child, depth + 1);
    out.append(depth * 4, ' ');
    out += "}\n";
}

}  // namespace

std::string print(const document& doc) {
    if (doc.nodes.empty()) return "\n";
    std::string out;
    for (const auto& n : doc.nodes) append_node(out, n, 0);
    return out;
}

std::string parse_error::format(std::string_view file_name) const {
    std::string out(file_name);
    out += ':' + std::to_string(pos.line) + ':' + std::to_string(pos.column) + ": error: " + message;
    out += "\n  ";
    out += excerpt;
    out += "\n  ";
    // Reuse the excerpt's tabs so the caret lines up under the offending code point.
    std::uint32_t col = 1;
    for (std::size_t i = 0; i < excerpt.size() && col < pos.column; ++col) {
        const auto d = decode_utf8(excerpt, i);
        out.push_back(d.cp == '\t' ? '\t' : ' ');
        i += d.length;
    }
    for (; col < pos.column; ++col) out.push_back(' ');
    out.push_back('^');
    return out;
}

}  // namespace sentinel::kdl
