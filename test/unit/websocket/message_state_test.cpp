// The per-direction message tracker: fragmentation rules (§5.4), interleaved control frames,
// UTF-8 across fragments and pieces, Close handling, skipping, and caller misuse.
#include <gtest/gtest.h>

#include <string>

#include "http/websocket/message_state.hpp"

namespace sentinel::websocket {
namespace {

frame_header header(bool fin, std::uint8_t opcode, std::uint64_t length, bool rsv1 = false) {
    frame_header h;
    h.fin = fin;
    h.rsv1 = rsv1;
    h.opcode = opcode;
    h.payload_length = length;
    return h;
}

// One whole frame: header, then the payload in one piece.
error frame(message_state& s, bool fin, std::uint8_t opcode, std::string_view payload,
            bool rsv1 = false) {
    const error e = s.on_frame(header(fin, opcode, payload.size(), rsv1));
    if (e != error::none) return e;
    return s.on_payload(payload);
}

TEST(WebsocketMessageState, RfcFragmentedHello) {
    message_state s;
    EXPECT_FALSE(s.in_message());
    ASSERT_EQ(frame(s, false, op::text, "Hel"), error::none);
    EXPECT_TRUE(s.in_message());
    EXPECT_EQ(s.message_opcode(), op::text);
    ASSERT_EQ(frame(s, true, op::continuation, "lo"), error::none);
    EXPECT_FALSE(s.in_message());
    EXPECT_EQ(s.message_opcode(), op::continuation);
    EXPECT_EQ(s.message_size(), 5u);
}

TEST(WebsocketMessageState, UnfragmentedMessages) {
    message_state s;
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(frame(s, true, op::text, "hi"), error::none);
        ASSERT_EQ(frame(s, true, op::binary, "\xFF\x00"), error::none);
        ASSERT_EQ(frame(s, true, op::text, ""), error::none);  // ends in on_frame
        EXPECT_FALSE(s.in_message());
        EXPECT_FALSE(s.in_frame());
    }
}

TEST(WebsocketMessageState, ContinuationWithoutAMessage) {
    message_state s;
    EXPECT_EQ(frame(s, true, op::continuation, "x"), error::unexpected_continuation);
    message_state t;
    ASSERT_EQ(frame(t, true, op::binary, "x"), error::none);
    EXPECT_EQ(frame(t, false, op::continuation, "y"), error::unexpected_continuation);
}

TEST(WebsocketMessageState, NewDataFrameWhileAMessageIsOpen) {
    for (std::uint8_t opcode : {op::text, op::binary}) {
        message_state s;
        ASSERT_EQ(frame(s, false, op::binary, "a"), error::none);
        ASSERT_EQ(frame(s, false, op::continuation, "b"), error::none);
        EXPECT_EQ(frame(s, true, opcode, "c"), error::message_not_finished);
    }
}

TEST(WebsocketMessageState, ControlFramesInterleave) {
    message_state s;
    ASSERT_EQ(frame(s, false, op::text, "He"), error::none);
    ASSERT_EQ(frame(s, true, op::ping, "p"), error::none);
    ASSERT_EQ(frame(s, false, op::continuation, "l"), error::none);
    ASSERT_EQ(frame(s, true, op::pong, ""), error::none);
    EXPECT_TRUE(s.in_message());
    EXPECT_EQ(s.message_opcode(), op::text);
    ASSERT_EQ(frame(s, true, op::continuation, "lo"), error::none);
    EXPECT_FALSE(s.in_message());
    EXPECT_EQ(s.message_size(), 5u);  // control payloads are not message bytes
}

TEST(WebsocketMessageState, NothingAfterClose) {
    message_state s;
    ASSERT_EQ(frame(s, true, op::close, "\x03\xE8"), error::none);
    EXPECT_TRUE(s.closed());
    EXPECT_EQ(s.close_code(), 1000);
    EXPECT_EQ(frame(s, true, op::ping, ""), error::frame_after_close);

    // A Close may interrupt a fragmented message; the message then never finishes.
    message_state t;
    ASSERT_EQ(frame(t, false, op::text, "a"), error::none);
    ASSERT_EQ(frame(t, true, op::close, ""), error::none);
    EXPECT_EQ(t.close_code(), 1005);
    EXPECT_EQ(frame(t, true, op::continuation, "b"), error::frame_after_close);
}

TEST(WebsocketMessageState, CloseBodyIsValidated) {
    message_state good;
    ASSERT_EQ(frame(good, true, op::close, "\x0F\xA0going away"), error::none);  // 4000
    EXPECT_EQ(good.close_code(), 4000);
    EXPECT_EQ(good.close_reason(), "going away");

    for (std::string_view body : {std::string_view("\x03", 1), std::string_view("\x03\xED", 2),
                                  std::string_view("\x03\xE8\xFF", 3)}) {
        message_state s;
        EXPECT_EQ(frame(s, true, op::close, body), error::bad_close_payload)
            << testing::PrintToString(std::string(body));
        EXPECT_EQ(s.close_code(), 0);
    }

    // Fed byte by byte, the body is gathered before it is checked.
    message_state pieces;
    const std::string body = "\x03\xE9\xCE\xBA";
    ASSERT_EQ(pieces.on_frame(header(true, op::close, body.size())), error::none);
    for (char c : body) ASSERT_EQ(pieces.on_payload(std::string_view(&c, 1)), error::none);
    EXPECT_EQ(pieces.close_code(), 1001);
    EXPECT_EQ(pieces.close_reason(), "\xCE\xBA");
}

TEST(WebsocketMessageState, Utf8AcrossFragmentsAndPieces) {
    // "κ" split between two frames, "ό" split between pieces of one frame.
    message_state s;
    ASSERT_EQ(frame(s, false, op::text, "a\xCE"), error::none);
    ASSERT_EQ(s.on_frame(header(true, op::continuation, 4)), error::none);
    ASSERT_EQ(s.on_payload("\xBA\xE1"), error::none);
    ASSERT_EQ(s.on_payload("\xBD\xB9"), error::none);
    EXPECT_FALSE(s.in_message());
}

TEST(WebsocketMessageState, InvalidUtf8FailsFast) {
    message_state s;
    ASSERT_EQ(frame(s, false, op::text, "ok"), error::none);
    ASSERT_EQ(s.on_frame(header(false, op::continuation, 10)), error::none);
    EXPECT_EQ(s.on_payload("\xF4\x90"), error::invalid_utf8);  // mid-frame, mid-message
    EXPECT_EQ(s.on_payload("whatever"), error::invalid_utf8);  // sticky
    EXPECT_EQ(s.on_frame(header(true, op::ping, 0)), error::invalid_utf8);
}

TEST(WebsocketMessageState, TextEndingInsideACharacter) {
    message_state s;
    ASSERT_EQ(frame(s, false, op::text, "\xE1\xBD"), error::none);  // fine while open
    EXPECT_EQ(frame(s, true, op::continuation, ""), error::invalid_utf8);
    message_state t;
    EXPECT_EQ(frame(t, true, op::text, "abc\xC3"), error::invalid_utf8);
}

TEST(WebsocketMessageState, WhatIsNotUtf8Checked) {
    message_state off(false);
    EXPECT_EQ(frame(off, true, op::text, "\xFF"), error::none);
    message_state s;
    EXPECT_EQ(frame(s, true, op::binary, "\xFF"), error::none);
    EXPECT_EQ(frame(s, true, op::ping, "\xFF"), error::none);
    EXPECT_EQ(frame(s, true, op::pong, "\xFF"), error::none);
    // Compressed text is deflate data, not UTF-8.
    EXPECT_EQ(frame(s, false, op::text, "\xFF", true), error::none);
    EXPECT_EQ(frame(s, true, op::continuation, "\xC0"), error::none);
    // The next uncompressed text message is checked again.
    EXPECT_EQ(frame(s, true, op::text, "\xFF"), error::invalid_utf8);
}

TEST(WebsocketMessageState, SkippedPayloadStopsInspection) {
    message_state s;
    ASSERT_EQ(s.on_frame(header(false, op::text, 100)), error::none);
    ASSERT_EQ(s.on_payload("abc"), error::none);
    ASSERT_EQ(s.skip_payload(97), error::none);  // relayed uninspected (too_large)
    EXPECT_FALSE(s.in_frame());
    // The rest of this message cannot be judged, even if it looks broken...
    EXPECT_EQ(frame(s, true, op::continuation, "\xFF"), error::none);
    // ...but the next one is checked, and the fragmentation rules always are.
    EXPECT_EQ(frame(s, false, op::text, "ok"), error::none);
    EXPECT_EQ(s.message_size(), 2u);
    EXPECT_EQ(frame(s, true, op::binary, ""), error::message_not_finished);

    message_state c;
    ASSERT_EQ(c.on_frame(header(true, op::close, 2)), error::none);
    ASSERT_EQ(c.skip_payload(2), error::none);
    EXPECT_TRUE(c.closed());
    EXPECT_EQ(c.close_code(), 0);
    EXPECT_EQ(frame(c, true, op::ping, ""), error::frame_after_close);
}

TEST(WebsocketMessageState, MessageSizeCountsAnnouncedBytes) {
    message_state s;
    ASSERT_EQ(s.on_frame(header(false, op::binary, 1000)), error::none);
    EXPECT_EQ(s.message_size(), 1000u);  // known before any payload arrives
    ASSERT_EQ(s.skip_payload(1000), error::none);
    ASSERT_EQ(s.on_frame(header(false, op::continuation, UINT64_MAX >> 1)), error::none);
    ASSERT_EQ(s.skip_payload(UINT64_MAX >> 1), error::none);
    ASSERT_EQ(s.on_frame(header(true, op::continuation, UINT64_MAX >> 1)), error::none);
    EXPECT_EQ(s.message_size(), UINT64_MAX);  // saturates
}

TEST(WebsocketMessageState, CallerMisuse) {
    message_state s;
    ASSERT_EQ(s.on_frame(header(true, op::binary, 3)), error::none);
    ASSERT_EQ(s.on_payload("ab"), error::none);
    EXPECT_TRUE(s.in_frame());
    EXPECT_EQ(s.on_frame(header(true, op::binary, 1)), error::frame_incomplete);
    message_state t;
    ASSERT_EQ(t.on_frame(header(true, op::binary, 3)), error::none);
    EXPECT_EQ(t.on_payload("abcd"), error::payload_overrun);
    message_state u;
    EXPECT_EQ(u.on_payload("x"), error::payload_overrun);
    message_state v;
    EXPECT_EQ(v.skip_payload(1), error::payload_overrun);
    EXPECT_EQ(v.on_payload(""), error::payload_overrun);  // sticky
    v.reset();
    EXPECT_EQ(frame(v, true, op::text, "fine"), error::none);
}

}  // namespace
}  // namespace sentinel::websocket
