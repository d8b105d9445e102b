// Log lines are JSON built by hand: whatever a client sends must stay one valid JSON string.
#include <gtest/gtest.h>

#include <string>

#include "observability/access_log.hpp"

namespace sentinel::observability {
namespace {

std::string escaped(std::string_view s) {
    std::string out = "prefix:";
    append_json_escaped(out, s);
    return out;
}

TEST(JsonEscape, PlainTextIsCopied) {
    EXPECT_EQ(escaped(""), "prefix:");
    EXPECT_EQ(escaped("/api/v1/users?id=42&x=y"), "prefix:/api/v1/users?id=42&x=y");
}

TEST(JsonEscape, QuotesBackslashesAndControlsAreEscaped) {
    EXPECT_EQ(escaped("a\"b\\c"), "prefix:a\\\"b\\\\c");
    EXPECT_EQ(escaped(std::string_view("\r\n\t\0x", 5)), "prefix:\\u000d\\u000a\\u0009\\u0000x");
    EXPECT_EQ(escaped("\x7f"), "prefix:\\u007f");
}

TEST(JsonEscape, NonAsciiBytesAreEscapedBytewise) {
    // Never passes bytes through: invalid UTF-8 from a hostile header cannot break the line.
    EXPECT_EQ(escaped("caf\xc3\xa9"), "prefix:caf\\u00c3\\u00a9");
    EXPECT_EQ(escaped("\xff\"end"), "prefix:\\u00ff\\\"end");
}

TEST(JsonEscape, RunsAroundEscapesAreKept) {
    EXPECT_EQ(escaped("\"start"), "prefix:\\\"start");
    EXPECT_EQ(escaped("end\""), "prefix:end\\\"");
    EXPECT_EQ(escaped("a\nb\nc"), "prefix:a\\u000ab\\u000ac");
}

}  // namespace
}  // namespace sentinel::observability
