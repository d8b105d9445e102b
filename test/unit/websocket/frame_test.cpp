// Frame header parsing, masking and encoding: the RFC 6455 §5.7 examples byte for byte, every
// rejection rule with the byte it fires on, and round trips with random payloads and masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/xoshiro.hpp"
#include "http/websocket/frame.hpp"

namespace sentinel::websocket {
namespace {

std::string bytes(std::initializer_list<int> list) {
    std::string s;
    for (int b : list) s += static_cast<char>(b);
    return s;
}

const std::uint8_t rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

struct parsed {
    parse_status status = parse_status::need_more;
    frame_header header;
    error err = error::none;
};

parsed parse(std::string_view data, bool expect_masked, std::uint64_t max = UINT64_MAX,
             header_options options = {}) {
    parsed p;
    p.status = parse_header(data, expect_masked, max, p.header, p.err, options);
    return p;
}

// Every strict prefix of a header is need_more, leaving the outputs untouched.
void expect_prefixes_need_more(std::string_view header, bool expect_masked,
                               header_options options = {}) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        frame_header h;
        h.opcode = 0x7;
        error err = error::invalid_utf8;
        EXPECT_EQ(parse_header(header.substr(0, n), expect_masked, UINT64_MAX, h, err, options),
                  parse_status::need_more)
            << "prefix " << n;
        EXPECT_EQ(h.opcode, 0x7);
        EXPECT_EQ(err, error::invalid_utf8);
    }
}

// The error fires at the byte that causes it: the prefix that ends with that byte already
// reports it, shorter prefixes are need_more, and longer inputs report the same error.
void expect_error_at(std::string_view data, std::size_t at, bool expect_masked, error want,
                     header_options options = {}) {
    for (std::size_t n = 0; n <= data.size(); ++n) {
        auto p = parse(data.substr(0, n), expect_masked, UINT64_MAX, options);
        if (n <= at) {
            EXPECT_EQ(p.status, parse_status::need_more) << "prefix " << n;
        } else {
            EXPECT_EQ(p.status, parse_status::error) << "prefix " << n;
            EXPECT_EQ(p.err, want) << "prefix " << n << ": " << description(p.err);
        }
    }
}

std::string payload_of(std::string_view frame, const frame_header& h) {
    std::string payload(frame.substr(h.header_size, h.payload_length));
    if (h.masked) unmask(payload.data(), payload.size(), h.mask);
    return payload;
}

// --- RFC 6455 §5.7 examples -------------------------------------------------------------

TEST(WebsocketFrame, RfcUnmaskedHello) {
    const auto frame = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    auto p = parse(frame, false);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_TRUE(p.header.fin);
    EXPECT_FALSE(p.header.rsv1 || p.header.rsv2 || p.header.rsv3);
    EXPECT_EQ(p.header.opcode, op::text);
    EXPECT_FALSE(p.header.masked);
    EXPECT_EQ(p.header.payload_length, 5u);
    EXPECT_EQ(p.header.header_size, 2u);
    EXPECT_EQ(payload_of(frame, p.header), "Hello");
    expect_prefixes_need_more(frame.substr(0, 2), false);

    std::string out;
    append_frame(out, true, op::text, "Hello", nullptr);
    EXPECT_EQ(out, frame);
}

TEST(WebsocketFrame, RfcMaskedHello) {
    const auto frame =
        bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    auto p = parse(frame, true);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_TRUE(p.header.masked);
    EXPECT_EQ(std::memcmp(p.header.mask, rfc_mask, 4), 0);
    EXPECT_EQ(p.header.payload_length, 5u);
    EXPECT_EQ(p.header.header_size, 6u);
    EXPECT_EQ(payload_of(frame, p.header), "Hello");
    expect_prefixes_need_more(frame.substr(0, 6), true);

    std::string out;
    append_frame(out, true, op::text, "Hello", rfc_mask);
    EXPECT_EQ(out, frame);
}

TEST(WebsocketFrame, RfcFragmentedHello) {
    const auto first = bytes({0x01, 0x03, 0x48, 0x65, 0x6c});
    const auto second = bytes({0x80, 0x02, 0x6c, 0x6f});
    auto a = parse(first + second, false);  // parse stops at the first frame's header
    ASSERT_EQ(a.status, parse_status::ok);
    EXPECT_FALSE(a.header.fin);
    EXPECT_EQ(a.header.opcode, op::text);
    EXPECT_EQ(payload_of(first, a.header), "Hel");
    auto b = parse(second, false);
    ASSERT_EQ(b.status, parse_status::ok);
    EXPECT_TRUE(b.header.fin);
    EXPECT_EQ(b.header.opcode, op::continuation);
    EXPECT_EQ(payload_of(second, b.header), "lo");

    std::string out;
    append_frame(out, false, op::text, "Hel", nullptr);
    append_frame(out, true, op::continuation, "lo", nullptr);
    EXPECT_EQ(out, first + second);
}

