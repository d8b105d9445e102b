#include "net/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace sentinel::net {
namespace {

using status = proxy_parse_status;

struct result {
    status st;
    proxy_header header;
    std::size_t consumed = 0;
};

result parse(std::string_view data, std::size_t max_v2 = 4096) {
    result r;
    r.st = parse_proxy_header(data, r.header, r.consumed, max_v2);
    return r;
}

std::string ip4(const proxy_address& a) {
    return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." +
           std::to_string(a.bytes[2]) + "." + std::to_string(a.bytes[3]);
}

// Every strict prefix of a valid header must ask for more, never decide early.
void expect_prefixes_need_more(std::string_view header, std::size_t max_v2 = 4096) {
    for (std::size_t n = 0; n < header.size(); ++n)
        ASSERT_EQ(parse(header.substr(0, n), max_v2).st, status::need_more)
            << "prefix of length " << n;
}

// ---- v1 ----

TEST(proxy_v1, parses_tcp4) {
    const std::string line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    const auto r = parse(line + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, line.size());
    EXPECT_EQ(r.header.version, 1);
    EXPECT_TRUE(r.header.has_addresses);
    EXPECT_FALSE(r.header.source.v6);
    EXPECT_EQ(ip4(r.header.source), "192.0.2.1");
    EXPECT_EQ(ip4(r.header.destination), "198.51.100.2");
    EXPECT_EQ(r.header.source.port, 56324);
    EXPECT_EQ(r.header.destination.port, 443);
    expect_prefixes_need_more(line);
}

TEST(proxy_v1, parses_tcp6) {
    const std::string line = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n";
    const auto r = parse(line);
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, line.size());
    EXPECT_TRUE(r.header.source.v6);
    EXPECT_TRUE(r.header.destination.v6);
    const std::uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::uint8_t dst[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    EXPECT_EQ(std::memcmp(r.header.source.bytes, src, 16), 0);
    EXPECT_EQ(std::memcmp(r.header.destination.bytes, dst, 16), 0);
    EXPECT_EQ(r.header.source.port, 0);
    EXPECT_EQ(r.header.destination.port, 65535);
    expect_prefixes_need_more(line);
}

TEST(proxy_v1, parses_longest_tcp6_line) {
    const std::string line =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "65535 65535\r\n";
    ASSERT_EQ(line.size(), 104u);  // the spec's TCP6 maximum
    EXPECT_EQ(parse(line).st, status::done);
    expect_prefixes_need_more(line);
}

TEST(proxy_v1, parses_unknown) {
    auto r = parse("PROXY UNKNOWN\r\nxyz");
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, 15u);
    EXPECT_FALSE(r.header.has_addresses);
    EXPECT_EQ(r.header.version, 1);
    // The spec says whatever follows UNKNOWN up to CRLF is ignored.
    const std::string line = "PROXY UNKNOWN ffff:: whatever 1 2\r\n";
    r = parse(line);
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, line.size());
    EXPECT_FALSE(r.header.has_addresses);
    expect_prefixes_need_more(line);
}

TEST(proxy_v1, enforces_107_byte_bound) {
    std::string line = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
    ASSERT_EQ(line.size(), 107u);
    EXPECT_EQ(parse(line).st, status::done);
    expect_prefixes_need_more(line);
    line = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
    ASSERT_EQ(line.size(), 108u);
    EXPECT_EQ(parse(line).st, status::error);
    // Decided before the CRLF arrives: 106 bytes without CR cannot end within 107.
    EXPECT_EQ(parse(line.substr(0, 106)).st, status::error);
    EXPECT_EQ(parse(line.substr(0, 105)).st, status::need_more);
    // A flood without any CRLF is rejected at the bound, however much data there is.
    EXPECT_EQ(parse("PROXY UNKNOWN " + std::string(4000, 'x')).st, status::error);
}

