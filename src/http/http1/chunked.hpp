// Incremental chunked transfer-coding decoder and encoder (RFC 9112 §7.1). No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sentinel::http1 {

class chunked_decoder {
public:
    enum class status : std::uint8_t {
        data,       // `out` holds chunk data (a view into the input); call again for more
        need_more,  // all input consumed, no complete event; read more bytes
        done,       // last-chunk and trailer section consumed; the message is complete
        error,      // malformed: bad size, bad extension chars, missing CRLF, over-long line
    };

    explicit chunked_decoder(std::size_t max_line = 4096, std::size_t max_trailer_bytes = 8192)
        : max_line_(max_line), max_trailer_bytes_(max_trailer_bytes) {}

    // Consumes bytes from `in` (sets `consumed`), emitting at most one data event per call.
    // Chunk-size lines and trailers may span calls. Trailer fields are validated and dropped.
    status decode(std::string_view in, std::size_t& consumed, std::string_view& out);

    void reset();
    bool finished() const;

private:
    enum class state : std::uint8_t {
        size, size_ext, size_lf, data, data_cr, data_lf, trailer, trailer_lf, done, failed
    };
    state state_ = state::size;
    std::uint64_t remaining_ = 0;  // bytes left in the current chunk
    std::size_t line_bytes_ = 0;   // bytes of the current size/trailer line seen so far
    std::size_t trailer_bytes_ = 0;
    bool size_digits_ = false;
    bool in_ext_quote_ = false;
    bool trailer_line_empty_ = true;
    std::uint8_t sub_state_ = 0;  // position inside a chunk extension or a trailer field line
    std::size_t max_line_;
    std::size_t max_trailer_bytes_;
};

// Appends a chunk header ("<hex size>\r\n") for `size` bytes of data.
void append_chunk_header(std::string& out, std::size_t size);
// Appends the CRLF that ends a chunk's data.
void append_chunk_end(std::string& out);
// Appends the last chunk and an empty trailer section ("0\r\n\r\n").
void append_last_chunk(std::string& out);

}  // namespace sentinel::http1
