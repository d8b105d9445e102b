// PROXY protocol v1 (text) and v2 (binary) header parser, per haproxy's proxy-protocol.txt.
// A codec: no I/O. Used only on listeners with `proxy-protocol #true`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sentinel::net {

struct proxy_address {
    bool v6 = false;
    std::uint8_t bytes[16] = {};  // network byte order; first 4 used for IPv4
    std::uint16_t port = 0;       // host byte order
};

struct proxy_header {
    // false for v1 "UNKNOWN", v2 LOCAL command, or v2 with an unsupported family (AF_UNIX,
    // UNSPEC): the connection's real peer address is then used.
    bool has_addresses = false;
    proxy_address source;
    proxy_address destination;
    int version = 0;  // 1 or 2
};

enum class proxy_parse_status : std::uint8_t { need_more, done, error };

// Parses a PROXY header at the start of `data` (all bytes received so far). On done,
// `consumed` is the header length (v2 TLVs included and skipped). Rejects anything that is
// not a well-formed v1 line (max 107 bytes) or v2 block (max 16 + 65535 bytes; we cap TLVs
// at `max_v2_bytes`).
// need_more means every byte so far can still begin a valid header (this includes a partial
// v2 signature and a partial v1 line that can still finish within 107 bytes); error is
// returned at the first byte that rules that out. `out` and `consumed` are written only on
// done. v2 details: `max_v2_bytes` bounds the whole block (16 + length), undefined
// version/command/family bytes are errors, a PROXY block shorter than its family's addresses
// is an error, TLVs after INET/INET6/UNIX addresses must tile the block exactly and a
// PP2_TYPE_CRC32C TLV, if present, is verified; LOCAL and UNSPEC blocks are skipped whole.
// v2 DGRAM families are accepted like STREAM ones (the addresses are still the peer's).
proxy_parse_status parse_proxy_header(std::string_view data, proxy_header& out,
                                      std::size_t& consumed, std::size_t max_v2_bytes = 4096);

}  // namespace sentinel::net