TEST(proxy_v1, rejects_tcp6_lines_that_cannot_fit) {
    // RFC 4291 allows a dotted tail, but two of them in full length exceed 107 bytes.
    const std::string addr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    const std::string line = "PROXY TCP6 " + addr + " " + addr + " 1 2\r\n";
    ASSERT_GT(line.size(), 107u);
    EXPECT_EQ(parse(line).st, status::error);
    // Shortest completion after the destination is " 0 0\r\n" (6 bytes): the prefix ending at
    // byte 101 can still fit, the one ending at 102 cannot.
    const std::size_t dst_end = 11 + addr.size() + 1 + addr.size();
    ASSERT_EQ(dst_end, 102u);
    EXPECT_EQ(parse(line.substr(0, dst_end - 1)).st, status::need_more);
    EXPECT_EQ(parse(line.substr(0, dst_end)).st, status::error);
    // A shorter second address still fits.
    EXPECT_EQ(parse("PROXY TCP6 " + addr + " ::1.2.3.4 1 2\r\n").st, status::done);
}

TEST(proxy_v1, rejects_malformed_lines) {
    for (const char* bad : {
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",        // LF only
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r\n",    // stray CR
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",     // trailing space
             "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",     // double space
             "PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY\tTCP4 192.0.2.1 198.51.100.2 1 2\r\n",
             "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n",      // leading zero in address
             "PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",      // leading zero in port
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 00\r\n",
             "PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",   // port range
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 -2\r\n",
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 +2\r\n",
             "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",         // missing field
             "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",     // extra field
             "PROXY TCP4 192.0.2.1 198.51.100 1 2\r\n",
             "PROXY TCP4 ::1 ::1 1 2\r\n",                      // family mismatch
             "PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
             "PROXY TCP4 192.0.2.1 198.51.100.2  1 2\r\n",
             "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
             "PROXY TCP6 [::1] ::1 1 2\r\n",
             "PROXY TCP6 1::2::3 ::1 1 2\r\n",
             "PROXY TCP4 \r\n",
             "PROXY TCP4\r\n",
             "PROXY \r\n",
             "PROXY\r\n",
             "PROXY UNKNOWN\n",
             "PROXY UNKNOWN x\ny\r\n",
             "PROXY UNKNOWNX\r\n",
             "PROXY UNKNOWN\rx\n",
             "GET / HTTP/1.1\r\n",
         })
        EXPECT_EQ(parse(bad).st, status::error) << bad;
}

TEST(proxy_v1, errors_at_first_impossible_byte) {
    // The verdict comes with the offending byte, not at CRLF or timeout.
    for (const char* prefix : {"G", "PROXZ", "PROXY X", "PROXY TCP4 1.2.3.4.", "PROXY TCP4 01",
                               "PROXY TCP4 1.2.3.4 5.6.7.8 00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536",
                               "PROXY TCP6 1:2:3:4:5:6:7:8:", "PROXY TCP6 ::1 :::",
                               "PROXY TCP6 1:2:3:4:5:6:7:8.", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",
                               "PROXY TCP6 1:2:3:4:5:6:7:8 ::1 1 2\n"}) {
        const std::string p = prefix;
        EXPECT_EQ(parse(p.substr(0, p.size() - 1)).st, status::need_more) << prefix;
        EXPECT_EQ(parse(p).st, status::error) << prefix;
    }
    // Limits that only the next byte can break are not guessed early.
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 6553").st, status::need_more);
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536").st, status::error);
    EXPECT_EQ(parse("PROXY TCP6 1:2:3:4:5:6:1.2").st, status::need_more);
    EXPECT_EQ(parse("PROXY TCP6 ::1.2").st, status::need_more);
}

// ---- v2 ----

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(std::size_t v) {
    return {static_cast<char>(v >> 8 & 0xff), static_cast<char>(v & 0xff)};
}

std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, const std::string& body) {
    return signature + static_cast<char>(ver_cmd) + static_cast<char>(fam) + be16(body.size()) +
           body;
}

std::string tlv(std::uint8_t type, const std::string& value) {
    return static_cast<char>(type) + be16(value.size()) + value;
}

const std::string inet_addresses = std::string("\xc0\x00\x02\x01\xc6\x33\x64\x02", 8) +
                                   be16(56324) + be16(443);

