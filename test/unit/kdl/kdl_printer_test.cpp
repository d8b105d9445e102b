// Printer behaviour for documents built in code (the config loader and tools print these).
#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "config/kdl/document.hpp"

namespace sentinel::kdl {
namespace {

value string_value(std::string s) {
    value v;
    v.type = value::kind::string;
    v.text = std::move(s);
    return v;
}

TEST(kdl_printer, empty_document_is_one_newline) { EXPECT_EQ(print(document{}), "\n"); }

TEST(kdl_printer, quotes_only_when_needed) {
    node n;
    n.name = "my node";
    for (const char* s : {"plain", "", "true", "-inf", "1abc", "-1", ".5", "+.", "a=b", "#x",
                          "tab\there", "nl\nx", "bidi\xE2\x80\x8E", "del\x7F", "ls\xE2\x80\xA8"})
        n.arguments.push_back(string_value(s));
    document doc;
    doc.nodes.push_back(n);
    EXPECT_EQ(print(doc),
              "\"my node\" plain \"\" \"true\" \"-inf\" \"1abc\" \"-1\" \".5\" +. \"a=b\" \"#x\" "
              "\"tab\\there\" \"nl\\nx\" \"bidi\\u{200e}\" \"del\\u{7f}\" \"ls\\u{2028}\"\n");
    const auto again = parse(print(doc));
    ASSERT_TRUE(again.doc.has_value());
    EXPECT_EQ(again.doc->nodes[0].arguments[12].text, "bidi\xE2\x80\x8E");
}

TEST(kdl_printer, numbers_without_text_use_canonical_forms) {
    node n;
    n.name = "n";
    value i;
    i.type = value::kind::integer;
    i.integer = -42;
    n.arguments.push_back(i);
    for (double d : {1.5, 100.0, 1e10, 1.25e-7, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
        value v;
        v.type = value::kind::decimal;
        v.decimal = d;
        n.arguments.push_back(v);
    }
    document doc;
    doc.nodes.push_back(n);
    EXPECT_EQ(print(doc), "n -42 1.5 100.0 1.0E+10 1.25E-7 #inf #nan\n");
}

TEST(kdl_printer, sorts_properties_and_keeps_the_last_duplicate) {
    const auto parsed = parse("n z=1 a=2 m=3 a=4 c=(t)\"x y\" {\n  (k)child; other\n}\n");
    ASSERT_TRUE(parsed.doc.has_value());
    EXPECT_EQ(print(*parsed.doc),
              "n a=4 c=(t)\"x y\" m=3 z=1 {\n    (k)child\n    other\n}\n");
}

}  // namespace
}  // namespace sentinel::kdl