TEST(WebsocketFrame, RfcPingAndMaskedPong) {
    const auto ping = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    auto p = parse(ping, false);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_EQ(p.header.opcode, op::ping);
    EXPECT_EQ(payload_of(ping, p.header), "Hello");

    const auto pong =
        bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    auto q = parse(pong, true);
    ASSERT_EQ(q.status, parse_status::ok);
    EXPECT_EQ(q.header.opcode, op::pong);
    EXPECT_EQ(payload_of(pong, q.header), "Hello");

    std::string out;
    append_frame(out, true, op::ping, "Hello", nullptr);
    append_frame(out, true, op::pong, "Hello", rfc_mask);
    EXPECT_EQ(out, ping + pong);
}

TEST(WebsocketFrame, Rfc256ByteBinary) {
    const std::string payload(256, '\x5a');
    const auto frame = bytes({0x82, 0x7E, 0x01, 0x00}) + payload;
    auto p = parse(frame, false);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_EQ(p.header.opcode, op::binary);
    EXPECT_EQ(p.header.payload_length, 256u);
    EXPECT_EQ(p.header.header_size, 4u);
    expect_prefixes_need_more(frame.substr(0, 4), false);
    std::string out;
    append_frame(out, true, op::binary, payload, nullptr);
    EXPECT_EQ(out, frame);
}

TEST(WebsocketFrame, Rfc64KiBBinary) {
    const std::string payload(65536, '\xa5');
    const auto frame = bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}) + payload;
    auto p = parse(frame, false);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_EQ(p.header.payload_length, 65536u);
    EXPECT_EQ(p.header.header_size, 10u);
    expect_prefixes_need_more(frame.substr(0, 10), false);
    std::string out;
    append_frame(out, true, op::binary, payload, nullptr);
    EXPECT_EQ(out, frame);

    // Masked: the key follows the 64-bit length, for the longest header there is.
    std::string masked;
    append_frame(masked, true, op::binary, payload, rfc_mask);
    auto m = parse(masked, true);
    ASSERT_EQ(m.status, parse_status::ok);
    EXPECT_EQ(m.header.header_size, max_header_size);
    EXPECT_EQ(payload_of(masked, m.header), payload);
}

// --- rejection rules ---------------------------------------------------------------------

TEST(WebsocketFrame, ReservedOpcodesFailOnTheFirstByte) {
    for (int opcode = 0; opcode <= 0xF; ++opcode) {
        const bool reserved = (opcode >= 3 && opcode <= 7) || opcode >= 0xB;
        const auto frame = bytes({0x80 | opcode, 0x80});
        auto p = parse(frame.substr(0, 1), true);
        if (reserved) {
            EXPECT_EQ(p.status, parse_status::error) << opcode;
            EXPECT_EQ(p.err, error::reserved_opcode) << opcode;
        } else {
            EXPECT_EQ(p.status, parse_status::need_more) << opcode;
            EXPECT_EQ(parse(frame + std::string(4, 'k'), true).status, parse_status::ok) << opcode;
        }
    }
}

TEST(WebsocketFrame, ControlFramesMustNotBeFragmented) {
    for (int opcode : {op::close, op::ping, op::pong})
        expect_error_at(bytes({opcode, 0x00}), 0, false, error::fragmented_control);
    // Data frames may be.
    EXPECT_EQ(parse(bytes({0x01, 0x00}), false).status, parse_status::ok);
    EXPECT_EQ(parse(bytes({0x02, 0x00}), false).status, parse_status::ok);
    EXPECT_EQ(parse(bytes({0x00, 0x00}), false).status, parse_status::ok);
}

TEST(WebsocketFrame, ControlPayloadAtMost125) {
    for (int opcode : {op::close, op::ping, op::pong}) {
        EXPECT_EQ(parse(bytes({0x80 | opcode, 125}), false).status, parse_status::ok);
        // The 16- and 64-bit forms are rejected on the length byte, before the extension.
        expect_error_at(bytes({0x80 | opcode, 126, 0x00, 126}), 1, false, error::control_too_long);
        expect_error_at(bytes({0x80 | opcode, 127, 0, 0, 0, 0, 0, 0, 0, 126}), 1, false,
                        error::control_too_long);
        expect_error_at(bytes({0x80 | opcode, 0x80 | 126, 0x00, 126, 1, 2, 3, 4}), 1, true,
                        error::control_too_long);
    }
}

