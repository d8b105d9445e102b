// Parser behaviour beyond the conformance suite: the data model, positions, error messages
// and hostile-input limits.
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "config/kdl/document.hpp"

namespace sentinel::kdl {
namespace {

document parse_ok(std::string_view text) {
    auto result = parse(text);
    EXPECT_TRUE(result.doc.has_value()) << (result.error ? result.error->format("t.kdl") : "");
    return result.doc ? std::move(*result.doc) : document{};
}

parse_error parse_fail(std::string_view text, const parse_options& options = {}) {
    auto result = parse(text, options);
    EXPECT_FALSE(result.doc.has_value()) << "unexpectedly parsed: " << text;
    return result.error.value_or(parse_error{});
}

TEST(kdl_parser, builds_the_data_model) {
    const auto doc = parse_ok("(svc)server \"a\" 10 port=8080 port=8081 {\n  child #true\n}\n");
    ASSERT_EQ(doc.nodes.size(), 1u);
    const node& n = doc.nodes[0];
    EXPECT_EQ(n.name, "server");
    EXPECT_EQ(n.annotation, "svc");
    ASSERT_EQ(n.arguments.size(), 2u);
    EXPECT_TRUE(n.arguments[0].is_string());
    EXPECT_EQ(n.arguments[0].text, "a");
    EXPECT_EQ(n.arguments[1].type, value::kind::integer);
    EXPECT_EQ(n.arguments[1].integer, 10);
    ASSERT_EQ(n.properties.size(), 2u);  // duplicates kept in source order
    ASSERT_NE(n.find_property("port"), nullptr);
    EXPECT_EQ(n.find_property("port")->val.integer, 8081);  // right-most wins
    EXPECT_EQ(n.find_property("missing"), nullptr);
    ASSERT_EQ(n.children.size(), 1u);
    EXPECT_EQ(n.children[0].arguments[0].type, value::kind::boolean);
    EXPECT_TRUE(n.children[0].arguments[0].boolean);
}

TEST(kdl_parser, records_positions) {
    const auto doc = parse_ok("a\n  b x=1 \"é\" 2\n");
    ASSERT_EQ(doc.nodes.size(), 2u);
    const node& b = doc.nodes[1];
    EXPECT_EQ(b.pos.line, 2u);
    EXPECT_EQ(b.pos.column, 3u);
    EXPECT_EQ(b.pos.offset, 4u);
    EXPECT_EQ(b.properties[0].pos.column, 5u);
    EXPECT_EQ(b.properties[0].val.pos.column, 7u);
    EXPECT_EQ(b.arguments[1].pos.column, 13u);  // columns count code points, not bytes
    EXPECT_EQ(b.arguments[1].pos.offset, 15u);
}

TEST(kdl_parser, numbers_keep_canonical_text) {
    const auto doc = parse_ok(
        "n 0xff -0o17 0b1_01 1_000 9223372036854775807 -9223372036854775808 "
        "9223372036854775808 0xabcdef1234567890 1.5e3 -2.0 #inf #-inf #nan 1e-400\n");
    const auto& a = doc.nodes[0].arguments;
    ASSERT_EQ(a.size(), 14u);
    EXPECT_EQ(a[0].integer, 255);
    EXPECT_EQ(a[1].integer, -15);
    EXPECT_EQ(a[1].text, "-15");
    EXPECT_EQ(a[2].integer, 5);
    EXPECT_EQ(a[3].text, "1000");
    EXPECT_EQ(a[4].integer, std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(a[5].integer, std::numeric_limits<std::int64_t>::min());
    EXPECT_FALSE(a[6].integer.has_value());
    EXPECT_EQ(a[6].text, "9223372036854775808");
    EXPECT_EQ(a[7].text, "12379813812177893520");
    EXPECT_EQ(a[8].type, value::kind::decimal);
    EXPECT_EQ(a[8].text, "1.5E+3");
    EXPECT_DOUBLE_EQ(a[8].decimal, 1500.0);
    EXPECT_DOUBLE_EQ(a[9].decimal, -2.0);
    EXPECT_TRUE(std::isinf(a[10].decimal) && a[10].decimal > 0);
    EXPECT_TRUE(std::isinf(a[11].decimal) && a[11].decimal < 0);
    EXPECT_TRUE(std::isnan(a[12].decimal));
    EXPECT_EQ(a[13].text, "1E-400");
    EXPECT_EQ(a[13].decimal, 0.0);
}

TEST(kdl_parser, strings) {
    const auto doc = parse_ok(
        "n \"a\\tb\\u{1F600}\" #\"raw\\n\"# \"\"\"\n    one\n      two\n    \"\"\" \"x\\   y\"\n");
    const auto& a = doc.nodes[0].arguments;
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a[0].text, "a\tb\xF0\x9F\x98\x80");
    EXPECT_EQ(a[1].text, "raw\\n");
    EXPECT_EQ(a[2].text, "one\n  two");
    EXPECT_EQ(a[3].text, "xy");
}

struct error_case {
    const char* input;
    const char* message;
    std::uint32_t line;
    std::uint32_t column;
};

TEST(kdl_parser, error_messages_and_positions) {
    const error_case cases[] = {
        {"node \"abc", "expected '\"' closing the string, found end of input", 1, 10},
        {"a {\n  b\n", "expected '}', found end of input", 3, 1},
        {"node 0x1g", "expected hexadecimal digit or '_', found 'g'", 1, 9},
        {"node 1.", "expected digit after '.', found end of input", 1, 8},
        {"node true", "expected '#true' or a quoted string, found bare 'true'", 1, 6},
        {"node \"\\/\"", "expected an escape (\\\" \\\\ \\b \\f \\n \\r \\t \\s \\u{...} or whitespace), found '/'", 1, 8},
        {"node a\n}", "expected a node, found '}'", 2, 1},
        {"a\n  node\xE2\x80\x8E x", "expected a character allowed in KDL documents, found disallowed code point U+200E", 2, 7},
        {"node #yes", "expected #true, #false, #null, #inf, #-inf or #nan, found '#yes'", 1, 6},
        {"node \"a\"1", "expected ';' or newline after node, found '1'", 1, 9},
        {"node (t)", "expected a value, found end of input", 1, 9},
        {"10 a", "expected a node name (a string), found a number", 1, 1},
        {"node /* open", "expected '*/' closing this comment, found end of input", 1, 6},
        {"node \\ x", "expected newline or comment after '\\' line continuation, found 'x'", 1, 8},
        {"node \xFF", "expected valid UTF-8, found invalid UTF-8 byte 0xFF", 1, 6},
    };
    for (const auto& c : cases) {
        const parse_error e = parse_fail(c.input);
        EXPECT_EQ(e.message, c.message) << c.input;
        EXPECT_EQ(e.pos.line, c.line) << c.input;
        EXPECT_EQ(e.pos.column, c.column) << c.input;
    }
}

TEST(kdl_parser, format_points_at_the_column) {
    const parse_error e = parse_fail("a\n\tnode 0b102\n");
    EXPECT_EQ(e.format("conf.kdl"),
              "conf.kdl:2:11: error: expected binary digit or '_', found '2'\n"
              "  \tnode 0b102\n"
              "  \t         ^");
    EXPECT_EQ(e.excerpt, "\tnode 0b102");
}

TEST(kdl_parser, multi_line_dedent_error_points_at_the_line) {
    const parse_error e = parse_fail("n \"\"\"\n    ok\n  bad\n    \"\"\"\n");
    EXPECT_EQ(e.pos.line, 3u);
    EXPECT_EQ(e.pos.column, 1u);
    EXPECT_EQ(e.excerpt, "  bad");
}

TEST(kdl_parser, nesting_is_bounded) {
    parse_options options;
    options.max_depth = 3;
    EXPECT_TRUE(parse("a { b { c { d } } }", options).doc.has_value());
    const parse_error e = parse_fail("a { b { c { d { e } } } }", options);
    EXPECT_EQ(e.message, "expected at most 3 levels of nested children blocks, found a deeper '{'");
    EXPECT_EQ(e.pos.column, 15u);
    // Slashdashed blocks count too: they are parsed before being dropped.
    EXPECT_FALSE(parse("a /-{ b { c { d { e } } } }", options).doc.has_value());

    // Far deeper than the default limit: an error, not a stack overflow.
    std::string deep;
    for (int i = 0; i < 100000; ++i) deep += "a{";
    EXPECT_FALSE(parse(deep).doc.has_value());
}

TEST(kdl_parser, hostile_inputs_stay_linear) {
    // Each of these would be quadratic with a naive rewind or position lookup.
    const auto start = std::chrono::steady_clock::now();
    std::string comments;
    for (int i = 0; i < 200000; ++i) comments += "/*";
    EXPECT_FALSE(parse(comments).doc.has_value());
    std::string args = "n";
    for (int i = 0; i < 200000; ++i) args += " /* c */ x=1 \\\n";
    EXPECT_TRUE(parse(args).doc.has_value());
    std::string raw = "n #########\"";
    for (int i = 0; i < 100000; ++i) raw += "\"########";
    raw += "\"#########";
    EXPECT_TRUE(parse(raw).doc.has_value());
    EXPECT_FALSE(parse("n 0x" + std::string(5000, 'f')).doc.has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

}  // namespace
}  // namespace sentinel::kdl
