// Close frames: encoding (empty body, code + reason, reason cut at a character boundary) and
// the §7.4 rules for received close payloads.
#include <gtest/gtest.h>

#include <string>

#include "http/websocket/frame.hpp"

namespace sentinel::websocket {
namespace {

std::string bytes(std::initializer_list<int> list) {
    std::string s;
    for (int b : list) s += static_cast<char>(b);
    return s;
}

// Parses `wire` as one unmasked/masked close frame and returns its unmasked payload.
std::string close_payload(const std::string& wire, bool masked) {
    frame_header h;
    error err = error::none;
    EXPECT_EQ(parse_header(wire, masked, UINT64_MAX, h, err), parse_status::ok);
    EXPECT_EQ(h.opcode, op::close);
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.header_size + h.payload_length, wire.size());
    std::string payload = wire.substr(h.header_size);
    if (h.masked) unmask(payload.data(), payload.size(), h.mask);
    return payload;
}

TEST(WebsocketClose, AppendWithCodeAndReason) {
    std::string out;
    append_close(out, 1000, "bye", nullptr);
    EXPECT_EQ(out, bytes({0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'}));

    const std::uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string masked;
    append_close(masked, 1001, "", mask);
    EXPECT_EQ(masked, bytes({0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x03 ^ 0x37, 0xE9 ^ 0xfa}));
    std::uint16_t code = 0;
    std::string_view reason = "x";
    const auto payload = close_payload(masked, true);
    ASSERT_TRUE(parse_close_payload(payload, code, reason));
    EXPECT_EQ(code, 1001);
    EXPECT_TRUE(reason.empty());
}

TEST(WebsocketClose, CodeZeroSendsAnEmptyBody) {
    std::string out;
    append_close(out, 0, "ignored", nullptr);
    EXPECT_EQ(out, bytes({0x88, 0x00}));
    std::uint16_t code = 0;
    std::string_view reason;
    ASSERT_TRUE(parse_close_payload("", code, reason));
    EXPECT_EQ(code, 1005);  // "no status received"
    EXPECT_TRUE(reason.empty());
}

TEST(WebsocketClose, LongReasonIsCutAtACharacterBoundary) {
    // 122 ASCII bytes then "é" (2 bytes) would end at byte 124 of 123 allowed: the whole
    // character goes, not half of it.
    std::string reason(122, 'a');
    reason += "\xC3\xA9";
    reason += "tail";
    std::string out;
    append_close(out, 1011, reason, nullptr);
    auto payload = close_payload(out, false);
    EXPECT_EQ(payload.size(), 2u + 122u);
    std::uint16_t code = 0;
    std::string_view got;
    ASSERT_TRUE(parse_close_payload(payload, code, got));
    EXPECT_EQ(code, 1011);
    EXPECT_EQ(got, std::string(122, 'a'));

    // A 4-byte character straddling the limit, and a reason that fits exactly.
    std::string emoji(121, 'b');
    emoji += "\xF0\x9F\x98\x80";
    std::string out2;
    append_close(out2, 1000, emoji, nullptr);
    EXPECT_EQ(close_payload(out2, false).size(), 2u + 121u);
    std::string exact(123, 'c');
    std::string out3;
    append_close(out3, 1000, exact, nullptr);
    EXPECT_EQ(close_payload(out3, false), bytes({0x03, 0xE8}) + exact);
    std::string out4;
    append_close(out4, 1000, std::string(500, 'd'), nullptr);
    EXPECT_EQ(close_payload(out4, false).size(), max_control_payload);
}

TEST(WebsocketClose, CodeRanges) {
    struct row {
        int from, to;
        bool valid;
    };
    const row rows[] = {
        {0, 999, false},       {1000, 1003, true},    {1004, 1006, false},
        {1007, 1014, true},    {1015, 2999, false},   {3000, 4999, true},
        {5000, 65535, false},
    };
    for (const auto& r : rows) {
        for (int code = r.from; code <= r.to; ++code) {
            ASSERT_EQ(is_valid_close_code(static_cast<std::uint16_t>(code)), r.valid) << code;
            const std::string payload = bytes({code >> 8, code & 0xFF}) + "why";
            std::uint16_t got = 0;
            std::string_view reason;
            ASSERT_EQ(parse_close_payload(payload, got, reason), r.valid) << code;
            if (r.valid) {
                EXPECT_EQ(got, code);
                EXPECT_EQ(reason, "why");
                EXPECT_EQ(reason.data(), payload.data() + 2);  // a view, not a copy
            }
        }
    }
}

TEST(WebsocketClose, RejectsOneByteBodiesAndBadReasons) {
    std::uint16_t code = 0;
    std::string_view reason;
    EXPECT_FALSE(parse_close_payload(bytes({0x03}), code, reason));
    EXPECT_FALSE(parse_close_payload(bytes({0x03, 0xE8, 0xFF}), code, reason));
    EXPECT_FALSE(parse_close_payload(bytes({0x03, 0xE8, 0xC3}), code, reason));  // cut character
    EXPECT_FALSE(parse_close_payload(bytes({0x03, 0xE8, 0xED, 0xA0, 0x80}), code, reason));
    const std::string good = bytes({0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9});
    EXPECT_TRUE(parse_close_payload(good, code, reason));
    EXPECT_EQ(reason, "\xCE\xBA\xE1\xBD\xB9");
}

}  // namespace
}  // namespace sentinel::websocket