TEST(WebsocketFrame, SixtyFourBitLengthWithHighBitSet) {
    expect_error_at(bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}), 9, false,
                    error::length_msb_set);
    expect_error_at(bytes({0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), 9, false,
                    error::length_msb_set);
    // The largest legal length parses (the caller's maximum decides what happens next).
    auto p = parse(bytes({0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), false);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_EQ(p.header.payload_length, 0x7FFFFFFFFFFFFFFFULL);
}

TEST(WebsocketFrame, NonMinimalLengthIsRejectedUnlessAllowed) {
    const header_options lenient{.allow_non_minimal_length = true};
    // 16-bit form for 0 and 125; 64-bit form for 0, 125 and 65535.
    const std::vector<std::string> padded = {
        bytes({0x82, 126, 0x00, 0x00}),
        bytes({0x82, 126, 0x00, 125}),
        bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0}),
        bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 0, 125}),
        bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}),
    };
    for (const auto& frame : padded) {
        expect_error_at(frame, frame.size() - 1, false, error::non_minimal_length);
        auto p = parse(frame, false, UINT64_MAX, lenient);
        ASSERT_EQ(p.status, parse_status::ok);
        EXPECT_EQ(p.header.header_size, frame.size());
    }
    // The boundaries of each form are minimal.
    EXPECT_EQ(parse(bytes({0x82, 126, 0x00, 126}), false).status, parse_status::ok);
    EXPECT_EQ(parse(bytes({0x82, 126, 0xFF, 0xFF}), false).status, parse_status::ok);
    EXPECT_EQ(parse(bytes({0x82, 127, 0, 0, 0, 0, 0, 0x01, 0, 0}), false).status, parse_status::ok);
}

TEST(WebsocketFrame, ReservedBits) {
    const header_options deflate{.allow_rsv1 = true};
    // RSV2/RSV3 are never negotiated here, with or without permessage-deflate.
    for (int bits : {0x20, 0x10, 0x30, 0x70}) {
        expect_error_at(bytes({0x81 | bits, 0x00}), 0, false, error::reserved_bits);
        expect_error_at(bytes({0x81 | bits, 0x00}), 0, false, error::reserved_bits, deflate);
    }
    // RSV1 needs permessage-deflate...
    expect_error_at(bytes({0xC1, 0x00}), 0, false, error::reserved_bits);
    expect_error_at(bytes({0xC2, 0x00}), 0, false, error::reserved_bits);
    auto p = parse(bytes({0xC1, 0x00}), false, UINT64_MAX, deflate);
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_TRUE(p.header.rsv1);
    auto first_fragment = parse(bytes({0x42, 0x00}), false, UINT64_MAX, deflate);
    ASSERT_EQ(first_fragment.status, parse_status::ok);
    EXPECT_TRUE(first_fragment.header.rsv1);
    EXPECT_FALSE(first_fragment.header.fin);
    // ...and even then marks only a message's first frame, never a continuation or control.
    expect_error_at(bytes({0xC0, 0x00}), 0, false, error::reserved_bits, deflate);
    for (int opcode : {op::close, op::ping, op::pong})
        expect_error_at(bytes({0xC0 | opcode, 0x00}), 0, false, error::reserved_bits, deflate);
}

TEST(WebsocketFrame, MaskingMustMatchTheDirection) {
    // Client to server: masked required.
    expect_error_at(bytes({0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}), 1, true, error::mask_required);
    expect_error_at(bytes({0x89, 0x00}), 1, true, error::mask_required);
    // Server to client: masked forbidden.
    expect_error_at(bytes({0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0}), 1, false,
                    error::mask_forbidden);
    expect_error_at(bytes({0x8A, 0x80, 1, 2, 3, 4}), 1, false, error::mask_forbidden);
}

