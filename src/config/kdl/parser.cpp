// KDL v2 recursive-descent parser. The grammar comments quote the spec (KDL 2.0, "Full Grammar").
// Recursion happens only per children block, so `parse_options::max_depth` bounds the stack;
// comments, strings and whitespace are scanned iteratively. Every rewind re-scans at most one run
// of whitespace, which keeps the whole parse linear in the input size.
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/kdl/document.hpp"
#include "config/kdl/number.hpp"
#include "config/kdl/unicode.hpp"

namespace sentinel::kdl {
namespace {

using namespace detail;

struct cursor {
    std::size_t offset = 0;
    std::uint32_t line = 1;
    std::uint32_t column = 1;
    std::size_t line_start = 0;
};

// Built with appends: g++ 12 warns (-Wrestrict, falsely) on `"'" + std::string(...)`.
std::string concat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (const auto part : parts) out += part;
    return out;
}

std::string hex_code_point(char32_t c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (int shift = 20; shift >= 0; shift -= 4) {
        const auto d = (c >> shift) & 0xF;
        if (!out.empty() || d != 0 || shift < 16) out.push_back(digits[d]);
    }
    return "U+" + out;
}

class parser {
public:
    parser(std::string_view source, const parse_options& options)
        : src_(source), options_(options) {}

    parse_result run() {
        parse_result result;
        if (src_.size() > std::numeric_limits<std::uint32_t>::max()) {
            fail(cur_, "a document smaller than 4 GiB", "a larger input");
            result.error = std::move(error_);
            return result;
        }
        document doc;
        if (validate() && parse_nodes(doc.nodes, false)) {
            result.doc = std::move(doc);
        } else {
            result.error = std::move(error_);
        }
        return result;
    }

private:
    // ---- cursor -------------------------------------------------------------------------

    char32_t peek() const { return decode_utf8(src_, cur_.offset).cp; }

    // ASCII lookahead `k` bytes past the cursor; 0 past the end.
    char byte(std::size_t k) const {
        return cur_.offset + k < src_.size() ? src_[cur_.offset + k] : '\0';
    }

    bool at_slashdash() const { return byte(0) == '/' && byte(1) == '-'; }
    bool at_line_comment() const { return byte(0) == '/' && byte(1) == '/'; }

    // Advances one code point (CRLF as one newline), keeping line and column current.
    void bump() {
        const auto d = decode_utf8(src_, cur_.offset);
        if (d.cp == end_of_input) return;
        cur_.offset += d.length;
        if (d.cp == '\r' && cur_.offset < src_.size() && src_[cur_.offset] == '\n') ++cur_.offset;
        if (is_newline(d.cp)) {
            ++cur_.line;
            cur_.column = 1;
            cur_.line_start = cur_.offset;
        } else {
            ++cur_.column;
        }
    }

    void bump(int n) {
        for (int i = 0; i < n; ++i) bump();
    }

    static position to_position(const cursor& c) {
        return {c.line, c.column, static_cast<std::uint32_t>(c.offset)};
    }

    // ---- errors -------------------------------------------------------------------------

    std::string describe(const cursor& at) const {
        const char32_t c = decode_utf8(src_, at.offset).cp;
        if (c == end_of_input) return "end of input";
        if (c == invalid_utf8)
            return "invalid UTF-8 byte 0x" +
                   hex_code_point(static_cast<unsigned char>(src_[at.offset])).substr(4);
        if (is_newline(c)) return "newline";
        if (is_unicode_space(c)) return c == ' ' ? "' '" : "whitespace (" + hex_code_point(c) + ")";
        if (is_disallowed_literal(c)) return "disallowed code point " + hex_code_point(c);
        std::string out = "'";
        append_utf8(out, c);
        return out + "'";
    }

    std::string excerpt(const cursor& at) const {
        std::string out;
        for (std::size_t i = at.line_start; i < src_.size();) {
            const auto d = decode_utf8(src_, i);
            if (is_newline(d.cp)) break;
            // Keep the caret aligned (one code point each) without echoing control bytes.
            const bool printable = d.cp == '\t' || !(d.cp == invalid_utf8 || is_disallowed_literal(d.cp));
            if (printable) out.append(src_.substr(i, d.length));
            else append_utf8(out, 0xFFFD);
            i += d.length;
        }
        return out;
    }

    bool fail(const cursor& at, std::string_view expected, std::string_view found) {
        if (!error_) {
            error_ = parse_error{concat({"expected ", expected, ", found ", found}),
                                 to_position(at), excerpt(at)};
        }
        return false;
    }

