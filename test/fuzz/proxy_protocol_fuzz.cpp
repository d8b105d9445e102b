// Fuzzes the PROXY v1/v2 parser and, on short inputs, the IP/CIDR text parsers.
// Beyond "no crash", it checks the properties the listener relies on:
//  * split invariance: a prefix of the input never yields a different `done` than the whole,
//    a prefix shorter than the header is need_more, and once a prefix is an error every longer
//    one is too (so need_more is only returned while the bytes can still become a header);
//  * a parsed header re-encoded canonically parses back to the same header;
//  * parse_ip agrees with glibc's inet_pton (an independent implementation of the grammar).
#include <arpa/inet.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "net/cidr.hpp"
#include "net/proxy_protocol.hpp"

using namespace sentinel::net;

namespace {

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) std::abort(); \
    } while (0)

constexpr std::size_t max_v2 = 4096;

struct result {
    proxy_parse_status st;
    proxy_header header;
    std::size_t consumed = 0;
};

result parse(std::string_view data, std::size_t cap = max_v2) {
    result r;
    r.st = parse_proxy_header(data, r.header, r.consumed, cap);
    return r;
}

bool same_address(const proxy_address& a, const proxy_address& b) {
    return a.v6 == b.v6 && a.port == b.port && std::memcmp(a.bytes, b.bytes, 16) == 0;
}

bool same(const result& a, const result& b) {
    return a.st == b.st && a.consumed == b.consumed && a.header.version == b.header.version &&
           a.header.has_addresses == b.header.has_addresses &&
           same_address(a.header.source, b.header.source) &&
           same_address(a.header.destination, b.header.destination);
}

std::string text_of(const proxy_address& a) {
    ip_address ip;
    ip.v6 = a.v6;
    std::memcpy(ip.bytes, a.bytes, 16);
    return format_ip(ip);
}

// Canonical re-encoding of a parsed header in the same version.
std::string encode(const proxy_header& h) {
    if (h.version == 1) {
        if (!h.has_addresses) return "PROXY UNKNOWN\r\n";
        return std::string("PROXY ") + (h.source.v6 ? "TCP6 " : "TCP4 ") + text_of(h.source) +
               " " + text_of(h.destination) + " " + std::to_string(h.source.port) + " " +
               std::to_string(h.destination.port) + "\r\n";
    }
    std::string out("\r\n\r\n\0\r\nQUIT\n", 12);
    if (!h.has_addresses) return out + std::string("\x20\x00\x00\x00", 4);
    const std::size_t width = h.source.v6 ? 16 : 4;
    out += '\x21';
    out += h.source.v6 ? '\x21' : '\x11';
    const std::size_t len = 2 * width + 4;
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len & 0xff);
    out.append(reinterpret_cast<const char*>(h.source.bytes), width);
    out.append(reinterpret_cast<const char*>(h.destination.bytes), width);
    for (std::uint16_t port : {h.source.port, h.destination.port}) {
        out += static_cast<char>(port >> 8);
        out += static_cast<char>(port & 0xff);
    }
    return out;
}

void check_proxy(std::string_view in) {
    const result full = parse(in);
    if (full.st == proxy_parse_status::done) {
        FUZZ_CHECK(full.consumed > 0 && full.consumed <= in.size());
        FUZZ_CHECK(full.header.version == 1 || full.header.version == 2);
        if (full.header.version == 1) FUZZ_CHECK(full.consumed <= 107);
        if (full.header.version == 2) FUZZ_CHECK(full.consumed >= 16 && full.consumed <= max_v2);
        const std::string again = encode(full.header);
        const result re = parse(again);
        FUZZ_CHECK(re.st == proxy_parse_status::done && re.consumed == again.size());
        FUZZ_CHECK(same({full.st, full.header, 0}, {re.st, re.header, 0}));
        // A tighter cap either still accepts the same header or rejects it, never waits.
        const result capped = parse(in, 64);
        if (full.header.version == 2 && full.consumed > 64)
            FUZZ_CHECK(capped.st == proxy_parse_status::error);
        else
            FUZZ_CHECK(same(capped, full));
    }
    if (full.st == proxy_parse_status::need_more) {
        // Only a header still in progress may wait: bounded by 107 bytes (v1) or the cap (v2).
        FUZZ_CHECK(in.size() < max_v2);
        if (!in.empty() && in[0] == 'P') FUZZ_CHECK(in.size() < 107);
    }

    // Every split point up to 300 bytes, then a stride, keeps the work per input linear-ish.
    bool seen_error = false;
    for (std::size_t k = 0; k < in.size(); k += (k < 300 ? 1 : 97)) {
        const result part = parse(in.substr(0, k));
        if (seen_error) FUZZ_CHECK(part.st == proxy_parse_status::error);
        seen_error = part.st == proxy_parse_status::error;
        switch (full.st) {
            case proxy_parse_status::done:
                if (k < full.consumed)
                    FUZZ_CHECK(part.st == proxy_parse_status::need_more);
                else
                    FUZZ_CHECK(same(part, full));
                break;
            case proxy_parse_status::need_more:
                FUZZ_CHECK(part.st == proxy_parse_status::need_more);
                break;
            case proxy_parse_status::error:
                FUZZ_CHECK(part.st != proxy_parse_status::done);
                break;
        }
    }
}

void check_ip_text(std::string_view in) {
    if (in.size() > 64 || in.find('\0') != std::string_view::npos) return;
    const std::string text(in);
    const bool v6 = text.find(':') != std::string::npos;
    std::uint8_t want[16] = {};
    const bool libc_ok = inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), want) == 1;
    const auto ours = parse_ip(in);
    FUZZ_CHECK(libc_ok == ours.has_value());
    if (ours) {
        FUZZ_CHECK(ours->v6 == v6);
        FUZZ_CHECK(std::memcmp(ours->bytes, want, v6 ? 16 : 4) == 0);
        const auto again = parse_ip(format_ip(*ours));
        FUZZ_CHECK(again && again->v6 == ours->v6 && std::memcmp(again->bytes, ours->bytes, 16) == 0);
    }
    const auto net = parse_cidr(in);
    if (net) {
        ip_address base;
        base.v6 = net->v6;
        std::memcpy(base.bytes, net->bytes, 16);
        FUZZ_CHECK(cidr_contains(*net, base));
        const auto canonical = parse_cidr(format_ip(base) + "/" + std::to_string(net->prefix_len));
        FUZZ_CHECK(canonical && canonical->prefix_len == net->prefix_len &&
                   std::memcmp(canonical->bytes, net->bytes, 16) == 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    check_proxy(in);
    check_ip_text(in);
    return 0;
}