TEST(WebsocketFrame, TooLargeKeepsACompleteHeader) {
    std::string frame;
    append_frame(frame, true, op::binary, std::string(1000, 'x'), rfc_mask);
    // At the limit: fine.
    EXPECT_EQ(parse(frame, true, 1000).status, parse_status::ok);
    // Over it: need_more until the mask key is in, then too_large with every field set, so
    // the caller can relay header_size + payload_length bytes untouched.
    for (std::size_t n = 0; n < 8; ++n)
        EXPECT_EQ(parse(frame.substr(0, n), true, 999).status, parse_status::need_more) << n;
    auto p = parse(frame.substr(0, 8), true, 999);
    ASSERT_EQ(p.status, parse_status::error);
    EXPECT_EQ(p.err, error::too_large);
    EXPECT_EQ(p.header.payload_length, 1000u);
    EXPECT_EQ(p.header.header_size, 8u);
    EXPECT_TRUE(p.header.masked);
    EXPECT_EQ(std::memcmp(p.header.mask, rfc_mask, 4), 0);
    EXPECT_EQ(p.header.opcode, op::binary);
    EXPECT_TRUE(p.header.fin);

    // A 7-bit length can be too large as well, including for a control frame.
    auto q = parse(bytes({0x89, 0x05}), false, 4);
    EXPECT_EQ(q.status, parse_status::error);
    EXPECT_EQ(q.err, error::too_large);
    EXPECT_EQ(q.header.header_size, 2u);
    EXPECT_EQ(parse(bytes({0x82, 0x00}), false, 0).status, parse_status::ok);
}

TEST(WebsocketFrame, ProtocolErrorsWinOverTooLarge) {
    // A frame that is both too large and malformed is malformed: relaying it would forward
    // a protocol violation.
    auto p = parse(bytes({0x82, 126, 0x00, 0x10}), false, 1);
    EXPECT_EQ(p.err, error::non_minimal_length);
    auto q = parse(bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}), false, 1);
    EXPECT_EQ(q.err, error::length_msb_set);
    auto r = parse(bytes({0x82, 0x85, 1, 2, 3, 4}), false, 1);
    EXPECT_EQ(r.err, error::mask_forbidden);
}

TEST(WebsocketFrame, HeaderSizes) {
    struct row {
        std::uint64_t length;
        bool masked;
        std::size_t size;
    };
    for (const auto& r : {row{0, false, 2}, row{125, false, 2}, row{126, false, 4},
                          row{65535, false, 4}, row{65536, false, 10}, row{0, true, 6},
                          row{125, true, 6}, row{126, true, 8}, row{65535, true, 8},
                          row{65536, true, 14}, row{UINT64_MAX >> 1, true, 14}}) {
        frame_header h;
        h.fin = true;
        h.opcode = op::binary;
        h.masked = r.masked;
        std::memcpy(h.mask, rfc_mask, 4);
        h.payload_length = r.length;
        std::string out;
        EXPECT_EQ(append_header(out, h), r.size) << r.length;
        ASSERT_EQ(out.size(), r.size);
        auto p = parse(out, r.masked);
        ASSERT_EQ(p.status, parse_status::ok) << r.length;
        EXPECT_EQ(p.header.header_size, r.size);
        EXPECT_EQ(p.header.payload_length, r.length);
        expect_prefixes_need_more(out, r.masked);
    }
}

TEST(WebsocketFrame, AppendHeaderCarriesReservedBits) {
    frame_header h;
    h.fin = false;
    h.rsv1 = true;
    h.opcode = op::text;
    h.payload_length = 300;
    std::string out;
    append_header(out, h);
    EXPECT_EQ(out, bytes({0x41, 126, 0x01, 0x2C}));
    auto p = parse(out, false, UINT64_MAX, {.allow_rsv1 = true});
    ASSERT_EQ(p.status, parse_status::ok);
    EXPECT_TRUE(p.header.rsv1);
    EXPECT_FALSE(p.header.fin);
}

// --- masking ----------------------------------------------------------------------------

std::string reference_mask(std::string s, const std::uint8_t mask[4], std::uint64_t offset) {
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(s[i] ^ mask[(offset + i) % 4]);
    return s;
}

TEST(WebsocketFrame, UnmaskMatchesTheDefinitionForEveryLengthAndOffset) {
    xoshiro256ss rng(1);
    const std::uint8_t mask[4] = {0x01, 0x80, 0xFE, 0x37};
    std::string data(200, '\0');
    for (auto& c : data) c = static_cast<char>(rng.next());
    for (std::size_t start = 0; start < 9; ++start) {  // misaligned buffers too
        for (std::size_t n = 0; n + start <= 100; ++n) {
            for (std::uint64_t offset : {0ULL, 1ULL, 2ULL, 3ULL, 7ULL, (1ULL << 40) + 2}) {
                std::string buf = data;
                unmask(buf.data() + start, n, mask, offset);
                const std::string want = data.substr(0, start) +
                                         reference_mask(data.substr(start, n), mask, offset) +
                                         data.substr(start + n);
                ASSERT_EQ(buf, want) << start << " " << n << " " << offset;
            }
        }
    }
}

