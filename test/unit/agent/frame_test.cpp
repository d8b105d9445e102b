// The frame codec of agents/protocol/PROTOCOL.md §2: every header rule is enforced before
// the payload is waited for, and encoding round-trips.
#include <gtest/gtest.h>

#include "agents/protocol/frame.hpp"
#include "sentinel_agent_v1.pb.h"

namespace proto = sentinel::agent_protocol;
namespace v1 = sentinel::agent::v1;

namespace {

std::string header(std::uint32_t length, std::uint8_t type, std::uint8_t flags, std::uint32_t stream) {
    std::string out(proto::frame_header_size, '\0');
    proto::encode_header(out.data(), {length, static_cast<proto::frame_type>(type), flags, stream});
    return out;
}

proto::decode_status decode_as_proxy(const std::string& data, std::uint32_t max = 1024) {
    proto::frame_view f;
    std::size_t used = 0;
    return proto::decode_frame(data, proto::sender::proxy, max, f, used);
}

}  // namespace

TEST(Frame, RoundTripsAMessage) {
    v1::Decision d;
    d.mutable_block()->set_status(451);
    d.mutable_block()->set_body("no");
    std::string out;
    proto::append_message(out, proto::frame_type::decision, 0, 7, d);
    out += "trailing";
    proto::frame_view f;
    std::size_t used = 0;
    ASSERT_EQ(proto::decode_frame(out, proto::sender::proxy, 1024, f, used), proto::decode_status::ok);
    EXPECT_EQ(used, out.size() - 8);
    EXPECT_EQ(f.header.type, proto::frame_type::decision);
    EXPECT_EQ(f.header.stream_id, 7u);
    v1::Decision back;
    ASSERT_TRUE(proto::parse_message(f.payload, back));
    EXPECT_EQ(back.block().status(), 451u);
    EXPECT_EQ(back.block().body(), "no");
}

TEST(Frame, HeaderIsBigEndian) {
    const std::string h = header(0x01020304, 0x20, 0, 0x0a0b0c0d);
    EXPECT_EQ(h, std::string("\x01\x02\x03\x04\x20\x00\x0a\x0b\x0c\x0d", 10));
}

TEST(Frame, NeedsTheWholeFrame) {
    EXPECT_EQ(decode_as_proxy(""), proto::decode_status::need_more);
    EXPECT_EQ(decode_as_proxy(header(5, 0x20, 0, 1).substr(0, 9)), proto::decode_status::need_more);
    EXPECT_EQ(decode_as_proxy(header(5, 0x20, 0, 1) + "abcd"), proto::decode_status::need_more);
    EXPECT_EQ(decode_as_proxy(header(5, 0x20, 0, 1) + "abcde"), proto::decode_status::ok);
}

TEST(Frame, RefusesOversizedFramesBeforeThePayloadArrives) {
    EXPECT_EQ(decode_as_proxy(header(1025, 0x20, 0, 1)), proto::decode_status::too_large);
    EXPECT_EQ(decode_as_proxy(header(1024, 0x20, 0, 1)), proto::decode_status::need_more);
}

TEST(Frame, RefusesUnknownTypesAndWrongDirections) {
    EXPECT_EQ(decode_as_proxy(header(0, 0x7e, 0, 1)), proto::decode_status::unknown_type);
    EXPECT_EQ(decode_as_proxy(header(0, 0x00, 0, 0)), proto::decode_status::unknown_type);
    // The proxy never receives events or HELLO; an agent never receives decisions.
    EXPECT_EQ(decode_as_proxy(header(0, 0x10, 0, 1)), proto::decode_status::wrong_sender);
    EXPECT_EQ(decode_as_proxy(header(0, 0x01, 0, 0)), proto::decode_status::wrong_sender);
    proto::frame_view f;
    std::size_t used = 0;
    EXPECT_EQ(proto::decode_frame(header(0, 0x20, 0, 1), proto::sender::agent, 1024, f, used),
              proto::decode_status::wrong_sender);
    EXPECT_EQ(proto::decode_frame(header(0, 0x10, 0, 1), proto::sender::agent, 1024, f, used), proto::decode_status::ok);
    // PING, PONG and DRAIN go both ways.
    EXPECT_EQ(decode_as_proxy(header(0, 0x03, 0, 0)), proto::decode_status::ok);
    EXPECT_EQ(proto::decode_frame(header(0, 0x06, 0, 0), proto::sender::agent, 1024, f, used), proto::decode_status::ok);
}

TEST(Frame, StreamZeroIsForConnectionFramesOnly) {
    EXPECT_EQ(decode_as_proxy(header(0, 0x20, 0, 0)), proto::decode_status::bad_stream);
    EXPECT_EQ(decode_as_proxy(header(0, 0x05, 0, 3)), proto::decode_status::bad_stream);
    EXPECT_EQ(decode_as_proxy(header(0, 0x05, 0, 0)), proto::decode_status::ok);
}

TEST(Frame, FlagsAreChecked) {
    proto::frame_view f;
    std::size_t used = 0;
    EXPECT_EQ(decode_as_proxy(header(0, 0x20, 0x02, 1)), proto::decode_status::bad_flags);
    // END_STREAM is for the proxy's stream events only.
    EXPECT_EQ(decode_as_proxy(header(0, 0x20, proto::flag_end_stream, 1)), proto::decode_status::bad_flags);
    EXPECT_EQ(proto::decode_frame(header(0, 0x10, proto::flag_end_stream, 1), proto::sender::agent, 1024, f, used),
              proto::decode_status::ok);
    EXPECT_EQ(proto::decode_frame(header(0, 0x03, proto::flag_end_stream, 0), proto::sender::agent, 1024, f, used),
              proto::decode_status::bad_flags);
}

TEST(Frame, EveryTypeHasANameAndADirection) {
    for (int t = 0; t < 256; ++t) {
        proto::sender who{};
        bool conn = false;
        if (!proto::type_info(static_cast<std::uint8_t>(t), who, conn)) continue;
        EXPECT_NE(proto::type_name(static_cast<proto::frame_type>(t)), "UNKNOWN") << t;
        EXPECT_EQ(conn, t < 0x10) << t;
    }
}
