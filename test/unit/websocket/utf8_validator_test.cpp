// UTF-8 validation against the RFC 3629 grammar: boundaries, each class of ill-formed input,
// fail-fast position, split invariance, and a differential check against a plain decoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/xoshiro.hpp"
#include "http/websocket/utf8_validator.hpp"

namespace sentinel::websocket {
namespace {

std::string encode(std::uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// Independent decoder: decodes each sequence by its lead byte's length, then checks the
// decoded value for overlong form, surrogate and range. `truncated` means the input is a
// prefix of some valid text but ends inside a character.
enum class verdict { valid, truncated, invalid };
verdict reference(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (len == 0) return verdict::invalid;
        std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        std::size_t j = 1;
        for (; j < len && i + j < s.size(); ++j) {
            const auto d = static_cast<unsigned char>(s[i + j]);
            if ((d & 0xC0) != 0x80) return verdict::invalid;
            cp = (cp << 6) | (d & 0x3F);
        }
        if (j < len) {
            // Ends inside a character: a prefix of valid text iff some completion is valid.
            // Only the first continuation byte is ever narrowed, so trying every value of the
            // first missing byte (the rest 0x80) covers all completions that matter.
            for (int d = 0x80; d <= 0xBF; ++d) {
                std::string t(s.substr(i));
                t += static_cast<char>(d);
                while (t.size() < len) t += '\x80';
                if (reference(t) == verdict::valid) return verdict::truncated;
            }
            return verdict::invalid;
        }
        const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return verdict::invalid;
        i += len;
    }
    return verdict::valid;
}

verdict check(std::string_view s) {
    utf8_validator v;
    if (!v.feed(s)) return verdict::invalid;
    return v.complete() ? verdict::valid : verdict::truncated;
}

TEST(WebsocketUtf8, Boundaries) {
    for (std::uint32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                             0x10000u, 0x10FFFFu})
        EXPECT_EQ(check(encode(cp)), verdict::valid) << std::hex << cp;
    EXPECT_EQ(check(""), verdict::valid);
    EXPECT_EQ(check("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"), verdict::valid);  // κόσμε
}

TEST(WebsocketUtf8, EveryCodePoint) {
    std::string all;
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp)
        if (cp < 0xD800 || cp > 0xDFFF) all += encode(cp);
    EXPECT_EQ(check(all), verdict::valid);
    for (std::uint32_t cp = 0xD800; cp <= 0xDFFF; ++cp)
        ASSERT_EQ(check(encode(cp)), verdict::invalid) << std::hex << cp;
}

TEST(WebsocketUtf8, IllFormed) {
    const char* bad[] = {
        "\x80", "\xBF", "\xC0\x80", "\xC1\xBF",                  // stray / overlong 2-byte
        "\xE0\x80\x80", "\xE0\x9F\xBF",                          // overlong 3-byte
        "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF",                  // overlong 4-byte
        "\xED\xA0\x80", "\xED\xBF\xBF",                          // surrogates
        "\xF4\x90\x80\x80", "\xF7\xBF\xBF\xBF",                  // above U+10FFFF
        "\xF5", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF",          // never a lead byte
        "\xC2\x41", "\xE1\x80\x41", "\xF1\x80\x80\x41",          // lead then non-continuation
        "a\xC2", "\xC2\x80\x80",
    };
    for (const char* s : bad) {
        const std::string_view v(s);
        const auto got = check(v);
        EXPECT_NE(got, verdict::valid) << testing::PrintToString(v);
        EXPECT_EQ(got, reference(v)) << testing::PrintToString(v);
    }
}

TEST(WebsocketUtf8, TruncatedIsIncompleteNotInvalid) {
    for (const char* s : {"\xC2", "\xE0\xA0", "\xE1", "\xF0\x90\x80", "\xF4\x8F", "ok\xED\x9F"}) {
        utf8_validator v;
        EXPECT_TRUE(v.feed(s)) << testing::PrintToString(std::string(s));
        EXPECT_FALSE(v.complete());
        EXPECT_FALSE(v.failed());
    }
}

TEST(WebsocketUtf8, FailsAtTheFirstImpossibleByte) {
    // Autobahn 6.4.x: a text message must fail as soon as the byte arrives, even mid-character.
    utf8_validator v;
    EXPECT_TRUE(v.feed("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));
    EXPECT_TRUE(v.feed("\xF4"));
    EXPECT_FALSE(v.feed("\x90"));
    EXPECT_TRUE(v.failed());
    EXPECT_FALSE(v.feed("a"));  // sticky
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.feed("a"));
    EXPECT_TRUE(v.complete());
}

TEST(WebsocketUtf8, AllTwoByteStringsMatchTheReference) {
    for (int a = 0; a < 256; ++a)
        for (int b = 0; b < 256; ++b) {
            const char s[2] = {static_cast<char>(a), static_cast<char>(b)};
            const std::string_view v(s, 2);
            ASSERT_EQ(check(v), reference(v)) << a << " " << b;
        }
}

TEST(WebsocketUtf8, RandomInputMatchesTheReferenceInAnySplit) {
    xoshiro256ss rng(4);
    // Bytes drawn mostly from the interesting range so most strings hit multi-byte paths.
    const unsigned char pool[] = {'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                  0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4,
                                  0xF5, 0xFF};
    int valid = 0;
    for (int round = 0; round < 100000; ++round) {
        std::string s;
        const std::size_t n = rng.below(12);
        for (std::size_t i = 0; i < n; ++i) {
            // Long ASCII runs exercise the word-at-a-time path.
            if (rng.below(8) == 0) s.append(rng.below(20), 'x');
            s += static_cast<char>(pool[rng.below(sizeof pool)]);
        }
        const verdict want = reference(s);
        valid += want == verdict::valid;
        ASSERT_EQ(check(s), want) << testing::PrintToString(s);
        utf8_validator pieces;
        bool ok = true;
        for (std::size_t pos = 0; pos < s.size();) {
            const std::size_t k = std::min<std::size_t>(s.size() - pos, rng.below(4));
            ok = pieces.feed(std::string_view(s).substr(pos, k)) && ok;
            pos += k;
        }
        ASSERT_EQ(ok ? (pieces.complete() ? verdict::valid : verdict::truncated) : verdict::invalid,
                  want)
            << testing::PrintToString(s);
    }
    EXPECT_GT(valid, 1000);  // the generator does produce valid text, not only garbage
}

}  // namespace
}  // namespace sentinel::websocket