// Independent bitwise CRC-32C (Castagnoli, reflected), checked against the standard vector.
std::uint32_t crc32c(const std::string& data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char c : data) {
        crc ^= c;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

TEST(proxy_v2, crc_helper_matches_standard_vector) { EXPECT_EQ(crc32c("123456789"), 0xE3069283u); }

TEST(proxy_v2, parses_inet) {
    const std::string header = v2(0x21, 0x11, inet_addresses);
    const auto r = parse(header + "payload");
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, 28u);
    EXPECT_EQ(r.header.version, 2);
    EXPECT_TRUE(r.header.has_addresses);
    EXPECT_FALSE(r.header.source.v6);
    EXPECT_EQ(ip4(r.header.source), "192.0.2.1");
    EXPECT_EQ(ip4(r.header.destination), "198.51.100.2");
    EXPECT_EQ(r.header.source.port, 56324);
    EXPECT_EQ(r.header.destination.port, 443);
    expect_prefixes_need_more(header);
    EXPECT_EQ(parse(v2(0x21, 0x12, inet_addresses)).st, status::done);  // DGRAM
}

TEST(proxy_v2, parses_inet6_with_tlvs) {
    std::string addrs;
    for (int i = 0; i < 16; ++i) addrs.push_back(static_cast<char>(i));
    for (int i = 0; i < 16; ++i) addrs.push_back(static_cast<char>(0xf0 + i));
    addrs += be16(1) + be16(2);
    const std::string header =
        v2(0x21, 0x21, addrs + tlv(0x01, "h2") + tlv(0x04, "") + tlv(0xE0, std::string(300, 'x')));
    const auto r = parse(header);
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, header.size());
    EXPECT_TRUE(r.header.source.v6);
    EXPECT_EQ(r.header.source.bytes[15], 15);
    EXPECT_EQ(r.header.destination.bytes[0], 0xf0);
    EXPECT_EQ(r.header.source.port, 1);
    EXPECT_EQ(r.header.destination.port, 2);
    expect_prefixes_need_more(header);
}

TEST(proxy_v2, local_unix_and_unspec_carry_no_addresses) {
    for (const auto& header :
         {v2(0x20, 0x00, ""), v2(0x20, 0x11, ""), v2(0x20, 0x00, "opaque"),
          v2(0x21, 0x00, ""), v2(0x21, 0x00, "ignored"), v2(0x21, 0x31, std::string(216, '\0')),
          v2(0x21, 0x32, std::string(216, 'a') + tlv(0x02, "authority"))}) {
        const auto r = parse(header);
        ASSERT_EQ(r.st, status::done);
        EXPECT_EQ(r.consumed, header.size());
        EXPECT_EQ(r.header.version, 2);
        EXPECT_FALSE(r.header.has_addresses);
    }
    // LOCAL ignores the block, so even an address-less INET LOCAL is fine (health checks).
    EXPECT_EQ(parse(v2(0x20, 0x21, "")).st, status::done);
}

TEST(proxy_v2, rejects_bad_fixed_fields_immediately) {
    // Each wrong byte is reported as soon as it arrives.
    for (std::size_t i = 0; i < 12; ++i) {
        std::string s = signature.substr(0, i + 1);
        s[i] ^= 0x20;
        EXPECT_EQ(parse(s).st, status::error) << i;
    }
    for (std::uint8_t ver_cmd : {0x11, 0x31, 0x22, 0x2f, 0x00, 0xff})
        EXPECT_EQ(parse(signature + static_cast<char>(ver_cmd)).st, status::error) << +ver_cmd;
    for (std::uint8_t fam : {0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x41, 0xff})
        for (std::uint8_t cmd : {0x20, 0x21})
            EXPECT_EQ(parse(signature + static_cast<char>(cmd) + static_cast<char>(fam)).st,
                      status::error)
                << +fam;
}