    bool fail_here(std::string_view expected) { return fail(cur_, expected, describe(cur_)); }

    // Literal code points are checked once up front, so the grammar code below can assume valid
    // UTF-8 with no disallowed code points (strings included).
    bool validate() {
        if (src_.substr(0, 3) == "\xEF\xBB\xBF") cur_.offset = cur_.line_start = 3;
        const cursor start = cur_;
        while (cur_.offset < src_.size()) {
            const char32_t c = peek();
            if (c == invalid_utf8) return fail(cur_, "valid UTF-8", describe(cur_));
            if (is_disallowed_literal(c))
                return fail(cur_, c == 0xFEFF ? "a byte-order mark only at the start"
                                              : "a character allowed in KDL documents",
                            describe(cur_));
            bump();
        }
        cur_ = start;
        return true;
    }

    // ---- whitespace and comments --------------------------------------------------------

    // multi-line-comment := '/*' commented-block   (nesting tracked with a counter)
    bool skip_block_comment() {
        const cursor open = cur_;
        bump(2);
        std::size_t depth = 1;
        while (depth > 0) {
            const char32_t c = peek();
            if (c == end_of_input) return fail(open, "'*/' closing this comment", "end of input");
            if (c == '/' && byte(1) == '*') {
                bump(2);
                ++depth;
            } else if (c == '*' && byte(1) == '/') {
                bump(2);
                --depth;
            } else {
                bump();
            }
        }
        return true;
    }

    // single-line-comment := '//' ^newline* (newline | eof)
    void skip_line_comment() {
        bump(2);
        while (true) {
            const char32_t c = peek();
            if (c == end_of_input) return;
            bump();
            if (is_newline(c)) return;
        }
    }

    // ws*  where ws := unicode-space | multi-line-comment
    bool skip_ws(bool& any) {
        while (true) {
            const char32_t c = peek();
            if (is_unicode_space(c)) {
                bump();
            } else if (c == '/' && byte(1) == '*') {
                if (!skip_block_comment()) return false;
            } else {
                return true;
            }
            any = true;
        }
    }

    // escline := '\\' ws* (single-line-comment | newline | eof)
    bool skip_escline() {
        bump();
        bool any = false;
        if (!skip_ws(any)) return false;
        const char32_t c = peek();
        if (c == end_of_input) return true;
        if (is_newline(c)) {
            bump();
            return true;
        }
        if (at_line_comment()) {
            skip_line_comment();
            return true;
        }
        return fail_here("newline or comment after '\\' line continuation");
    }

    // node-space*  ==  (ws | escline)*
    bool skip_node_space(bool& any) {
        while (true) {
            if (!skip_ws(any)) return false;
            if (peek() != '\\') return true;
            if (!skip_escline()) return false;
            any = true;
        }
    }

    bool skip_node_space() {
        bool any = false;
        return skip_node_space(any);
    }

    // line-space*  ==  (node-space | newline | single-line-comment)*
    bool skip_line_space() {
        while (true) {
            if (!skip_node_space()) return false;
            if (is_newline(peek())) {
                bump();
            } else if (at_line_comment()) {
                skip_line_comment();
            } else {
                return true;
            }
        }
    }

    // ---- nodes --------------------------------------------------------------------------

    // nodes := (line-space* node)* line-space*   (inside braces the last node may lack a
    // terminator: final-node)
    bool parse_nodes(std::vector<node>& out, bool in_children) {
        while (true) {
            if (!skip_line_space()) return false;
            const char32_t c = peek();
            if (c == end_of_input) return true;
            if (c == '}') return in_children ? true : fail_here("a node");
            node n;
            bool commented = false;
            if (!parse_node(n, commented)) return false;
            // node-terminator := single-line-comment | newline | ';' | eof
            const char32_t t = peek();
            if (t == ';' || is_newline(t)) {
                bump();
            } else if (at_line_comment()) {
                skip_line_comment();
            } else if (!(t == end_of_input || (t == '}' && in_children))) {
                return fail_here("';' or newline after node");
            }
            if (!commented) out.push_back(std::move(n));
        }
    }