TEST(WebsocketFrame, UnmaskInPiecesEqualsOneCall) {
    xoshiro256ss rng(2);
    for (int round = 0; round < 200; ++round) {
        std::uint8_t mask[4];
        for (auto& m : mask) m = static_cast<std::uint8_t>(rng.next());
        std::string data(rng.below(3000), '\0');
        for (auto& c : data) c = static_cast<char>(rng.next());
        std::string whole = data;
        unmask(whole.data(), whole.size(), mask);
        std::string pieces = data;
        std::size_t pos = 0;
        while (pos < pieces.size()) {
            const std::size_t n = std::min<std::size_t>(pieces.size() - pos, rng.below(70));
            unmask(pieces.data() + pos, n, mask, pos);
            pos += n;
        }
        ASSERT_EQ(pieces, whole);
        unmask(whole.data(), whole.size(), mask);  // masking twice is the identity
        ASSERT_EQ(whole, data);
    }
}

// --- round trips --------------------------------------------------------------------------

TEST(WebsocketFrame, RandomRoundTrips) {
    xoshiro256ss rng(3);
    const std::uint8_t opcodes[] = {op::continuation, op::text, op::binary, op::close, op::ping,
                                    op::pong};
    const std::size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    for (int round = 0; round < 400; ++round) {
        const std::uint8_t opcode = opcodes[rng.below(6)];
        std::size_t n = round < 64 ? lengths[round % 8] : rng.below(2000);
        if (is_control(opcode)) n %= 126;
        const bool fin = is_control(opcode) || rng.below(2) == 0;
        const bool masked = rng.below(2) == 0;
        std::uint8_t mask[4];
        for (auto& m : mask) m = static_cast<std::uint8_t>(rng.next());
        std::string payload(n, '\0');
        for (auto& c : payload) c = static_cast<char>(rng.next());
        const std::string original = payload;

        std::string wire = "prefix";
        append_frame(wire, fin, opcode, payload, masked ? mask : nullptr);
        ASSERT_EQ(payload, original);  // the caller's bytes are never masked in place
        const std::string_view frame = std::string_view(wire).substr(6);

        auto p = parse(frame, masked);
        ASSERT_EQ(p.status, parse_status::ok) << description(p.err);
        EXPECT_EQ(p.header.fin, fin);
        EXPECT_EQ(p.header.opcode, opcode);
        EXPECT_EQ(p.header.masked, masked);
        if (masked) {
            EXPECT_EQ(std::memcmp(p.header.mask, mask, 4), 0);
        }
        ASSERT_EQ(p.header.header_size + p.header.payload_length, frame.size());
        EXPECT_EQ(payload_of(frame, p.header), original);
        // Minimal encoding makes the header canonical: re-encoding gives the same bytes.
        std::string again;
        append_header(again, p.header);
        EXPECT_EQ(again, frame.substr(0, p.header.header_size));
        // The other direction rejects it on the mask bit.
        auto other = parse(frame, !masked);
        EXPECT_EQ(other.status, parse_status::error);
        EXPECT_EQ(other.err, masked ? error::mask_forbidden : error::mask_required);
    }
}

TEST(WebsocketFrame, ParseReadsOnlyTheFirstFrame) {
    std::string wire;
    append_frame(wire, true, op::text, "one", rfc_mask);
    append_frame(wire, true, op::binary, std::string(300, 'b'), rfc_mask);
    append_frame(wire, true, op::close, "", rfc_mask);
    std::string_view rest = wire;
    std::vector<std::uint8_t> seen;
    while (!rest.empty()) {
        auto p = parse(rest, true);
        ASSERT_EQ(p.status, parse_status::ok);
        seen.push_back(p.header.opcode);
        rest.remove_prefix(p.header.header_size + p.header.payload_length);
    }
    EXPECT_EQ(seen, (std::vector<std::uint8_t>{op::text, op::binary, op::close}));
}

TEST(WebsocketFrame, ErrorsHaveDescriptionsAndCloseCodes) {
    for (int e = 0; e <= static_cast<int>(error::payload_overrun); ++e) {
        const auto err = static_cast<error>(e);
        EXPECT_NE(description(err), "unknown error") << e;
        EXPECT_FALSE(description(err).empty()) << e;
    }
    EXPECT_EQ(close_code_for(error::none), 1000);
    EXPECT_EQ(close_code_for(error::reserved_opcode), 1002);
    EXPECT_EQ(close_code_for(error::mask_required), 1002);
    EXPECT_EQ(close_code_for(error::unexpected_continuation), 1002);
    EXPECT_EQ(close_code_for(error::invalid_utf8), 1007);
    EXPECT_EQ(close_code_for(error::too_large), 1009);
    EXPECT_EQ(close_code_for(error::payload_overrun), 1011);
}

}  // namespace
}  // namespace sentinel::websocket
