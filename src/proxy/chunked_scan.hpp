// Scanning chunked bytes before relaying them verbatim (request bodies in the exchange,
// response bodies in the relay), or re-chunking them after agents held the start of the
// body: shared by upstream_exchange.cpp and upstream_relay.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/http1/chunked.hpp"

namespace sentinel::proxy {

struct chunked_scan {
    std::size_t consumed = 0;     // bytes the decoder took: relayed verbatim
    std::uint64_t data_bytes = 0;  // payload among them
    bool done = false;            // the message's last chunk and trailers are in
    bool error = false;
};

// Feeds buffered chunked bytes to the decoder until it needs more input, finishes or fails.
// The framing is checked strictly, so relaying exactly the consumed bytes unchanged cannot
// smuggle a second message. With `rechunked`, for a body whose start agents held (the decoder
// is past it, so the rest cannot go verbatim), the data is also appended to it re-encoded as
// chunks (the last chunk too; trailers are dropped), stopping once it holds 64 KiB.
inline chunked_scan scan_chunked(http1::chunked_decoder& decoder, std::string_view data,
                                 std::string* rechunked = nullptr) {
    chunked_scan scan;
    while (scan.consumed < data.size() && (rechunked == nullptr || rechunked->size() < 65536)) {
        std::size_t consumed = 0;
        std::string_view chunk;
        const auto status = decoder.decode(data.substr(scan.consumed), consumed, chunk);
        scan.consumed += consumed;
        if (status == http1::chunked_decoder::status::data) {
            scan.data_bytes += chunk.size();
            if (rechunked != nullptr) {
                http1::append_chunk_header(*rechunked, chunk.size());
                rechunked->append(chunk);
                http1::append_chunk_end(*rechunked);
            }
        } else if (status == http1::chunked_decoder::status::done) {
            if (rechunked != nullptr) http1::append_last_chunk(*rechunked);
            scan.done = true;
            break;
        } else if (status == http1::chunked_decoder::status::error) {
            scan.error = true;
            break;
        } else {
            break;
        }
    }
    return scan;
}

}  // namespace sentinel::proxy