    // base-node := slashdash? type? node-space* string
    //     (node-space* (node-space | slashdash) node-prop-or-arg)*
    //     (node-space* slashdash node-children)*
    //     (node-space* node-children)?
    //     (node-space* slashdash node-children)*
    //     node-space*
    bool parse_node(node& n, bool& commented) {
        if (at_slashdash()) {
            bump(2);
            if (!skip_line_space()) return false;
            commented = true;
            if (peek() == end_of_input || peek() == '}') return fail_here("a node after '/-'");
        }
        n.pos = to_position(cur_);
        if (peek() == '(') {
            std::string annotation;
            if (!parse_type(annotation) || !skip_node_space()) return false;
            n.annotation = std::move(annotation);
        }
        const cursor name_at = cur_;
        value name;
        if (!parse_token(name, "a node name")) return false;
        if (!name.is_string()) return fail(name_at, "a node name (a string)", "a " + kind_name(name));
        n.name = std::move(name.text);

        while (true) {
            const cursor before = cur_;
            bool space = false;
            if (!skip_node_space(space)) return false;
            if (at_slashdash()) {
                const cursor dash = cur_;
                bump(2);
                if (!skip_line_space()) return false;
                if (peek() == '{') {  // a slashdashed children block ends the entries
                    cur_ = dash;
                    break;
                }
                node discarded;
                if (!parse_entry(discarded)) return false;
                continue;
            }
            if (!space) {
                cur_ = before;
                break;
            }
            const char32_t c = peek();
            if (c == end_of_input || c == '{' || c == '}' || c == ';' || is_newline(c) ||
                at_line_comment())
                break;
            if (!parse_entry(n)) return false;
        }

        bool have_children = false;
        while (true) {
            if (!skip_node_space()) return false;
            if (at_slashdash()) {
                bump(2);
                if (!skip_line_space()) return false;
                if (peek() != '{') return fail_here("a children block after '/-'");
                std::vector<node> discarded;
                if (!parse_children(discarded)) return false;
            } else if (peek() == '{') {
                if (have_children) return fail_here("';' or newline after children block");
                if (!parse_children(n.children)) return false;
                have_children = true;
            } else {
                return true;
            }
        }
    }

    // node-children := '{' nodes final-node? '}'
    bool parse_children(std::vector<node>& out) {
        if (depth_ >= options_.max_depth)
            return fail(cur_,
                        "at most " + std::to_string(options_.max_depth) +
                            " levels of nested children blocks",
                        "a deeper '{'");
        ++depth_;
        bump();
        if (!parse_nodes(out, true)) return false;
        if (peek() != '}') return fail_here("'}'");
        bump();
        --depth_;
        return true;
    }

    // node-prop-or-arg := prop | value
    // prop := string node-space* '=' node-space* value
    bool parse_entry(node& target) {
        const cursor at = cur_;
        value first;
        if (peek() == '(') {
            if (!parse_value(first)) return false;
            target.arguments.push_back(std::move(first));
            return true;
        }
        first.pos = to_position(at);
        if (!parse_token(first, "an argument or property")) return false;
        if (first.is_string()) {
            const cursor after = cur_;
            if (!skip_node_space()) return false;
            if (peek() == '=') {
                bump();
                if (!skip_node_space()) return false;
                property prop;
                prop.name = std::move(first.text);
                prop.pos = to_position(at);
                if (!parse_value(prop.val)) return false;
                target.properties.push_back(std::move(prop));
                return true;
            }
            cur_ = after;
        }
        target.arguments.push_back(std::move(first));
        return true;
    }

    // value := type? node-space* (string | number | keyword)
    bool parse_value(value& v) {
        v.pos = to_position(cur_);
        if (peek() == '(') {
            std::string annotation;
            if (!parse_type(annotation) || !skip_node_space()) return false;
            v.annotation = std::move(annotation);
        }
        return parse_token(v, "a value");
    }

    // type := '(' node-space* string node-space* ')'
    bool parse_type(std::string& out) {
        bump();
        if (!skip_node_space()) return false;
        const cursor at = cur_;
        value name;
        if (!parse_token(name, "a type name")) return false;
        if (!name.is_string()) return fail(at, "a type name (a string)", "a " + kind_name(name));
        if (!skip_node_space()) return false;
        if (peek() != ')') return fail_here("')' after type name");
        bump();
        out = std::move(name.text);
        return true;
    }

    static std::string kind_name(const value& v) {
        return v.is_number() ? "number" : "keyword";
    }

    // ---- tokens -------------------------------------------------------------------------