TEST(proxy_v2, rejects_blocks_shorter_than_their_addresses) {
    EXPECT_EQ(parse(signature + "\x21\x11" + be16(11)).st, status::error);
    EXPECT_EQ(parse(signature + "\x21\x21" + be16(35)).st, status::error);
    EXPECT_EQ(parse(signature + "\x21\x31" + be16(215)).st, status::error);
    EXPECT_EQ(parse(signature + "\x21\x11" + be16(12)).st, status::need_more);
}

TEST(proxy_v2, enforces_size_cap_from_length_field) {
    const std::string header = v2(0x21, 0x11, inet_addresses + tlv(0xE0, std::string(100, 'x')));
    EXPECT_EQ(parse(header, header.size()).st, status::done);
    EXPECT_EQ(parse(header, header.size() - 1).st, status::error);
    // Known from the 16-byte fixed part alone.
    EXPECT_EQ(parse(signature + "\x21\x11" + be16(65535)).st, status::error);
    EXPECT_EQ(parse(signature + "\x21\x11" + be16(65535), 16 + 65535).st, status::need_more);
}

TEST(proxy_v2, tlvs_must_tile_the_block) {
    // A TLV running past the block is rejected as soon as its 3-byte header is visible.
    const std::string overrun = v2(0x21, 0x11, inet_addresses + tlv(0xE0, "abc"));
    std::string bad = overrun;
    bad[bad.size() - 4] = 4;  // length 3 -> 4
    EXPECT_EQ(parse(bad.substr(0, 28 + 3)).st, status::error);
    EXPECT_EQ(parse(bad.substr(0, 28 + 2)).st, status::need_more);
    // Leftover bytes too short for a TLV header.
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_addresses + "\xE0")).st, status::error);
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_addresses + std::string("\xE0\x00", 2))).st,
              status::error);
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_addresses + tlv(0xE0, "abc"))).st, status::done);
}

std::string with_crc(std::string header_with_zero_crc) {
    const std::uint32_t crc = crc32c(header_with_zero_crc);
    const std::size_t at = header_with_zero_crc.size() - 4;
    for (int i = 0; i < 4; ++i)
        header_with_zero_crc[at + i] = static_cast<char>(crc >> (24 - 8 * i) & 0xff);
    return header_with_zero_crc;
}

TEST(proxy_v2, verifies_crc32c_tlv) {
    const std::string good = with_crc(
        v2(0x21, 0x11, inet_addresses + tlv(0x01, "http/1.1") + tlv(0x03, std::string(4, '\0'))));
    const auto r = parse(good + "tail");
    ASSERT_EQ(r.st, status::done);
    EXPECT_EQ(r.consumed, good.size());
    expect_prefixes_need_more(good);
    const std::size_t crc_type_at = 28 + 3 + 8;
    for (std::size_t i = 16; i < good.size(); ++i) {
        if (i == crc_type_at) continue;  // turns the checksum into an unchecked TLV
        std::string bad = good;
        bad[i] ^= 0x01;
        const auto st = parse(bad).st;
        // Flipping a bit of a TLV length may break tiling instead; either way it must fail.
        EXPECT_EQ(st, status::error) << i;
    }
    // Wrong size and duplicates are malformed.
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_addresses + tlv(0x03, "abc"))).st, status::error);
    const std::string twice = with_crc(v2(
        0x21, 0x11, inet_addresses + tlv(0x03, std::string(4, '\0')) + tlv(0x03, std::string(4, '\0'))));
    EXPECT_EQ(parse(twice).st, status::error);
}

TEST(proxy_v2, does_not_confuse_with_v1_or_other_protocols) {
    EXPECT_EQ(parse("").st, status::need_more);
    EXPECT_EQ(parse("\r").st, status::need_more);
    EXPECT_EQ(parse("\r\n\r\n").st, status::need_more);
    EXPECT_EQ(parse("\r\n\r\nX").st, status::error);
    EXPECT_EQ(parse("\x16\x03\x01").st, status::error);  // TLS ClientHello
    EXPECT_EQ(parse(std::string(1, '\0')).st, status::error);
}

}  // namespace
}  // namespace sentinel::net
