// Chunked decoder/encoder: events, every rejection rule, round trips and split invariance.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "http/http1/chunked.hpp"

namespace sentinel::http1 {
namespace {

struct decoded {
    std::string body;
    chunked_decoder::status last = chunked_decoder::status::need_more;
    std::size_t consumed = 0;  // total bytes consumed when done/error
};

// Feeds `in` in pieces whose sizes come from `cuts` (cycled), emulating socket reads: the
// unconsumed rest of a piece is re-offered together with the next piece.
decoded decode_split(std::string_view in, const std::vector<std::size_t>& cuts,
                     chunked_decoder dec = chunked_decoder{}) {
    decoded d;
    std::size_t offered = 0;  // bytes of `in` made available so far
    std::size_t pos = 0;      // bytes consumed
    std::size_t cut = 0;
    for (;;) {
        if (pos == offered) {
            if (offered == in.size()) return d;
            offered = std::min(in.size(), offered + std::max<std::size_t>(1, cuts[cut++ % cuts.size()]));
        }
        std::size_t consumed = 0;
        std::string_view out;
        d.last = dec.decode(in.substr(pos, offered - pos), consumed, out);
        pos += consumed;
        d.consumed = pos;
        if (d.last == chunked_decoder::status::data) {
            EXPECT_FALSE(out.empty());
            d.body.append(out);
        } else if (d.last != chunked_decoder::status::need_more) {
            return d;
        }
    }
}

decoded decode_whole(std::string_view in) { return decode_split(in, {in.size() + 1}); }

using st = chunked_decoder::status;

TEST(Http1Chunked, DecodesChunksAndStopsAtEnd) {
    const std::string in = "5\r\nhello\r\n6;name=val;flag\r\n world\r\n0\r\n\r\nNEXT";
    const auto d = decode_whole(in);
    EXPECT_EQ(d.last, st::done);
    EXPECT_EQ(d.body, "hello world");
    EXPECT_EQ(d.consumed, in.size() - 4);
}

TEST(Http1Chunked, DataIsViewIntoInput) {
    chunked_decoder dec;
    const std::string in = "3\r\nabc\r\n";
    std::size_t consumed = 0;
    std::string_view out;
    ASSERT_EQ(dec.decode(in, consumed, out), st::data);
    EXPECT_EQ(out.data(), in.data() + 3);
    EXPECT_EQ(out, "abc");
    EXPECT_EQ(consumed, 6u);
    ASSERT_EQ(dec.decode(std::string_view(in).substr(consumed), consumed, out), st::need_more);
    EXPECT_EQ(consumed, 2u);
    EXPECT_FALSE(dec.finished());
}

TEST(Http1Chunked, TrailersValidatedAndDropped) {
    const auto d = decode_whole("1\r\na\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n");
    EXPECT_EQ(d.last, st::done);
    EXPECT_EQ(d.body, "a");
    EXPECT_EQ(decode_whole("0\r\nX : 1\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0\r\nNoColon\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0\r\n folded\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0\r\nX: a\x01\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0\r\nX: a\n\r\n").last, st::error);
}

TEST(Http1Chunked, TrailerSizeBound) {
    chunked_decoder small(4096, 32);
    const std::string big = "0\r\nX: " + std::string(40, 'a') + "\r\n\r\n";
    EXPECT_EQ(decode_split(big, {1000}, small).last, st::error);
    chunked_decoder enough(4096, 64);
    EXPECT_EQ(decode_split(big, {1000}, enough).last, st::done);
}

TEST(Http1Chunked, QuotedExtension) {
    const auto d = decode_whole("2;a=\"x \\\"y\\\" ;z\"\r\nab\r\n0\r\n\r\n");
    EXPECT_EQ(d.last, st::done);
    EXPECT_EQ(d.body, "ab");
}

TEST(Http1ChunkedReject, BadHexSize) {
    EXPECT_EQ(decode_whole("g\r\n").last, st::error);
    EXPECT_EQ(decode_whole("\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0x5\r\nhello\r\n").last, st::error);
    EXPECT_EQ(decode_whole("-1\r\n").last, st::error);
    EXPECT_EQ(decode_whole("5 \r\nhello\r\n0\r\n\r\n").last, st::error);  // no BWS
    EXPECT_EQ(decode_whole(" 5\r\nhello\r\n0\r\n\r\n").last, st::error);
}

TEST(Http1ChunkedReject, SizeOverflow) {
    EXPECT_EQ(decode_whole("8000000000000000\r\n").last, st::error);       // 2^63
    EXPECT_EQ(decode_whole("10000000000000000\r\n").last, st::error);      // 2^64
    EXPECT_EQ(decode_whole("7fffffffffffffff\r\nab").last, st::data);      // 2^63-1 is fine
}

TEST(Http1ChunkedReject, BadExtensionCharacters) {
    EXPECT_EQ(decode_whole("1;\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a=\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a b\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1 ;a\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a=(x)\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a=\"x\x01\"\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a=\"x\"y\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a\x80\r\na\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("1;a=b=c\r\na\r\n0\r\n\r\n").last, st::error);
}

TEST(Http1ChunkedReject, MissingCrlfAfterData) {
    EXPECT_EQ(decode_whole("3\r\nabcX\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("3\r\nabc\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("3\r\nabc\r0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("3\r\nabcd\r\n0\r\n\r\n").last, st::error);  // CL-in-chunk mismatch
}

TEST(Http1ChunkedReject, BareLineEndings) {
    EXPECT_EQ(decode_whole("3\nabc\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("3\rabc\r\n0\r\n\r\n").last, st::error);
    EXPECT_EQ(decode_whole("0\r\n\n").last, st::error);
}

TEST(Http1ChunkedReject, OverlongSizeLine) {
    const std::string line = "1;" + std::string(100, 'a') + "\r\nx\r\n0\r\n\r\n";
    EXPECT_EQ(decode_split(line, {7}, chunked_decoder(64, 8192)).last, st::error);
    EXPECT_EQ(decode_split(line, {7}, chunked_decoder(128, 8192)).last, st::done);
    // Leading zeros count against the line too: no endless size line.
    EXPECT_EQ(decode_split(std::string(5000, '0'), {100}).last, st::error);
}

TEST(Http1ChunkedReject, ErrorIsSticky) {
    chunked_decoder dec;
    std::size_t consumed = 0;
    std::string_view out;
    EXPECT_EQ(dec.decode("z", consumed, out), st::error);
    EXPECT_EQ(dec.decode("0\r\n\r\n", consumed, out), st::error);
    dec.reset();
    EXPECT_EQ(dec.decode("0\r\n\r\n", consumed, out), st::done);
    EXPECT_TRUE(dec.finished());
}

std::string encode(const std::vector<std::string>& chunks) {
    std::string out;
    for (const auto& c : chunks) {
        append_chunk_header(out, c.size());
        out += c;
        append_chunk_end(out);
    }
    append_last_chunk(out);
    return out;
}

TEST(Http1Chunked, EncoderBytes) {
    std::string out;
    append_chunk_header(out, 255);
    EXPECT_EQ(out, "ff\r\n");
    append_chunk_end(out);
    append_last_chunk(out);
    EXPECT_EQ(out, "ff\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(encode({"hello", std::string(300, 'x')}),
              "5\r\nhello\r\n12c\r\n" + std::string(300, 'x') + "\r\n0\r\n\r\n");
}

TEST(Http1Chunked, RoundTripAndSplitInvariance) {
    std::mt19937 rng(12345);
    for (int iter = 0; iter < 200; ++iter) {
        std::vector<std::string> chunks;
        std::string body;
        const int n = static_cast<int>(rng() % 5);
        for (int i = 0; i < n; ++i) {
            std::string c(1 + rng() % 70, '\0');
            for (auto& ch : c) ch = static_cast<char>(rng());
            chunks.push_back(c);
            body += c;
        }
        std::string wire = encode(chunks);
        if (iter % 3 == 0) wire.insert(wire.size() - 2, "T: v\r\n");  // a trailer
        const auto whole = decode_whole(wire);
        ASSERT_EQ(whole.last, st::done);
        ASSERT_EQ(whole.body, body);
        ASSERT_EQ(whole.consumed, wire.size());
        const auto bytewise = decode_split(wire, {1});
        ASSERT_EQ(bytewise.last, st::done);
        ASSERT_EQ(bytewise.body, body);
        ASSERT_EQ(bytewise.consumed, wire.size());
        std::vector<std::size_t> cuts;
        for (int i = 0; i < 16; ++i) cuts.push_back(1 + rng() % 9);
        const auto random = decode_split(wire, cuts);
        ASSERT_EQ(random.last, st::done);
        ASSERT_EQ(random.body, body);
    }
}

TEST(Http1Chunked, SplitInvarianceOnErrors) {
    // Where an error happens must not depend on the split either.
    for (std::string_view bad : {"3\r\nabcX", "5;a=\"\x01", "1\r\na\r\n0\r\nX : y\r\n\r\n",
                                 "fffffffffffffffff\r\n", "2\r\nab\r\n3 \r\n"}) {
        const auto whole = decode_whole(bad);
        ASSERT_EQ(whole.last, st::error) << bad;
        for (std::size_t step = 1; step < 5; ++step) {
            const auto split = decode_split(bad, {step});
            EXPECT_EQ(split.last, st::error) << bad;
            EXPECT_EQ(split.body, whole.body) << bad;
            EXPECT_EQ(split.consumed, whole.consumed) << bad;
        }
    }
}

}  // namespace
}  // namespace sentinel::http1