    // string | number | keyword; `what` names the thing expected for error messages.
    bool parse_token(value& v, std::string_view what) {
        const char32_t c = peek();
        if (c == '"') {
            v.type = value::kind::string;
            return parse_quoted(v.text);
        }
        if (c == '#') {
            if (byte(1) == '"' || byte(1) == '#') {
                v.type = value::kind::string;
                return parse_raw(v.text);
            }
            return parse_keyword(v);
        }
        if (!is_identifier_char(c)) return fail_here(what);

        const cursor start = cur_;
        while (is_identifier_char(peek())) bump();
        const std::string_view token = src_.substr(start.offset, cur_.offset - start.offset);
        if (looks_like_number(token)) {
            number_error err;
            if (parse_number(token, v, err)) return true;
            // Everything before the offending byte is ASCII, so columns advance one per byte.
            cursor at = start;
            at.offset += err.offset;
            at.column += static_cast<std::uint32_t>(err.offset);
            return fail(at, err.expected, describe(at));
        }
        if (is_reserved_keyword_ident(token))
            return fail(start, concat({"'#", token, "' or a quoted string"}),
                        concat({"bare '", token, "'"}));
        v.type = value::kind::string;
        v.text = std::string(token);
        return true;
    }

    // keyword := '#true' | '#false' | '#null' | '#inf' | '#-inf' | '#nan'
    bool parse_keyword(value& v) {
        const cursor start = cur_;
        bump();
        while (is_identifier_char(peek())) bump();
        const std::string_view word = src_.substr(start.offset, cur_.offset - start.offset);
        if (word == "#true" || word == "#false") {
            v.type = value::kind::boolean;
            v.boolean = word == "#true";
        } else if (word == "#null") {
            v.type = value::kind::null;
        } else if (word == "#inf" || word == "#-inf" || word == "#nan") {
            v.type = value::kind::decimal;
            v.text = std::string(word);
            v.decimal = word == "#nan"   ? std::numeric_limits<double>::quiet_NaN()
                        : word == "#inf" ? std::numeric_limits<double>::infinity()
                                         : -std::numeric_limits<double>::infinity();
        } else {
            return fail(start, "#true, #false, #null, #inf, #-inf or #nan", concat({"'", word, "'"}));
        }
        return true;
    }

    // One escape after `\`. ws-escapes are dropped; others are decoded into `out`, or copied
    // verbatim (already validated) when `decode` is false so multi-line dedent runs first.
    bool scan_escape(std::string& out, bool decode) {
        const cursor start = cur_;
        bump();
        const char32_t c = peek();
        if (is_unicode_space(c) || is_newline(c)) {
            while (is_unicode_space(peek()) || is_newline(peek())) bump();
            return true;
        }
        char32_t decoded = 0;
        switch (c) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case 'b': decoded = 0x08; break;
        case 'f': decoded = 0x0C; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 's': decoded = ' '; break;
        case 'u': {
            bump();
            if (peek() != '{') return fail_here("'{' after '\\u'");
            bump();
            int digits = 0;
            while (digits < 6 && is_hex_digit(peek())) {
                decoded = decoded * 16 + static_cast<char32_t>(hex_value(peek()));
                bump();
                ++digits;
            }
            if (digits == 0) return fail_here("a hexadecimal digit in '\\u{...}'");
            if (peek() != '}')
                return fail_here(digits == 6 ? "'}' after at most 6 hexadecimal digits"
                                             : "a hexadecimal digit or '}'");
            if (decoded > 0x10FFFF || (decoded >= 0xD800 && decoded <= 0xDFFF))
                return fail(start, "a Unicode scalar value in '\\u{...}'",
                            hex_code_point(decoded));
            break;
        }
        default:
            return fail_here("an escape (\\\" \\\\ \\b \\f \\n \\r \\t \\s \\u{...} or whitespace)");
        }
        bump();
        if (decode) {
            append_utf8(out, decoded);
        } else {
            out.append(src_.substr(start.offset, cur_.offset - start.offset));
        }
        return true;
    }

    // quoted-string := '"' single-line-string-body '"' | '"""' newline ... '"""'
    bool parse_quoted(std::string& out) {
        if (byte(1) == '"' && byte(2) == '"') return parse_multi_line(out, -1);
        bump();
        while (true) {
            const char32_t c = peek();
            if (c == end_of_input) return fail_here("'\"' closing the string");
            if (is_newline(c)) return fail_here("'\"' closing the string (use \"\"\" for multi-line)");
            if (c == '"') {
                bump();
                return true;
            }
            if (c == '\\') {
                if (!scan_escape(out, true)) return false;
                continue;
            }
            append_utf8(out, c);
            bump();
        }
    }

    // raw-string := '#'+ '"' ... '"' '#'+   (same hash count on both sides)
    bool parse_raw(std::string& out) {
        int hashes = 0;
        while (byte(0) == '#') {
            bump();
            ++hashes;
        }
        if (byte(0) != '"') return fail_here("'\"' after '#' to start a raw string");
        if (byte(1) == '"' && byte(2) == '"') return parse_multi_line(out, hashes);
        bump();
        const std::string closing = "'\"" + std::string(static_cast<std::size_t>(hashes), '#') + "'";
        while (true) {
            const char32_t c = peek();
            if (c == end_of_input || is_newline(c))
                return fail_here(closing + " closing the raw string");
            if (c == '"' && closes_raw(1, hashes)) {
                bump(1 + hashes);
                return true;
            }
            append_utf8(out, c);
            bump();
        }
    }

    bool closes_raw(std::size_t from, int hashes) const {
        for (int i = 0; i < hashes; ++i)
            if (byte(from + static_cast<std::size_t>(i)) != '#') return false;
        return true;
    }

    // Multi-line strings: `hashes` < 0 for the escaped form. The body is collected with
    // ws-escapes removed and newlines normalised to LF, then dedented by the closing line's
    // whitespace, and only then are the remaining escapes decoded (spec: "Multi-line Strings").
    bool parse_multi_line(std::string& out, int hashes) {
        const bool escaped = hashes < 0;
        bump(3);
        if (!is_newline(peek())) return fail_here("newline after opening '\"\"\"'");
        bump();
        std::string body;
        std::vector<cursor> line_starts{cur_};
        while (true) {
            const char32_t c = peek();
            if (c == end_of_input)
                return fail_here(escaped ? "'\"\"\"' closing the multi-line string"
                                         : "'\"\"\"#' closing the raw multi-line string");
            if (c == '"' && byte(1) == '"' && byte(2) == '"' && (escaped || closes_raw(3, hashes))) {
                bump(3 + (escaped ? 0 : hashes));
                break;
            }
            if (escaped && c == '\\') {
                if (!scan_escape(body, false)) return false;
                continue;
            }
            bump();
            if (is_newline(c)) {
                body.push_back('\n');
                line_starts.push_back(cur_);
            } else {
                append_utf8(body, c);
            }
        }
        return dedent(body, line_starts, escaped, out);
    }

    static bool all_space(std::string_view s) {
        for (std::size_t i = 0; i < s.size();) {
            const auto d = decode_utf8(s, i);
            if (!is_unicode_space(d.cp)) return false;
            i += d.length;
        }
        return true;
    }

    bool dedent(std::string_view body, const std::vector<cursor>& line_starts, bool escaped,
                std::string& out) {
        std::vector<std::string_view> lines;
        for (std::size_t start = 0;;) {
            const auto nl = body.find('\n', start);
            lines.push_back(body.substr(start, nl == std::string_view::npos ? nl : nl - start));
            if (nl == std::string_view::npos) break;
            start = nl + 1;
        }
        const std::string_view prefix = lines.back();
        if (!all_space(prefix))
            return fail(line_starts.back(), "only whitespace before the closing '\"\"\"'",
                        "other text");
        std::string text;
        for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
            if (i > 0) text.push_back('\n');
            const std::string_view line = lines[i];
            if (all_space(line)) continue;  // whitespace-only lines become empty
            if (line.substr(0, prefix.size()) != prefix)
                return fail(line_starts[i], "indentation matching the closing '\"\"\"' line",
                            "a line with different leading whitespace");
            text.append(line.substr(prefix.size()));
        }
        if (!escaped) {
            out = std::move(text);
            return true;
        }
        decode_escapes(text, out);
        return true;
    }

    // Decodes escapes that `scan_escape` already validated.
    static void decode_escapes(std::string_view s, std::string& out) {
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != '\\') {
                out.push_back(s[i]);
                continue;
            }
            const char e = s[++i];
            switch (e) {
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 's': out.push_back(' '); break;
            case 'u': {
                char32_t cp = 0;
                for (i += 2; s[i] != '}'; ++i)
                    cp = cp * 16 + static_cast<char32_t>(hex_value(static_cast<unsigned char>(s[i])));
                append_utf8(out, cp);
                break;
            }
            default: out.push_back(e); break;  // '"' and '\\'
            }
        }
    }

    std::string_view src_;
    parse_options options_;
    cursor cur_;
    std::uint32_t depth_ = 0;
    std::optional<parse_error> error_;
};

}  // namespace

parse_result parse(std::string_view source, const parse_options& options) {
    return parser(source, options).run();
}

}  // namespace sentinel::kdl
